/**
 * The live-migration stream between two hosts: length-prefixed frames, each u32 little-endian
 * length of what follows, one type byte, the body. The source sends HELLO (read by the
 * destination VMMS), then memory (PAGES, ZERO_PAGES) in rounds, then the VM's state as the
 * saved-state file's own records (STATE_RECORD, ipc/saved-state-schema.ts) and DONE; the
 * destination answers READY (restored, paused), the source commits with GO, the destination
 * answers RUNNING. Either side may send ABORT with the reason. A move with storage adds the
 * drives' blocks (DISK_BLOCKS) to each round and to the paused one; HELLO then describes the
 * drives (`storage`).
 *
 * The peer is authenticated (mutual TLS) but still a remote program: every length, count and
 * page number is bounded before use, and no frame is larger than MAX_MIGRATION_FRAME.
 */
import { DIRTY_BLOCK_BYTES } from '../vmwp/disk-dirty-map.ts';

export const MigrationFrame = {
  Hello: 1,
  Pages: 2,
  ZeroPages: 3,
  StateRecord: 4,
  Done: 5,
  Ready: 6,
  Go: 7,
  Running: 8,
  Abort: 9,
  Progress: 10,
  /** JSON { pausedAtMs }: the source's wall clock when it paused the VM (sent after the capture). */
  Blackout: 11,
  /** A storage move's blocks of one drive: u16 drive, u16 count, count × u32 block number, the blocks' bytes. */
  DiskBlocks: 12,
} as const;
export type MigrationFrameType = (typeof MigrationFrame)[keyof typeof MigrationFrame];

export const PAGE_BYTES = 4096;
/** Pages per PAGES frame at most: 1 MiB of data, so the buffers on both sides stay small. */
export const MAX_PAGES_PER_FRAME = 256;
/** Page numbers per ZERO_PAGES frame at most. */
export const MAX_ZERO_PAGES_PER_FRAME = 16_384;
/** Larger than any legal frame (a full PAGES frame, or a saved-state record): a bigger claim is refused, not allocated. */
export const MAX_MIGRATION_FRAME = 8 << 20;
/** The protocol a HELLO names; a destination refuses another. */
export const MIGRATION_PROTOCOL_VERSION = 1;

export class MigrationProtocolError extends Error {
  readonly code = 'MIGRATION_ERR_PROTOCOL';
}

export interface Frame {
  type: MigrationFrameType;
  body: Buffer;
}

export function encodeFrame(type: MigrationFrameType, body: Uint8Array = new Uint8Array(0)): Buffer {
  if (body.length + 1 > MAX_MIGRATION_FRAME) throw new MigrationProtocolError(`a migration frame of ${body.length} bytes exceeds ${MAX_MIGRATION_FRAME}`);
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32LE(body.length + 1, 0);
  out.writeUInt8(type, 4);
  out.set(body, 5);
  return out;
}

export function encodeJsonFrame(type: MigrationFrameType, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** PAGES: u32 count, count × u32 page number, then the pages' bytes in the same order. */
export function encodePages(pfns: Uint32Array, count: number, data: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(4 + count * 4 + count * PAGE_BYTES);
  body.writeUInt32LE(count, 0);
  for (let i = 0; i < count; i++) body.writeUInt32LE(pfns[i], 4 + i * 4);
  body.set(data.subarray(0, count * PAGE_BYTES), 4 + count * 4);
  return encodeFrame(MigrationFrame.Pages, body);
}

export function encodeZeroPages(pfns: Uint32Array, count: number): Buffer {
  const body = Buffer.allocUnsafe(4 + count * 4);
  body.writeUInt32LE(count, 0);
  for (let i = 0; i < count; i++) body.writeUInt32LE(pfns[i], 4 + i * 4);
  return encodeFrame(MigrationFrame.ZeroPages, body);
}

/** Calls `page(pfn, bytes)` for each page of a PAGES frame, after checking the whole frame against `pageCount`. */
export function decodePages(body: Buffer, pageCount: number, page: (pfn: number, bytes: Buffer) => void): number {
  const count = body.length >= 4 ? body.readUInt32LE(0) : -1;
  if (count < 1 || count > MAX_PAGES_PER_FRAME || body.length !== 4 + count * (4 + PAGE_BYTES))
    throw new MigrationProtocolError(`a PAGES frame of ${body.length} bytes does not hold whole pages (count ${count})`);
  const dataAt = 4 + count * 4;
  for (let i = 0; i < count; i++) checkPfn(body.readUInt32LE(4 + i * 4), pageCount);
  for (let i = 0; i < count; i++) page(body.readUInt32LE(4 + i * 4), body.subarray(dataAt + i * PAGE_BYTES, dataAt + (i + 1) * PAGE_BYTES));
  return count;
}

export function decodeZeroPages(body: Buffer, pageCount: number, page: (pfn: number) => void): number {
  const count = body.length >= 4 ? body.readUInt32LE(0) : -1;
  if (count < 1 || count > MAX_ZERO_PAGES_PER_FRAME || body.length !== 4 + count * 4)
    throw new MigrationProtocolError(`a ZERO_PAGES frame of ${body.length} bytes is malformed (count ${count})`);
  for (let i = 0; i < count; i++) checkPfn(body.readUInt32LE(4 + i * 4), pageCount);
  for (let i = 0; i < count; i++) page(body.readUInt32LE(4 + i * 4));
  return count;
}

/** A storage move's unit (the source's dirty-block granule, vmwp/disk-dirty-map.ts): a drive's last block may be shorter. */
export const DISK_BLOCK_BYTES = DIRTY_BLOCK_BYTES;
/** Blocks per DISK_BLOCKS frame at most (1 MiB). */
export const MAX_DISK_BLOCKS_PER_FRAME = 16;
/** Drives a storage move carries at most: 4 IDE drives and 4 SCSI controllers of 64 locations. */
export const MAX_MOVED_DISKS = 4 + 4 * 64;

export function encodeDiskBlocks(disk: number, blocks: readonly number[], data: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(4 + blocks.length * 4 + data.length);
  body.writeUInt16LE(disk, 0);
  body.writeUInt16LE(blocks.length, 2);
  blocks.forEach((b, i) => body.writeUInt32LE(b, 4 + i * 4));
  body.set(data, 4 + blocks.length * 4);
  return encodeFrame(MigrationFrame.DiskBlocks, body);
}

/**
 * Calls `block(disk, block, bytes)` for each block of a DISK_BLOCKS frame, after checking the
 * whole frame: the drive exists, every block lies inside it, the bytes are exactly the blocks'.
 */
export function decodeDiskBlocks(body: Buffer, diskBytes: readonly number[], block: (disk: number, block: number, bytes: Buffer) => void): number {
  const disk = body.length >= 4 ? body.readUInt16LE(0) : -1;
  const count = body.length >= 4 ? body.readUInt16LE(2) : -1;
  if (disk < 0 || disk >= diskBytes.length) throw new MigrationProtocolError(`a DISK_BLOCKS frame names drive ${disk}; the move carries ${diskBytes.length}`);
  if (count < 1 || count > MAX_DISK_BLOCKS_PER_FRAME || body.length < 4 + count * 4)
    throw new MigrationProtocolError(`a DISK_BLOCKS frame of ${body.length} bytes is malformed (count ${count})`);
  const size = diskBytes[disk];
  let expected = 4 + count * 4;
  for (let i = 0; i < count; i++) {
    const b = body.readUInt32LE(4 + i * 4);
    if (b * DISK_BLOCK_BYTES >= size) throw new MigrationProtocolError(`block ${b} is outside drive ${disk} (${size} bytes)`);
    expected += Math.min(DISK_BLOCK_BYTES, size - b * DISK_BLOCK_BYTES);
  }
  if (body.length !== expected)
    throw new MigrationProtocolError(`a DISK_BLOCKS frame of ${body.length} bytes does not hold its ${count} blocks (${expected} bytes)`);
  let at = 4 + count * 4;
  for (let i = 0; i < count; i++) {
    const b = body.readUInt32LE(4 + i * 4);
    const n = Math.min(DISK_BLOCK_BYTES, size - b * DISK_BLOCK_BYTES);
    block(disk, b, body.subarray(at, at + n));
    at += n;
  }
  return count;
}

function checkPfn(pfn: number, pageCount: number): void {
  if (pfn >= pageCount) throw new MigrationProtocolError(`page ${pfn} is outside guest memory (${pageCount} pages)`);
}

export function decodeJson<T>(f: Frame, what: string): T {
  try {
    return JSON.parse(f.body.toString('utf8')) as T;
  } catch (e) {
    throw new MigrationProtocolError(`${what} is not JSON: ${(e as Error).message}`);
  }
}

/** Reassembles frames from stream chunks, holding at most one frame's bytes. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private bytes = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.bytes < 4) break;
      const head = this.peek(4);
      const length = head.readUInt32LE(0);
      if (length < 1 || length > MAX_MIGRATION_FRAME) throw new MigrationProtocolError(`bad migration frame length ${length}`);
      if (this.bytes < 4 + length) break;
      const all = this.take(4 + length);
      const type = all.readUInt8(4);
      if (type < MigrationFrame.Hello || type > MigrationFrame.DiskBlocks) throw new MigrationProtocolError(`unknown migration frame type ${type}`);
      frames.push({ type: type as MigrationFrameType, body: all.subarray(5) });
    }
    return frames;
  }

  /** Bytes received but not yet a whole frame (what a caller that stops reading would hand on). */
  rest(): Buffer {
    const b = Buffer.concat(this.chunks);
    this.chunks = [];
    this.bytes = 0;
    return b;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const b = Buffer.concat(this.chunks);
    this.chunks = [b];
    return b;
  }

  private take(n: number): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = b.subarray(0, n);
    const rest = b.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.bytes = rest.length;
    return out;
  }
}
