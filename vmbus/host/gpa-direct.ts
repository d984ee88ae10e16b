/**
 * GPA-direct buffers (VM_PKT_DATA_USING_GPA_DIRECT, Linux struct vmbus_packet_mpb_array): the guest names its own
 * pages in the packet's range header and the VSP reads and writes them in place — the synthetic
 * path's whole advantage. Every page of every range is checked against guest memory before any
 * view is made; physically contiguous pages are merged so a transfer takes few views. This is the
 * one validator of guest-named pages for every VSP.
 */
import { PAGE_SIZE, type GuestMemory } from '../../hypervisor/guest-memory.ts';
import { decodeGpaDirectHeader, VmbusPacketType, type GpaRange, type ReceivedPacket } from '../ring/index.ts';

export interface GpaDirectBuffer {
  /** Bounds-checked views aliasing guest memory, in range order. */
  segments: Uint8Array[];
  byteCount: number;
  ranges: readonly GpaRangeLike[];
}

export type GpaDirectResult = { ok: true; buffer: GpaDirectBuffer } | { ok: false; reason: string };

/**
 * A range as the ring layer decodes it (GpaRange), or as a caller holding parsed ranges has it;
 * PFNs may be bigints (u64 on the wire). Nothing about it is trusted.
 */
export interface GpaRangeLike {
  byteCount: number;
  byteOffset: number;
  pfns: ArrayLike<number | bigint>;
}

/** Largest total a guest may describe in one packet (1 GiB): bounds the work before any check. */
const MAX_GPA_DIRECT_BYTES = 1 << 30;

export function gpaDirectBuffer(mem: GuestMemory, packet: ReceivedPacket): GpaDirectResult {
  if (packet.type !== VmbusPacketType.DataUsingGpaDirect) return { ok: false, reason: `packet type ${packet.type} carries no GPA ranges` };
  const ranges: GpaRange[] | { reason: string } = decodeGpaDirectHeader(packet);
  if (!Array.isArray(ranges)) return { ok: false, reason: ranges.reason };
  return gpaRangesBuffer(mem, ranges);
}

/**
 * Checks decoded ranges and makes their views: each range's offset inside its first page, enough
 * PFNs for its bytes, and every page inside guest memory (guest memory is the only PFN limit).
 */
export function gpaRangesBuffer(mem: GuestMemory, ranges: readonly GpaRangeLike[]): GpaDirectResult {
  const segments: Uint8Array[] = [];
  let runStart = -1;
  let runEnd = -1;
  let total = 0;
  for (const r of ranges) {
    const { byteCount, byteOffset, pfns } = r;
    if (!Number.isInteger(byteCount) || !Number.isInteger(byteOffset) || byteCount < 0 || byteOffset < 0 || byteOffset >= PAGE_SIZE) {
      return { ok: false, reason: `bad GPA range offset ${byteOffset} count ${byteCount}` };
    }
    total += byteCount;
    if (total > MAX_GPA_DIRECT_BYTES) return { ok: false, reason: `GPA ranges describe more than ${MAX_GPA_DIRECT_BYTES} bytes` };
    const pages = Math.ceil((byteOffset + byteCount) / PAGE_SIZE);
    if (pfns.length < pages) return { ok: false, reason: `GPA range needs ${pages} PFNs, has ${pfns.length}` };
    let left = byteCount;
    for (let i = 0; i < pages; i++) {
      const raw = pfns[i]!;
      // A bigint beyond guest memory stays beyond it as a number (Infinity fails contains()).
      const pfn = typeof raw === 'bigint' ? (raw < BigInt(mem.size) ? Number(raw) : Infinity) : raw;
      const start = pfn * PAGE_SIZE + (i === 0 ? byteOffset : 0);
      const len = Math.min(left, PAGE_SIZE - (i === 0 ? byteOffset : 0));
      if (!mem.contains(start, len)) return { ok: false, reason: `GPA 0x${start.toString(16)}+${len} is outside guest memory` };
      left -= len;
      if (start === runEnd) runEnd += len;
      else {
        if (runEnd > runStart) segments.push(mem.view(runStart, runEnd - runStart));
        runStart = start;
        runEnd = start + len;
      }
    }
  }
  if (runEnd > runStart) segments.push(mem.view(runStart, runEnd - runStart));
  return { ok: true, buffer: { segments, byteCount: total, ranges } };
}

/**
 * The views of the first `length` bytes of a checked buffer (a request may use less than its
 * ranges describe); null when the buffer holds fewer.
 */
export function gpaDirectPrefix(buffer: GpaDirectBuffer, length: number): Uint8Array[] | null {
  if (length > buffer.byteCount) return null;
  if (length === buffer.byteCount) return buffer.segments;
  const out: Uint8Array[] = [];
  let need = length;
  for (const s of buffer.segments) {
    if (need === 0) break;
    const take = Math.min(need, s.length);
    out.push(take === s.length ? s : s.subarray(0, take));
    need -= take;
  }
  return out;
}
