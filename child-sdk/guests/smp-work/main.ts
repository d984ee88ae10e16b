// Several VPs computing at once, for save/restore tests: every VP (VP 0 included) runs its own
// checksum chain of `rounds` rounds (seeded by its index), keeping its loop state in locals on its
// own call stack, and counts each round into one shared atomic counter. VP 0 starts the others,
// finishes its chain, waits for all, and prints every VP's sum and the counter, which the host
// recomputes: a round lost, repeated or applied to stale state on any VP changes a sum or the
// count. VP 0 prints a line every 10 of its rounds. The guest knows nothing of saving.
//
// Command line: `rounds=<n>` (default 2000), `work=<n>` mixing steps per round (default 20000).
import { cli, halt } from "../../platform/hv";
import { puts, putDec, putHex } from "../../kernel/console";
import { cmdlineNumber, vpCount } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc } from "../../kernel/pages";
import { enableHypercalls, startVirtualProcessor } from "../../hv/hypercall";
import { checksumRound as round } from "../lib/checksum-round";

const MAX_VPS: u32 = 32;
const PROGRESS_EVERY: u32 = 10;
const COUNTER: usize = memory.data(8, 8);
const DONE: usize = memory.data(4, 4);
const SUMS: usize = memory.data(4 * 32, 16);
const PARAMS: usize = memory.data(8, 8); // rounds, work: read by every VP (module globals are per VP)

function chain(vp: u32): void {
  const rounds = load<u32>(PARAMS);
  const work = load<u32>(PARAMS + 4);
  let sum: u32 = vp + 1;
  for (let r: u32 = 0; r < rounds; r++) {
    sum = round(sum, r, work);
    atomic.add<u64>(COUNTER, 1);
    // Only VP 0 prints (one console, no interleaving): the host paces itself by these lines.
    if (vp == 0 && (r + 1) % PROGRESS_EVERY == 0) {
      puts("vp0 round=");
      putDec(r + 1);
      puts("\n");
    }
  }
  store<u32>(SUMS + (<usize>vp << 2), sum);
  atomic.or<u32>(DONE, 1 << vp);
}

function apMain(vp: u32): void {
  chain(vp);
  cli();
  halt();
}

function main(): i32 {
  enableHypercalls(pageAlloc());
  const n = min<u32>(vpCount(), MAX_VPS);
  store<u32>(PARAMS, <u32>cmdlineNumber("rounds", 2000));
  store<u32>(PARAMS + 4, <u32>cmdlineNumber("work", 20000));
  puts("smp-work: vps=");
  putDec(n);
  puts(" rounds=");
  putDec(load<u32>(PARAMS));
  puts("\n");
  for (let vp: u32 = 1; vp < n; vp++) startVirtualProcessor(vp, apMain);
  chain(0);
  const all: u32 = n >= 32 ? 0xffffffff : (1 << n) - 1;
  while (atomic.load<u32>(DONE) != all) {}
  for (let vp: u32 = 0; vp < n; vp++) {
    puts("vp ");
    putDec(vp);
    puts(" sum=");
    putHex(load<u32>(SUMS + (<usize>vp << 2)));
    puts("\n");
  }
  puts("counter=");
  putDec(atomic.load<u64>(COUNTER));
  puts(" done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { vp_start } from "../../kernel/boot";
