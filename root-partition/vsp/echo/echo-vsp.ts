/**
 * The echo VSP: the smallest complete device on the VSP framework. In-band packets come back as
 * they came (a completion when one was requested, an in-band reply otherwise); GPA-direct
 * requests work on the guest's own pages in place. Protocol: echo-protocol.ts.
 */
import { VmbusPacketType, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, type ReceivedPacket } from '../../../vmbus/ring/index.ts';
import type { PacketBatch, VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { Vsp } from '../../../vmbus/host/vsp.ts';
import { HvError } from '../../../hypervisor/hv-error.ts';
import {
  ECHO_GPA_COMPLETION_SIZE,
  ECHO_INTERFACE_INSTANCE,
  ECHO_INTERFACE_TYPE,
  ECHO_MAX_MESSAGE,
  ECHO_OP_CHECKSUM,
  ECHO_OP_ECHO,
  ECHO_OP_REVERSE,
  ECHO_REQUEST_HEADER,
  ECHO_STATUS_INVALID_PARAMETER,
  ECHO_STATUS_SUCCESS,
} from './echo-protocol.ts';

export interface EchoStats {
  echoed: number;
  gpaRequests: number;
  gpaBytes: number;
  refused: number;
}

export class EchoVsp implements Vsp {
  readonly offer = { interfaceType: ECHO_INTERFACE_TYPE, interfaceInstance: ECHO_INTERFACE_INSTANCE };
  readonly maxReplyBytes = ECHO_MAX_MESSAGE;
  readonly maxPacketBytes = ECHO_MAX_MESSAGE + 4096;
  readonly stats: EchoStats = { echoed: 0, gpaRequests: 0, gpaBytes: 0, refused: 0 };
  /** Reused reply storage: nothing is allocated per packet. */
  private readonly reply = new Uint8Array(ECHO_GPA_COMPLETION_SIZE);
  private readonly replyView = new DataView(this.reply.buffer);

  onOpen(_channel: VspChannel): number {
    return 0;
  }

  /** Echo keeps nothing between packets: a saved channel has no state of its own. */
  restoreChannel(channel: VspChannel, state: Uint8Array | undefined): () => void {
    if (state !== undefined)
      throw new HvError('ECHO_BAD_SAVED_STATE', `echo saved state: relid ${channel.relid} carries ${state.length} bytes, echo saves none`);
    return () => {};
  }

  onPackets(channel: VspChannel, batch: PacketBatch): void {
    for (let p = batch.next(); p !== null; p = batch.next()) {
      if (p.type === VmbusPacketType.DataInband) this.echo(channel, p);
      else if (p.type === VmbusPacketType.DataUsingGpaDirect) this.gpaDirect(channel, p);
      else this.stats.refused++; // completions and transfer pages mean nothing to this device
    }
  }

  private echo(channel: VspChannel, p: ReceivedPacket): void {
    const start = p.payloadOffset;
    const op = p.view.getUint32(start, true);
    const length = p.view.getUint32(start + 4, true);
    // The guest's length is checked against what the packet really carries.
    if (op !== ECHO_OP_ECHO || length > ECHO_MAX_MESSAGE - ECHO_REQUEST_HEADER || ECHO_REQUEST_HEADER + length > p.payloadLength) {
      this.stats.refused++;
      return;
    }
    const end = start + ECHO_REQUEST_HEADER + length;
    if ((p.flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) !== 0) channel.complete(p, p.bytes, start, end);
    else channel.sendInband(p.transIdLo, p.transIdHi, p.bytes, false, start, end);
    this.stats.echoed++;
  }

  private gpaDirect(channel: VspChannel, p: ReceivedPacket): void {
    this.stats.gpaRequests++;
    const op = p.payloadLength >= 4 ? p.view.getUint32(p.payloadOffset, true) : 0;
    const found = channel.gpaDirect(p);
    let status = ECHO_STATUS_SUCCESS,
      count = 0,
      sum = 0;
    if (!found.ok || (op !== ECHO_OP_REVERSE && op !== ECHO_OP_CHECKSUM)) {
      status = ECHO_STATUS_INVALID_PARAMETER;
      this.stats.refused++;
    } else {
      const { segments, byteCount } = found.buffer;
      count = byteCount;
      for (const s of segments) sum = (sum + byteSum(s)) >>> 0;
      if (op === ECHO_OP_REVERSE) reverseInPlace(segments);
      this.stats.gpaBytes += byteCount;
    }
    if ((p.flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) === 0) return;
    this.replyView.setUint32(0, status, true);
    this.replyView.setUint32(4, count, true);
    this.replyView.setUint32(8, sum, true);
    channel.complete(p, this.reply);
  }
}

function byteSum(s: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i];
  return sum >>> 0;
}

/** Reverses the concatenation of `segments` in place (native reverse for the common one-run case). */
function reverseInPlace(segments: Uint8Array[]): void {
  if (segments.length === 1) {
    segments[0].reverse();
    return;
  }
  let total = 0;
  for (const s of segments) total += s.length;
  const all = new Uint8Array(total);
  let o = 0;
  for (const s of segments) {
    all.set(s, o);
    o += s.length;
  }
  all.reverse();
  o = 0;
  for (const s of segments) {
    s.set(all.subarray(o, o + s.length));
    o += s.length;
  }
}
