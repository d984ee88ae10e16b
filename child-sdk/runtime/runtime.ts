// A runtime for guests with several VPs. Every VP instance has its own copy of the runtime's
// globals but all share one heap, so the heap top lives in guest memory and is advanced with an
// atomic add: VPs allocate from one arena without overlap. Nothing is freed (allocate at boot;
// keep interrupt and packet paths allocation-free). The heap ends at GUEST_HEAP_LIMIT, below the
// page allocator's pool; running out traps instead of growing "physical memory".
// Build with --runtime <this file, without .ts> and --zeroFilledMemory (the top word starts at 0).
import { BLOCK, OBJECT, BLOCK_OVERHEAD, OBJECT_OVERHEAD, AL_MASK } from "~lib/rt/common";

// @ts-ignore: decorator
@lazy const HEAP_TOP: usize = memory.data(16, 16);

// @ts-ignore: decorator
@inline function firstBlock(): usize {
  return ((__heap_base + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
}

// @ts-ignore: decorator
@inline function heapEnd(): usize {
  return isDefined(GUEST_HEAP_LIMIT) ? <usize>GUEST_HEAP_LIMIT : <usize>memory.size() << 16;
}

// @ts-ignore: decorator
@global @unsafe
function __alloc(size: usize): usize {
  if (size > 0x10000000) unreachable();
  const payload = ((size + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
  const total = BLOCK_OVERHEAD + payload;
  atomic.cmpxchg<usize>(HEAP_TOP, 0, firstBlock());
  const block = atomic.add<usize>(HEAP_TOP, total);
  if (block + total > heapEnd()) unreachable();
  changetype<BLOCK>(block).mmInfo = payload;
  return block + BLOCK_OVERHEAD;
}

// @ts-ignore: decorator
@global @unsafe
function __realloc(ptr: usize, size: usize): usize {
  const old = changetype<BLOCK>(ptr - BLOCK_OVERHEAD).mmInfo;
  if (size <= old) return ptr;
  const fresh = __alloc(size);
  memory.copy(fresh, ptr, old);
  return fresh;
}

// @ts-ignore: decorator
@global @unsafe
function __free(ptr: usize): void {}

// @ts-ignore: decorator
@global @unsafe
function __reset(): void {}

// @ts-ignore: decorator
@global @unsafe
function __new(size: usize, id: u32): usize {
  const ptr = __alloc(OBJECT_OVERHEAD + size);
  const obj = changetype<OBJECT>(ptr - BLOCK_OVERHEAD);
  obj.gcInfo = 0;
  obj.gcInfo2 = 0;
  obj.rtId = id;
  obj.rtSize = <u32>size;
  return ptr + OBJECT_OVERHEAD;
}

// @ts-ignore: decorator
@global @unsafe
function __renew(oldPtr: usize, size: usize): usize {
  const ptr = __realloc(oldPtr - OBJECT_OVERHEAD, OBJECT_OVERHEAD + size);
  changetype<OBJECT>(ptr - BLOCK_OVERHEAD).rtSize = <u32>size;
  return ptr + OBJECT_OVERHEAD;
}

// @ts-ignore: decorator
@global @unsafe
function __link(parentPtr: usize, childPtr: usize, expectMultiple: bool): void {}

// @ts-ignore: decorator
@global @unsafe
function __pin(ptr: usize): usize { return ptr; }

// @ts-ignore: decorator
@global @unsafe
function __unpin(ptr: usize): void {}

// @ts-ignore: decorator
@global @unsafe
function __visit(ptr: usize, cookie: u32): void {}

// @ts-ignore: decorator
@global @unsafe
function __collect(): void {}
