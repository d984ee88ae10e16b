// Physical Region Descriptor tables for PIIX4 bus-master DMA (SFF-8038i, "Physical Region
// Descriptor"; PIIX4 datasheet, "Bus Master IDE Function"): 8-byte entries {u32 base (bit 0
// zero), u16 byte count (0 means 64 KiB), u16 with bit 15 = end of table}, the table dword
// aligned and not crossing a 64 KiB boundary, no region crossing a 64 KiB boundary.

export const PRD_ENTRY_BYTES: usize = 8;
export const PRD_EOT: u32 = 0x8000_0000;
const BOUNDARY: usize = 0x10000;

/**
 * Describes `bytes` at `buffer` in the table at `table` (room for `maxEntries`), splitting at every
 * 64 KiB boundary. Returns the number of entries, or 0 when the buffer is not word aligned or
 * needs more entries than the table has.
 */
export function prdBuild(table: usize, maxEntries: u32, buffer: usize, bytes: usize): u32 {
  if ((buffer & 1) != 0 || (bytes & 1) != 0 || bytes == 0) return 0;
  let n: u32 = 0;
  let at = buffer;
  let left = bytes;
  while (left > 0) {
    if (n == maxEntries) return 0;
    const toBoundary = BOUNDARY - (at & (BOUNDARY - 1));
    const len = left < toBoundary ? left : toBoundary;
    const entry = table + <usize>n * PRD_ENTRY_BYTES;
    store<u32>(entry, <u32>at);
    // A 64 KiB region is written as byte count 0.
    store<u32>(entry, (<u32>len & 0xffff) | (len == left ? PRD_EOT : 0), 4);
    at += len;
    left -= len;
    n++;
  }
  return n;
}
