// The shell's line discipline and tokenizer: bytes from the UART's receive ring become one line
// (CR, LF or CR LF ends it; backspace and DEL erase; other control bytes are ignored), which is
// then read token by token. Everything lives in one block of guest memory and nothing is
// allocated, so a long session never exhausts the runtime's heap (which never frees).
import { uartReadByte, uartTransmit } from "../drivers/uart16550";

/** Longest line kept, in bytes; the rest is dropped and lineOverflowed() reports it. */
export const LINE_MAX: u32 = 240;

// [0] length, [4] overflowed (bytes were dropped), [8] previous byte was CR, [12] cursor,
// [16] token start, [20] token length, [24] number parse failed, [28] echo on,
// [32] echo scratch (4 bytes), [64..] the line.
const LINE: usize = memory.data(64 + 256, 16);
const L_LENGTH: usize = 0;
const L_OVERFLOW: usize = 4;
const L_AFTER_CR: usize = 8;
const L_CURSOR: usize = 12;
const L_TOKEN: usize = 16;
const L_TOKEN_LENGTH: usize = 20;
const L_BAD_NUMBER: usize = 24;
const L_ECHO: usize = 28;
const L_ECHO_SCRATCH: usize = 32;
const TEXT: usize = LINE + 64;

const CR: i32 = 0x0d;
const LF: i32 = 0x0a;
const BS: i32 = 0x08;
const DEL: i32 = 0x7f;
const SPACE: u8 = 0x20;

/** Echo typed bytes back (for terminals in raw mode; a cooked terminal echoes by itself). */
export function lineSetEcho(on: bool): void { store<u32>(LINE + L_ECHO, on ? 1 : 0); }

function echo(text: u32, bytes: u32): void {
  if (load<u32>(LINE + L_ECHO) == 0) return;
  store<u32>(LINE + L_ECHO_SCRATCH, text);
  uartTransmit(LINE + L_ECHO_SCRATCH, bytes);
}

/** Starts a new line (call after handling one). */
export function lineReset(): void {
  store<u32>(LINE + L_LENGTH, 0);
  store<u32>(LINE + L_OVERFLOW, 0);
  store<u32>(LINE + L_CURSOR, 0);
  store<u32>(LINE + L_TOKEN_LENGTH, 0);
}

/** Takes received bytes until a line is complete (true) or none are left (false). */
export function lineAssemble(): bool {
  for (;;) {
    const b = uartReadByte();
    if (b < 0) return false;
    const afterCr = load<u32>(LINE + L_AFTER_CR) != 0;
    store<u32>(LINE + L_AFTER_CR, b == CR ? 1 : 0);
    if (b == LF && afterCr) continue; // the LF of a CR LF pair
    if (b == CR || b == LF) {
      echo(0x0a0d, 2);
      return true;
    }
    const length = load<u32>(LINE + L_LENGTH);
    if (b == BS || b == DEL) {
      if (length > 0) {
        store<u32>(LINE + L_LENGTH, length - 1);
        echo(0x082008, 3); // back, blank, back
      }
      continue;
    }
    if (b < 0x20 || b > 0x7e) continue;
    if (length == LINE_MAX) {
      store<u32>(LINE + L_OVERFLOW, 1);
      continue;
    }
    store<u8>(TEXT + length, <u8>b);
    store<u32>(LINE + L_LENGTH, length + 1);
    echo(<u32>b, 1);
  }
  return false; // not reached
}

/** True when the line was longer than LINE_MAX (the excess was dropped). */
export function lineOverflowed(): bool { return load<u32>(LINE + L_OVERFLOW) != 0; }

/** Moves to the next space-separated token; false at the end of the line. */
export function tokenNext(): bool {
  const length = load<u32>(LINE + L_LENGTH);
  let p = load<u32>(LINE + L_CURSOR);
  while (p < length && load<u8>(TEXT + p) == SPACE) p++;
  const start = p;
  while (p < length && load<u8>(TEXT + p) != SPACE) p++;
  store<u32>(LINE + L_CURSOR, p);
  store<u32>(LINE + L_TOKEN, start);
  store<u32>(LINE + L_TOKEN_LENGTH, p - start);
  return p > start;
}

/** GPA of the current token's first byte in the line buffer (valid until the next line is assembled). */
export function tokenGpa(): usize { return TEXT + load<u32>(LINE + L_TOKEN); }
/** Length in bytes of the current token; 0 after tokenNext returned false. */
export function tokenLength(): u32 { return load<u32>(LINE + L_TOKEN_LENGTH); }

/** True when the current token is exactly `word` (ASCII). */
export function tokenIs(word: string): bool {
  const n = tokenLength();
  if (<u32>word.length != n) return false;
  const p = tokenGpa();
  for (let i: u32 = 0; i < n; i++) if (load<u8>(p + i) != <u8>word.charCodeAt(i)) return false;
  return true;
}

/**
 * The rest of the line after the current token and the one space that ends it, as typed
 * (inner and trailing spaces kept): the text argument of `echo` and `write`.
 */
export function restGpa(): usize {
  const cursor = load<u32>(LINE + L_CURSOR);
  return TEXT + min<u32>(cursor + 1, load<u32>(LINE + L_LENGTH));
}
/** Length in bytes of the text at restGpa(); 0 when nothing follows the current token. */
export function restLength(): u32 {
  return <u32>(TEXT + load<u32>(LINE + L_LENGTH) - restGpa());
}

/**
 * The current token as an unsigned number: decimal, or hexadecimal after "0x". A token that is
 * not one, or does not fit 64 bits, sets numberBad() and returns 0.
 */
export function tokenNumber(): u64 {
  const p = tokenGpa();
  const n = tokenLength();
  store<u32>(LINE + L_BAD_NUMBER, 1);
  if (n == 0) return 0;
  const hex = n > 2 && load<u8>(p) == 0x30 && (load<u8>(p + 1) | 0x20) == 0x78;
  const radix: u64 = hex ? 16 : 10;
  let v: u64 = 0;
  for (let i: u32 = hex ? 2 : 0; i < n; i++) {
    const c = <u32>load<u8>(p + i);
    let d: u32 = 99;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (hex && (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
    if (<u64>d >= radix) return 0;
    if (v > (0xffffffffffffffff - <u64>d) / radix) return 0; // would overflow
    v = v * radix + d;
  }
  store<u32>(LINE + L_BAD_NUMBER, 0);
  return v;
}

/** True when the last tokenNumber() did not read a number. */
export function numberBad(): bool { return load<u32>(LINE + L_BAD_NUMBER) != 0; }
