/**
 * Backing guest memory at VM start, as Hyper-V backs a VM's static memory and QEMU's
 * -mem-prealloc does. A fresh WebAssembly.Memory is reserved, not backed: the first write to
 * each 4 KiB page faults in the kernel, which zeroes a frame for it. Left to the guest's first I/O,
 * that fault lands inside a pread into guest memory and makes a cold run measure the kernel, not
 * the device (a 1 MiB read at a tenth of its warm speed).
 *
 * A page is backed by a write, and only a write: a read maps the shared zero page and the next
 * write still faults. The write is an atomic OR with 0 on one word per page, so it can run while
 * the guest runs: it leaves every value as it is, even against a concurrent guest store (a locked
 * read-modify-write cannot lose another core's store).
 */
import { PAGE_SIZE, type GuestMemory } from './guest-memory.ts';

export interface PrefaultResult {
  /** Bytes of guest memory backed (all of it unless cancelled). */
  bytes: number;
  /** Wall time from the first page to the last, ms (in the background: spread over event-loop turns). */
  ms: number;
  /** Time spent touching pages, ms (the cost the backing thread paid). */
  busyMs: number;
  cancelled: boolean;
}

const WORDS_PER_PAGE = PAGE_SIZE / 4;

/** Backs the pages of [from, to) (page-aligned) with one atomic write each. */
export function prefaultRange(mem: GuestMemory, from: number, to: number): void {
  const i32 = mem.i32;
  const end = Math.min(to, mem.size) >> 2;
  for (let w = from >> 2; w < end; w += WORDS_PER_PAGE) Atomics.or(i32, w, 0);
}

/** Backs all of guest memory now, on this thread. */
export function prefaultNow(mem: GuestMemory): PrefaultResult {
  const t0 = performance.now();
  prefaultRange(mem, 0, mem.size);
  const ms = performance.now() - t0;
  return { bytes: mem.size, ms, busyMs: ms, cancelled: false };
}

/**
 * Backs all of guest memory in chunks, one per turn of this thread's event loop, so whatever else
 * the thread serves (control requests, VP events) waits at most one chunk. `cancelled` is asked
 * before each chunk (the VM stopped: no point backing memory nobody will use).
 */
export function prefaultInBackground(mem: GuestMemory, cancelled: () => boolean = () => false, chunkBytes = 1 << 20): Promise<PrefaultResult> {
  const t0 = performance.now();
  let busy = 0;
  let at = 0;
  return new Promise((resolve) => {
    const step = (): void => {
      if (cancelled()) return resolve({ bytes: at, ms: performance.now() - t0, busyMs: busy, cancelled: true });
      const s = performance.now();
      const next = Math.min(at + chunkBytes, mem.size);
      prefaultRange(mem, at, next);
      at = next;
      busy += performance.now() - s;
      if (at >= mem.size) return resolve({ bytes: at, ms: performance.now() - t0, busyMs: busy, cancelled: false });
      setImmediate(step);
    };
    setImmediate(step);
  });
}
