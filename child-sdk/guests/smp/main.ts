// Several VPs: VP 0 starts every other VP with HvCallStartVirtualProcessor; each adds its index
// to a shared mask in memory (atomics: module globals are per VP) and prints a line; VP 0 waits
// for all of them, checks that starting VP 1 twice is refused, and halts.
import { cli, halt } from "../../platform/hv";
import { puts, putDec, putBytes } from "../../kernel/console";
import { vpCount } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc } from "../../kernel/pages";
import { enableHypercalls, startVirtualProcessor } from "../../hv/hypercall";

const ONLINE: usize = memory.data(4, 4);

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

const LINES: usize = memory.data(16 * 32, 16); // one console line per VP, sent in one exit

function apMain(vp: u32): void {
  // One string-I/O exit per line: VPs print concurrently, and separate exits would interleave.
  const line = LINES + (<usize>vp << 4);
  const text = "vp online ";
  for (let i = 0; i < text.length; i++) store<u8>(line + i, <u8>text.charCodeAt(i));
  store<u8>(line + 10, <u8>(0x30 + vp / 10));
  store<u8>(line + 11, <u8>(0x30 + vp % 10));
  store<u8>(line + 12, 0x0a);
  putBytes(line, 13);
  atomic.or<u32>(ONLINE, 1 << vp);
  cli();
  halt();
}

function main(): i32 {
  kv("enabled", enableHypercalls(pageAlloc()) ? 1 : 0);
  atomic.or<u32>(ONLINE, 1);
  const n = vpCount();
  // VP 0 prints nothing while the others may be printing: their lines would land inside its own.
  let failed: u32 = 0;
  for (let vp: u32 = 1; vp < n; vp++) if (startVirtualProcessor(vp, apMain) != 0) failed++;
  const all: u32 = n >= 32 ? 0xffffffff : (1 << n) - 1;
  while (failed == 0 && atomic.load<u32>(ONLINE) != all) {}
  kv("start_failures", failed);
  kv("online_mask", atomic.load<u32>(ONLINE));
  if (n > 1) kv("start_again", startVirtualProcessor(1, apMain));
  puts("done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { vp_start } from "../../kernel/boot";
