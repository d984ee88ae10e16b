// A resumable workload for save/restore tests: a running checksum over ROUNDS rounds, with a
// progress line every PROGRESS_EVERY rounds and a final verification that recomputes the whole
// chain from scratch. The checksum is order-dependent, so a lost round, a repeated round or a
// round applied to stale state gives a different result.
//
// Every piece of loop state lives in guest memory (a Wasm instance's globals and call stack do
// not survive a restore). A round commits its result and the next round number with no exit in
// between, and the only exits (console output) come after a commit, so a VP parked at an exit
// boundary always leaves a consistent state. `boot()` initialises the state and runs the loop;
// `resume()` — the entry the VMWP calls on VP 0 after a restore — runs the same loop from the
// state in memory.
//
// Command line: `rounds=<n>` (default 4000), `work=<n>` mixing steps per round (default 20000).
import "../../runtime/panic";
import { cli, halt } from "../../platform/hv";
import { puts, putDec, putHex } from "../../kernel/console";
import { bootInfoValid, cmdlineNumber as cmdlineU64 } from "../../kernel/boot-info";

const STATE: usize = memory.data(32, 16);
const S_NEXT_ROUND: usize = 0; // u32: the first round not yet applied
const S_SUM: usize = 4; // u32: checksum after rounds [0, next)
const S_ROUNDS: usize = 8; // u32: total rounds
const S_WORK: usize = 12; // u32: mixing steps per round
const S_RESUMES: usize = 16; // u32: how many times the guest was re-entered through resume()
const S_MAGIC: usize = 20; // u32: STATE_MAGIC once boot() initialised the state
const STATE_MAGIC: u32 = 0x4b534843; // "CHSK"
const PROGRESS_EVERY: u32 = 100;

/** The number after `key=` on the command line, or `fallback`. */
function cmdlineNumber(key: string, fallback: u32): u32 {
  return <u32>cmdlineU64(key, fallback);
}

/** One round: a deterministic mix of the previous checksum and the round number. */
function round(sum: u32, r: u32, work: u32): u32 {
  let x = sum ^ (r * 0x9e3779b9);
  for (let i: u32 = 0; i < work; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x += i;
  }
  return (sum * 31) ^ x;
}

function expected(rounds: u32, work: u32): u32 {
  let sum: u32 = 0;
  for (let r: u32 = 0; r < rounds; r++) sum = round(sum, r, work);
  return sum;
}

function run(): i32 {
  const rounds = load<u32>(STATE + S_ROUNDS);
  const work = load<u32>(STATE + S_WORK);
  for (;;) {
    const r = load<u32>(STATE + S_NEXT_ROUND);
    if (r >= rounds) break;
    const sum = round(load<u32>(STATE + S_SUM), r, work);
    // Commit: both words before the next exit.
    store<u32>(STATE + S_SUM, sum);
    store<u32>(STATE + S_NEXT_ROUND, r + 1);
    if ((r + 1) % PROGRESS_EVERY == 0) {
      puts("progress round=");
      putDec(r + 1);
      puts(" sum=");
      putHex(sum);
      puts("\n");
    }
  }
  const sum = load<u32>(STATE + S_SUM);
  const want = expected(rounds, work);
  puts("result rounds=");
  putDec(load<u32>(STATE + S_NEXT_ROUND));
  puts(" sum=");
  putHex(sum);
  puts(" expected=");
  putHex(want);
  puts(" resumes=");
  putDec(load<u32>(STATE + S_RESUMES));
  puts(sum == want ? " verdict=OK\n" : " verdict=MISMATCH\n");
  cli();
  halt();
  return sum == want ? 0 : 3;
}

export function boot(): i32 {
  if (!bootInfoValid()) return 1;
  store<u32>(STATE + S_NEXT_ROUND, 0);
  store<u32>(STATE + S_SUM, 0);
  store<u32>(STATE + S_ROUNDS, cmdlineNumber("rounds", 4000));
  store<u32>(STATE + S_WORK, cmdlineNumber("work", 20000));
  store<u32>(STATE + S_RESUMES, 0);
  store<u32>(STATE + S_MAGIC, STATE_MAGIC);
  puts("checksum guest: ");
  putDec(load<u32>(STATE + S_ROUNDS));
  puts(" rounds\n");
  return run();
}

export function resume(): i32 {
  if (load<u32>(STATE + S_MAGIC) != STATE_MAGIC) return 2;
  store<u32>(STATE + S_RESUMES, load<u32>(STATE + S_RESUMES) + 1);
  puts("checksum guest: resumed at round=");
  putDec(load<u32>(STATE + S_NEXT_ROUND));
  puts("\n");
  return run();
}
