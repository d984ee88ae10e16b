import { PAGE_SIZE, type GuestMemory } from '../../../hypervisor/guest-memory.ts';

/**
 * A receive or send buffer the guest described with a GPADL: a list of guest pages, not
 * necessarily contiguous (Linux allocates them with vzalloc). Every page is checked against
 * guest memory when the buffer is taken; offsets are checked on every access. If the guest tears
 * the GPADL down while the VSP still uses it, the pages are still its own memory: the VSP can
 * only ever write into the guest that owns them.
 */
export class GpadlBuffer {
  readonly size: number;
  private readonly bases: number[];

  private constructor(
    private readonly mem: GuestMemory,
    pages: readonly number[],
  ) {
    this.bases = pages.map((p) => p * PAGE_SIZE);
    this.size = pages.length * PAGE_SIZE;
  }

  /** Null when a page lies outside guest memory or the list is empty. */
  static over(mem: GuestMemory, pages: readonly number[]): GpadlBuffer | null {
    if (pages.length === 0) return null;
    for (const p of pages) if (!Number.isSafeInteger(p) || p < 0 || !mem.contains(p * PAGE_SIZE, PAGE_SIZE)) return null;
    return new GpadlBuffer(mem, pages);
  }

  /** Copies `length` bytes at `offset` out of guest memory (a private copy). */
  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    const out = new Uint8Array(length);
    this.walk(offset, length, (gpa, n, at) => out.set(this.mem.view(gpa, n), at));
    return out;
  }

  /** Copies `length` bytes at `offset` into `dst` at `dstOffset`. */
  readInto(offset: number, length: number, dst: Uint8Array, dstOffset: number): void {
    this.check(offset, length);
    this.walk(offset, length, (gpa, n, at) => dst.set(this.mem.view(gpa, n), dstOffset + at));
  }

  write(offset: number, bytes: Uint8Array): void {
    this.check(offset, bytes.length);
    this.walk(offset, bytes.length, (gpa, n, at) => this.mem.view(gpa, n).set(bytes.subarray(at, at + n)));
  }

  private check(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`buffer access ${offset}+${length} is outside ${this.size} bytes`);
    }
  }

  private walk(offset: number, length: number, f: (gpa: number, n: number, at: number) => void): void {
    let at = 0;
    while (at < length) {
      const o = offset + at;
      const page = Math.floor(o / PAGE_SIZE);
      const within = o - page * PAGE_SIZE;
      // Merge runs of physically contiguous pages into one copy.
      let n = PAGE_SIZE - within;
      let p = page;
      while (at + n < length && p + 1 < this.bases.length && this.bases[p + 1] === this.bases[p]! + PAGE_SIZE) {
        p++;
        n += PAGE_SIZE;
      }
      n = Math.min(n, length - at);
      f(this.bases[page]! + within, n, at);
      at += n;
    }
  }
}
