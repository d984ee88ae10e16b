/**
 * Which guest pages changed since they were last sent, found without the guest's help.
 *
 * ShadowPageTracker (the one migration uses) keeps a private copy of what the destination holds
 * and compares every page with it (Buffer.compare: memcmp). A changed page is copied into the
 * copy first and sent from there, so what is sent is exactly what the next round compares
 * against: a guest write racing the copy makes the page differ again and it goes next round.
 * It is exact (no hash to collide) and costs one byte of host memory per byte of guest memory,
 * for the length of the migration.
 *
 * PageHashTracker is the measured alternative: a 64-bit hash per page (8 bytes per 4 KiB), the
 * page hashed from the copy that is sent. Four polynomial lanes over 32-bit words: fast in
 * JavaScript, but not collision-free for structured changes; `tsvisor bench migrate` reports both
 * costs side by side and docs/lifecycle.md the choice.
 */
import { PAGE_BYTES } from './migration-wire.ts';

const ZERO_PAGE = Buffer.alloc(PAGE_BYTES);

export interface DirtyScan {
  /** Visits each changed page in [from, to): `send(pfn, bytes, zero)` with the bytes to send. */
  scan(from: number, to: number, send: (pfn: number, bytes: Buffer, zero: boolean) => void): number;
  readonly pageCount: number;
}

export class ShadowPageTracker implements DirtyScan {
  readonly pageCount: number;
  private readonly live: Buffer;
  private readonly shadow: Buffer;

  constructor(memory: Uint8Array) {
    this.live = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
    // The destination's memory starts zeroed: so does the copy, and zero pages are never sent.
    this.shadow = Buffer.alloc(memory.byteLength);
    this.pageCount = Math.floor(memory.byteLength / PAGE_BYTES);
  }

  scan(from: number, to: number, send: (pfn: number, bytes: Buffer, zero: boolean) => void): number {
    let n = 0;
    for (let pfn = from; pfn < to; pfn++) {
      const at = pfn * PAGE_BYTES;
      if (this.live.compare(this.shadow, at, at + PAGE_BYTES, at, at + PAGE_BYTES) === 0) continue;
      this.live.copy(this.shadow, at, at, at + PAGE_BYTES);
      const bytes = this.shadow.subarray(at, at + PAGE_BYTES);
      send(pfn, bytes, bytes.equals(ZERO_PAGE));
      n++;
    }
    return n;
  }
}

export class PageHashTracker implements DirtyScan {
  readonly pageCount: number;
  private readonly words: Int32Array;
  private readonly live: Buffer;
  private readonly hashes: Int32Array;
  private readonly page = Buffer.alloc(PAGE_BYTES);
  private readonly pageWords = new Int32Array(this.page.buffer, this.page.byteOffset, PAGE_BYTES / 4);
  private readonly h = new Int32Array(2);

  constructor(memory: Uint8Array) {
    this.pageCount = Math.floor(memory.byteLength / PAGE_BYTES);
    this.words = new Int32Array(memory.buffer, memory.byteOffset, this.pageCount * (PAGE_BYTES / 4));
    this.live = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
    // Zero pages hash to 0 (as the destination's zeroed memory does): never sent at first.
    this.hashes = new Int32Array(this.pageCount * 2);
  }

  scan(from: number, to: number, send: (pfn: number, bytes: Buffer, zero: boolean) => void): number {
    let n = 0;
    const h = this.h;
    for (let pfn = from; pfn < to; pfn++) {
      pageHash(this.words, pfn * (PAGE_BYTES / 4), h);
      if (h[0] === this.hashes[2 * pfn] && h[1] === this.hashes[2 * pfn + 1]) continue;
      this.live.copy(this.page, 0, pfn * PAGE_BYTES, (pfn + 1) * PAGE_BYTES);
      pageHash(this.pageWords, 0, h);
      this.hashes[2 * pfn] = h[0];
      this.hashes[2 * pfn + 1] = h[1];
      send(pfn, this.page, this.page.equals(ZERO_PAGE));
      n++;
    }
    return n;
  }
}

/** Four multiply-add lanes over the page's 1024 words, folded to 64 bits; 0 for a zero page. */
export function pageHash(words: Int32Array, base: number, out: Int32Array): void {
  let a = 0,
    b = 0,
    c = 0,
    d = 0;
  for (let i = base, end = base + PAGE_BYTES / 4; i < end; i += 4) {
    a = (Math.imul(a, 31) + words[i]) | 0;
    b = (Math.imul(b, 37) + words[i + 1]) | 0;
    c = (Math.imul(c, 41) + words[i + 2]) | 0;
    d = (Math.imul(d, 43) + words[i + 3]) | 0;
  }
  out[0] = a ^ Math.imul(c, 0x9e3779b1);
  out[1] = b ^ Math.imul(d, 0x85ebca77);
}
