// Console output on COM1: each line or number goes out in one string-I/O exit (rep outsb) from
// a per-VP scratch buffer, with no allocation, so it is safe in interrupt handlers.
import { outsb, VP_INDEX } from "../platform/hv";
import { COM1_BASE } from "../../abi/platform";

const SCRATCH_BYTES: usize = 256;
const SCRATCH: usize = memory.data(256 * 64, 16);

// @ts-ignore: decorator
@inline function scratch(): usize {
  return SCRATCH + (<usize>VP_INDEX << 8);
}

/** Writes an ASCII string (characters above 0x7f are sent as '?'). */
export function puts(s: string): void {
  const buf = scratch();
  let n: usize = 0;
  for (let i = 0, len = s.length; i < len; i++) {
    const c = s.charCodeAt(i);
    store<u8>(buf + n, c < 0x80 ? <u8>c : 0x3f);
    if (++n == SCRATCH_BYTES) {
      outsb(COM1_BASE, buf, <u32>n);
      n = 0;
    }
  }
  if (n > 0) outsb(COM1_BASE, buf, <u32>n);
}

/** Writes `v` in unsigned decimal, in one exit. */
export function putDec(v: u64): void {
  const end = scratch() + 32;
  let p = end;
  do {
    p--;
    store<u8>(p, <u8>(0x30 + v % 10));
    v /= 10;
  } while (v != 0);
  outsb(COM1_BASE, p, <u32>(end - p));
}

/** Writes the low `digits` nibbles of `v` as lowercase hex, no prefix, in one exit. */
export function putHex(v: u64, digits: i32 = 8): void {
  const b = scratch();
  for (let i = 0; i < digits; i++) {
    const d = <u8>((v >> (<u64>(digits - 1 - i) << 2)) & 0xf);
    store<u8>(b + i, d < 10 ? 0x30 + d : 0x57 + d);
  }
  outsb(COM1_BASE, b, <u32>digits);
}

/** Writes raw bytes from guest memory in one exit. */
export function putBytes(gpa: usize, length: u32): void {
  outsb(COM1_BASE, gpa, length);
}
