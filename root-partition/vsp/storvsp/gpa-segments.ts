import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import { PAGE_SIZE } from '../../../hypervisor/guest-memory.ts';

/**
 * One range of a VM_PKT_DATA_USING_GPA_DIRECT packet as the ring layer parsed it
 * (hyperv-protocol-facts.md §4.4): byte_count, byte_offset into the first page, and the PFNs.
 * PFNs may be numbers or bigints (u64 on the wire).
 */
export interface GpaDirectRange {
  byteCount: number;
  byteOffset: number;
  pfns: ArrayLike<number | bigint>;
}

export type SegmentsResult = { ok: true; segments: Uint8Array[] } | { ok: false; reason: string };

/** PFNs above this are outside any guest memory we can create (4 GiB max), and beyond 2^53. */
const MAX_PFN = 2 ** 40;

/**
 * Turns the first `length` bytes described by `ranges` into bounds-checked views of guest memory,
 * merging physically contiguous pages into one view so that block I/O needs few backend calls.
 * Every page of every range is checked, even past `length`: a guest that names memory it does not
 * have gets an error and no access at all.
 */
export function gpaRangesToSegments(memory: GuestMemory, ranges: readonly GpaDirectRange[], length: number): SegmentsResult {
  const segments: Uint8Array[] = [];
  let need = length;
  let runStart = -1;
  let runEnd = -1;
  const flush = (): void => {
    if (runStart >= 0 && runEnd > runStart) segments.push(memory.view(runStart, runEnd - runStart));
    runStart = runEnd = -1;
  };
  for (const r of ranges) {
    const { byteCount, byteOffset, pfns } = r;
    if (!Number.isInteger(byteCount) || !Number.isInteger(byteOffset) || byteCount < 0 || byteOffset < 0 || byteOffset >= PAGE_SIZE) {
      return { ok: false, reason: `bad GPA range offset ${byteOffset} count ${byteCount}` };
    }
    const pages = Math.ceil((byteOffset + byteCount) / PAGE_SIZE);
    if (pfns.length < pages) return { ok: false, reason: `GPA range needs ${pages} PFNs, has ${pfns.length}` };
    let left = byteCount;
    for (let i = 0; i < pages; i++) {
      const raw = pfns[i]!;
      const pfn = typeof raw === 'bigint' ? (raw < BigInt(MAX_PFN) ? Number(raw) : MAX_PFN) : raw;
      if (!Number.isInteger(pfn) || pfn < 0 || pfn >= MAX_PFN) return { ok: false, reason: `bad PFN ${String(raw)}` };
      const start = pfn * PAGE_SIZE + (i === 0 ? byteOffset : 0);
      const len = Math.min(left, PAGE_SIZE - (i === 0 ? byteOffset : 0));
      if (!memory.contains(start, len)) return { ok: false, reason: `GPA 0x${start.toString(16)}+${len} outside guest memory` };
      left -= len;
      const take = Math.min(len, need);
      if (take <= 0) continue;
      need -= take;
      if (start === runEnd) runEnd += take;
      else {
        flush();
        runStart = start;
        runEnd = start + take;
      }
    }
  }
  flush();
  if (need > 0) return { ok: false, reason: `GPA ranges hold ${length - need} bytes, request needs ${length}` };
  return { ok: true, segments };
}
