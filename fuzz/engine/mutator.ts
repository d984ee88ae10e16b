/**
 * Byte-level mutations in the style of libFuzzer's MutationDispatcher: bit flips, random bytes,
 * interesting integers (little- and big-endian), insert/erase/duplicate runs, copies inside the
 * input, splices with another corpus entry and dictionary tokens. Several are stacked per input.
 */
import type { Prng } from './prng.ts';

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0x64];
const INTERESTING_16 = [0, 0x80, 0xff, 0x100, 0x200, 0x1000, 0x7fff, 0x8000, 0xffff, 512, 4096];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x1000, 0xfff, 0x10000, 0x100000, 0x40000000, 0xfffffff8, 8, 16, 240];

export class Mutator {
  private readonly dictionary: Uint8Array[];

  constructor(
    private readonly rng: Prng,
    dictionary: readonly (string | Uint8Array)[],
    private readonly maxLength: number,
  ) {
    this.dictionary = dictionary.map((d) => (typeof d === 'string' ? new TextEncoder().encode(d) : d));
  }

  /** A mutated copy of `input`; `other` is a second corpus entry for splicing. */
  mutate(input: Uint8Array, other: Uint8Array): Uint8Array {
    let out = Array.from(input);
    // Mostly one or two changes, so a step towards new coverage is not undone by the next.
    const rounds = 1 + this.rng.below(this.rng.chance(0.1) ? 16 : 2);
    for (let i = 0; i < rounds; i++) out = this.once(out, other);
    if (out.length > this.maxLength) out.length = this.maxLength;
    return Uint8Array.from(out);
  }

  private once(b: number[], other: Uint8Array): number[] {
    const r = this.rng;
    const at = () => r.below(b.length);
    const atOrEnd = () => r.below(b.length + 1);
    switch (r.below(b.length === 0 ? 3 : 13)) {
      case 0: {
        // insert random bytes
        const n = 1 + r.below(r.chance(0.8) ? 4 : 64);
        b.splice(atOrEnd(), 0, ...Array.from({ length: n }, () => r.below(256)));
        return b;
      }
      case 1: {
        // insert a dictionary token (or overwrite with it)
        if (this.dictionary.length === 0) return b;
        const token = r.pick(this.dictionary);
        const p = atOrEnd();
        b.splice(p, r.chance(0.5) ? 0 : Math.min(token.length, b.length - p), ...token);
        return b;
      }
      case 2: {
        // splice: the head of this input, the tail of another
        if (other.length === 0) return b;
        const cut = atOrEnd();
        return [...b.slice(0, cut), ...other.subarray(r.below(other.length))];
      }
      case 3:
        b[at()]! ^= 1 << r.below(8);
        return b;
      case 4:
        b[at()] = r.below(256);
        return b;
      case 5:
        b[at()] = r.pick(INTERESTING_8);
        return b;
      case 6:
        this.setInt(b, r.pick(INTERESTING_16), 2);
        return b;
      case 7:
        this.setInt(b, r.pick(INTERESTING_32), 4);
        return b;
      case 8: {
        // add or subtract a small number to a byte
        const p = at();
        b[p] = (b[p]! + (r.below(35) - 17)) & 0xff;
        return b;
      }
      case 9: {
        // erase a run
        const p = at();
        b.splice(p, 1 + r.below(Math.min(b.length - p, r.chance(0.8) ? 4 : 128)));
        return b;
      }
      case 10: {
        // duplicate a run
        const p = at();
        const n = 1 + r.below(Math.min(b.length - p, 64));
        b.splice(atOrEnd(), 0, ...b.slice(p, p + n));
        return b;
      }
      case 11: {
        // copy a run over another place
        const from = at();
        const n = 1 + r.below(Math.min(b.length - from, 32));
        const to = at();
        const run = b.slice(from, from + n);
        for (let i = 0; i < run.length && to + i < b.length; i++) b[to + i] = run[i]!;
        return b;
      }
      default: {
        // ASCII digit edits help text formats (numbers in WQL, XML, JSON)
        const p = at();
        b[p] = 0x30 + r.below(10);
        return b;
      }
    }
  }

  private setInt(b: number[], value: number, width: number): void {
    if (b.length < width) return;
    const p = this.rng.below(b.length - width + 1);
    const big = this.rng.chance(0.3);
    for (let i = 0; i < width; i++) b[p + (big ? width - 1 - i : i)] = (value >>> (8 * i)) & 0xff;
  }
}
