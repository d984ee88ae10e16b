/**
 * Length-prefixed frames on a VMMS↔VMWP stream socket. One frame: u32 little-endian length of
 * what follows, one channel byte, the payload. Control messages (protobuf) and bulk data
 * (msgpack: console bytes, counters) share the socket, told apart by the channel byte.
 */
export const FrameChannel = { Control: 0, Bulk: 1 } as const;
export type FrameChannelValue = (typeof FrameChannel)[keyof typeof FrameChannel];

/** A frame larger than this is a protocol error (a corrupt or hostile peer), not an allocation. */
export const MAX_FRAME_BYTES = 16 << 20;

export interface Frame {
  channel: FrameChannelValue;
  payload: Uint8Array;
}

export class FrameError extends Error {
  readonly code = 'IPC_ERR_FRAME';
}

export function encodeFrame(channel: FrameChannelValue, payload: Uint8Array): Buffer {
  if (payload.length + 1 > MAX_FRAME_BYTES) throw new FrameError(`frame of ${payload.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32LE(payload.length + 1, 0);
  out.writeUInt8(channel, 4);
  out.set(payload, 5);
  return out;
}

/** Reassembles frames from stream chunks. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Feeds a chunk; returns every frame it completed. Throws FrameError on a malformed stream. */
  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    while (this.pending.length >= 4) {
      const length = this.pending.readUInt32LE(0);
      if (length < 1 || length > MAX_FRAME_BYTES) throw new FrameError(`bad frame length ${length}`);
      if (this.pending.length < 4 + length) break;
      const channel = this.pending.readUInt8(4);
      if (channel !== FrameChannel.Control && channel !== FrameChannel.Bulk) throw new FrameError(`unknown frame channel ${channel}`);
      frames.push({ channel, payload: this.pending.subarray(5, 4 + length) });
      this.pending = this.pending.subarray(4 + length);
    }
    return frames;
  }
}
