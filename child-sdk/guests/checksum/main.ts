// A workload for save/restore tests: a running checksum over ROUNDS rounds, with a progress line
// every PROGRESS_EVERY rounds and a final verification that recomputes the whole chain from
// scratch. The checksum is order-dependent, so a lost round, a repeated round or a round applied
// to stale state gives a different result.
//
// The guest knows nothing of saving: its loop state lives in locals on its Wasm call stack, which
// the hypervisor captures with the VP (a save can land at a preemption point inside a round or at
// a console exit), and a restored VM continues in the middle of whatever it was doing.
//
// Command line: `rounds=<n>` (default 4000), `work=<n>` mixing steps per round (default 20000).
import { cli, halt } from "../../platform/hv";
import { puts, putDec, putHex } from "../../kernel/console";
import { cmdlineNumber as cmdlineU64 } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { checksumRound as round } from "../lib/checksum-round";

const PROGRESS_EVERY: u32 = 100;

/** The number after `key=` on the command line, or `fallback`. */
function cmdlineNumber(key: string, fallback: u32): u32 {
  return <u32>cmdlineU64(key, fallback);
}

function expected(rounds: u32, work: u32): u32 {
  let sum: u32 = 0;
  for (let r: u32 = 0; r < rounds; r++) sum = round(sum, r, work);
  return sum;
}

function run(rounds: u32, work: u32): i32 {
  let sum: u32 = 0;
  let r: u32 = 0;
  while (r < rounds) {
    sum = round(sum, r, work);
    r++;
    if (r % PROGRESS_EVERY == 0) {
      puts("progress round=");
      putDec(r);
      puts(" sum=");
      putHex(sum);
      puts("\n");
    }
  }
  const want = expected(rounds, work);
  puts("result rounds=");
  putDec(r);
  puts(" sum=");
  putHex(sum);
  puts(" expected=");
  putHex(want);
  puts(sum == want ? " verdict=OK\n" : " verdict=MISMATCH\n");
  cli();
  halt();
  return sum == want ? 0 : 3;
}

function main(): i32 {
  const rounds = cmdlineNumber("rounds", 4000);
  puts("checksum guest: ");
  putDec(rounds);
  puts(" rounds\n");
  return run(rounds, cmdlineNumber("work", 20000));
}

export function boot(): i32 {
  return kernelBoot(main);
}
