// 4 KiB page allocator for SynIC pages, rings and I/O buffers: pages come from the top of RAM
// downward and never below GUEST_HEAP_LIMIT, where the runtime heap ends, so the two never
// overlap. Shared by every VP: its state is in guest memory, guarded by a spinlock.
import { PAGE_SIZE } from "../../abi/platform";

// [0] lock, [4] lowest page handed out so far, [8] free-list head.
const STATE: usize = memory.data(16, 16);

/** One zeroed 4 KiB page (from the free list first); 0 when out of pages. */
export function pageAlloc(): usize {
  return pageAllocRun(1);
}

/** Allocates `count` physically contiguous zeroed pages (rings need contiguous GPAs). 0 when out. */
export function pageAllocRun(count: u32): usize {
  while (atomic.cmpxchg<i32>(STATE, 0, 1) != 0) {}
  let page: usize = 0;
  const head = load<usize>(STATE, 8);
  if (count == 1 && head != 0) {
    page = head;
    store<usize>(STATE, load<usize>(head), 8);
  } else {
    let next = load<usize>(STATE, 4);
    if (next == 0) {
      const ramEnd = <u64>memory.size() << 16;
      next = ramEnd >= 0x1_0000_0000 ? <usize>0xffff_f000 : <usize>ramEnd;
    }
    const floor: usize = isDefined(GUEST_HEAP_LIMIT) ? <usize>GUEST_HEAP_LIMIT : __heap_base;
    const bytes = <usize>count * PAGE_SIZE;
    if (next >= floor + bytes) {
      page = next - bytes;
      store<usize>(STATE, page, 4);
    }
  }
  atomic.store<i32>(STATE, 0);
  if (page != 0) memory.fill(page, 0, <usize>count * PAGE_SIZE);
  return page;
}

/** Puts `page` on the free list for a later single-page allocation (runs are never rebuilt from freed pages). */
export function pageFree(page: usize): void {
  while (atomic.cmpxchg<i32>(STATE, 0, 1) != 0) {}
  store<usize>(page, load<usize>(STATE, 8));
  store<usize>(STATE, page, 8);
  atomic.store<i32>(STATE, 0);
}
