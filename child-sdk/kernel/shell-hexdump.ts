// The `read` command's output: `hexdump -C` layout (offset, 16 bytes in hex, the printable ASCII
// between bars), where a run of lines equal to the one before shows as a single "*". Each line is
// built in a scratch block and leaves in one string-I/O exit; nothing is allocated.
import { putBytes } from "./console";

// One output line: 8 offset digits, 2 spaces, 16 × 3 hex columns (plus one extra space after 8),
// a space, 18 bytes of bars and text, a newline: 80 bytes is enough.
const LINE: usize = memory.data(96, 16);
const HEX: usize = memory.data<u8>([0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66]);

function hexByte(at: usize, v: u32): void {
  store<u8>(at, load<u8>(HEX + ((v >> 4) & 0xf)));
  store<u8>(at + 1, load<u8>(HEX + (v & 0xf)));
}

function dumpLine(p: usize, offset: u32): void {
  let o: usize = LINE;
  for (let i = 0; i < 4; i++) hexByte(o + i * 2, offset >> (24 - i * 8));
  o += 8;
  store<u8>(o++, 0x20);
  store<u8>(o++, 0x20);
  for (let i: u32 = 0; i < 16; i++) {
    hexByte(o, load<u8>(p + i));
    o += 2;
    store<u8>(o++, 0x20);
    if (i == 7) store<u8>(o++, 0x20);
  }
  store<u8>(o++, 0x20);
  store<u8>(o++, 0x7c);
  for (let i: u32 = 0; i < 16; i++) {
    const c = load<u8>(p + i);
    store<u8>(o++, c >= 0x20 && c < 0x7f ? c : 0x2e);
  }
  store<u8>(o++, 0x7c);
  store<u8>(o++, 0x0a);
  putBytes(LINE, <u32>(o - LINE));
}

/** Dumps `length` bytes (a multiple of 16) at `p`, offsets counted from 0, then the end offset. */
export function hexDump(p: usize, length: u32): void {
  let starred = false;
  for (let off: u32 = 0; off < length; off += 16) {
    const same = off > 0 && memory.compare(p + off, p + off - 16, 16) == 0;
    if (same) {
      if (!starred) {
        store<u8>(LINE, 0x2a); // "*\n"
        store<u8>(LINE + 1, 0x0a);
        putBytes(LINE, 2);
      }
      starred = true;
      continue;
    }
    starred = false;
    dumpLine(p + off, off);
  }
  let o: usize = LINE;
  for (let i = 0; i < 4; i++) hexByte(o + i * 2, length >> (24 - i * 8));
  store<u8>(o + 8, 0x0a);
  putBytes(LINE, 9);
}
