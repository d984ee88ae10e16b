/**
 * The pure pieces of netvsp's receive path (Linux hyperv_net.h, NDIS): whether the guest's
 * packet filter admits a frame, which channel RSS sends each frame to, and the frames written
 * into receive-buffer slots as the ranges of one transfer-page packet.
 */
import { writeReceivePacket } from './rndis-protocol.ts';
import { RECEIVE_HEADER_ROOM } from './nvsp-protocol.ts';
import type { RssConfig } from './rss-parameters.ts';
import { rssHashInput, toeplitzHash } from './rss-toeplitz.ts';
import type { ReceiveBufferState } from './netvsp-channel-types.ts';

/** Whether an NDIS packet filter (OID_GEN_CURRENT_PACKET_FILTER bits) admits the frame for `mac` (no multicast list kept). */
export function frameAdmitted(frame: Uint8Array, filter: number, mac: Uint8Array): boolean {
  if (filter & 0x20) return true;
  if (frame[0]! & 1) {
    const bcast = frame[0] === 0xff && frame[1] === 0xff && frame[2] === 0xff && frame[3] === 0xff && frame[4] === 0xff && frame[5] === 0xff;
    return bcast ? (filter & 0x8) !== 0 : (filter & 0x4) !== 0;
  }
  if (!(filter & 0x1)) return false;
  for (let i = 0; i < 6; i++) if (frame[i] !== mac[i]) return false;
  return true;
}

/**
 * The channel for each frame, grouped: the channel the guest's indirection table names at the
 * frame's Toeplitz hash (a channel not open, or a frame with nothing to hash: the primary); all
 * on the primary without RSS or without an open sub-channel.
 */
export function spreadByRss(frames: Uint8Array[], rss: RssConfig | null, anyOpen: boolean, isOpen: (channel: number) => boolean): Map<number, Uint8Array[]> {
  if (!rss || !anyOpen) return new Map([[0, frames]]);
  const out = new Map<number, Uint8Array[]>();
  const mask = rss.table.length - 1;
  for (const f of frames) {
    const input = rssHashInput(f, rss.hashTypes);
    let channel = input ? rss.table[toeplitzHash(rss.key, input) & mask]! : 0;
    if (channel !== 0 && !isOpen(channel)) channel = 0;
    const list = out.get(channel);
    if (list) list.push(f);
    else out.set(channel, [f]);
  }
  return out;
}

/** Each frame as a receive PACKET_MSG in its slot; the transfer-page ranges of the packet, in order. */
export function writeReceiveSlots(r: ReceiveBufferState, frames: readonly Uint8Array[], slots: readonly number[]): { byteCount: number; byteOffset: number }[] {
  return slots.map((s, k) => {
    const msg = new Uint8Array(RECEIVE_HEADER_ROOM + frames[k]!.length);
    writeReceivePacket(msg, frames[k]!, r.subAllocSize);
    r.buffer.write(s * r.subAllocSize, msg);
    return { byteCount: r.subAllocSize, byteOffset: s * r.subAllocSize };
  });
}
