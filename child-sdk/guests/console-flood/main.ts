// A guest that floods COM1, for the host's console bounds: `bytes=<n>` out of one `rep outsb`
// (default 17 MiB, above the 16 MiB IPC frame limit), repeated `times=<n>` (default 1), from a
// buffer above the runtime heap filled with a known pattern (byte i = 'a' + i % 26, a newline
// every 64th byte), then a closing line; then it idles, still running. Needs RAM for 16 MiB + bytes.
import { halt, outsb, sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineNumber, ramPages } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { COM1_BASE } from "../../../abi/platform";

const BUFFER: usize = 16 << 20;

function main(): i32 {
  const bytes = <u32>cmdlineNumber("bytes", 17 << 20);
  const times = <u32>cmdlineNumber("times", 1);
  if (<u64>BUFFER + bytes > <u64>ramPages() * 4096) {
    puts("console-flood: not enough RAM\n");
    return 2;
  }
  for (let i: u32 = 0; i < bytes; i++) store<u8>(BUFFER + i, (i & 63) == 63 ? 10 : <u8>(97 + i % 26));
  for (let t: u32 = 0; t < times; t++) outsb(COM1_BASE, BUFFER, bytes);
  puts("\nconsole-flood: done bytes=");
  putDec(bytes);
  puts(" times=");
  putDec(times);
  puts("\n");
  sti(); // stays running (halted, interruptible), so the host's view of a live VM can be checked
  for (;;) halt();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export function interrupt(vector: u32): void {}
