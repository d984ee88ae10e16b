/**
 * GPA-direct buffers (VM_PKT_DATA_USING_GPA_DIRECT, reference §4.4): the guest names its own
 * pages in the packet's range header and the VSP reads and writes them in place — the synthetic
 * path's whole advantage. Every page of every range is checked against guest memory before any
 * view is made; physically contiguous pages are merged so a transfer takes few views.
 */
import { PAGE_SIZE, type GuestMemory } from '../../hypervisor/guest-memory.ts';
import { decodeGpaDirectHeader, VmbusPacketType, type GpaRange, type ReceivedPacket } from '../ring/index.ts';

export interface GpaDirectBuffer {
  /** Bounds-checked views aliasing guest memory, in range order. */
  segments: Uint8Array[];
  byteCount: number;
  ranges: GpaRange[];
}

export type GpaDirectResult = { ok: true; buffer: GpaDirectBuffer } | { ok: false; reason: string };

/** Largest total a guest may describe in one packet (1 GiB): bounds the work before any check. */
const MAX_GPA_DIRECT_BYTES = 1 << 30;

export function gpaDirectBuffer(mem: GuestMemory, packet: ReceivedPacket): GpaDirectResult {
  if (packet.type !== VmbusPacketType.DataUsingGpaDirect) return { ok: false, reason: `packet type ${packet.type} carries no GPA ranges` };
  const ranges = decodeGpaDirectHeader(packet);
  if (!Array.isArray(ranges)) return { ok: false, reason: ranges.reason };
  const segments: Uint8Array[] = [];
  let runStart = -1;
  let runEnd = -1;
  let total = 0;
  for (const r of ranges) {
    total += r.byteCount;
    if (total > MAX_GPA_DIRECT_BYTES) return { ok: false, reason: `GPA ranges describe more than ${MAX_GPA_DIRECT_BYTES} bytes` };
    let left = r.byteCount;
    for (let i = 0; i < r.pfns.length && left > 0; i++) {
      const start = r.pfns[i] * PAGE_SIZE + (i === 0 ? r.byteOffset : 0);
      const len = Math.min(left, PAGE_SIZE - (i === 0 ? r.byteOffset : 0));
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
