// PRD tables a careless or hostile driver could hand the bus master (SFF-8038i, Physical Region
// Descriptor table): the controller must end such a transfer with BM Error, not hang or touch
// memory outside the guest.
import { pageAllocRun } from "../../kernel/pages";

const TABLE_PAGES: u32 = 16; // 64 KiB: always holds one 64 KiB-aligned boundary

let loopTable: usize = 0;
let outsideTable: usize = 0;

/**
 * A table with no end-of-table bit: every entry describes the same 2 bytes at `target`, all the
 * way to the table's 64 KiB boundary (at most 8192 entries, 16 KiB), so a 32 KiB transfer never
 * finds the end of its table.
 */
export function prdHostileLoop(target: usize): usize {
  if (loopTable == 0) loopTable = pageAllocRun(TABLE_PAGES);
  const end = (loopTable + 0x10000) & ~(<usize>0xffff);
  for (let e = loopTable; e < end; e += 8) {
    store<u32>(e, <u32>target);
    store<u32>(e, 2, 4);
  }
  return loopTable;
}

/** One region at 0xFFFF0000, past the end of any guest's RAM here. */
export function prdHostileOutside(): usize {
  if (outsideTable == 0) outsideTable = pageAllocRun(1);
  store<u32>(outsideTable, 0xffff_0000);
  store<u32>(outsideTable, 4096 | 0x8000_0000, 4);
  return outsideTable;
}
