// A guest that keeps rewriting its memory, for live-migration tests and `tsvisor bench migrate`.
// It writes generation after generation over a working set: each page wholly, every word a
// function of (page, generation, word), pages in order, at a bounded rate. At the end of each
// generation it reads the whole set back: every page must hold this generation's words, so a
// page the host failed to copy (stale), or copied torn, shows as a MISMATCH. It also keeps the
// longest gap it saw between two reads of the reference time: the pause a migration causes, as
// the guest observed it.
//
// Command line: `mib=<n>` working set (default 8), `rate=<KiB per ms>` write rate (0: as fast
// as it goes; default 0), `gens=<n>` generations (0: forever; default 0).
// Prints `gen=<g> ok pages=<n> maxgap-us=<µs>` per generation (with TIME-WENT-BACK=<n> if the
// reference time ever read lower than before), or `MISMATCH ...` and stops.
import { cli, halt } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineNumber } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAllocRun } from "../../kernel/pages";
import { referenceTime } from "../../hv/synic";

const PAGE: usize = 4096;
/** Pages written between two looks at the clock. */
const PACE_PAGES: u32 = 16;

@inline function word(page: u32, gen: u32, i: u32): u32 {
  return (gen * 0x9e3779b1) ^ (page * 0x85ebca77) ^ (i * 0xc2b2ae3d) ^ 0x5bd1e995;
}

let lastTime: u64 = 0;
let maxGap: u64 = 0;
let backwards: u32 = 0;

/** The reference time, noting the longest gap between two reads (100 ns units) and any step back. */
function now(): u64 {
  const t = referenceTime();
  if (t < lastTime) backwards++;
  if (lastTime != 0 && t > lastTime && t - lastTime > maxGap) maxGap = t - lastTime;
  lastTime = t;
  return t;
}

function writePage(base: usize, page: u32, gen: u32): void {
  const at = base + <usize>page * PAGE;
  for (let i: u32 = 0; i < <u32>(PAGE / 4); i++) store<u32>(at + (<usize>i << 2), word(page, gen, i));
}

function checkPage(base: usize, page: u32, gen: u32): i32 {
  const at = base + <usize>page * PAGE;
  for (let i: u32 = 0; i < <u32>(PAGE / 4); i++) if (load<u32>(at + (<usize>i << 2)) != word(page, gen, i)) return <i32>i;
  return -1;
}

function main(): i32 {
  const pages = <u32>cmdlineNumber("mib", 8) * 256;
  const kibPerMs = <u64>cmdlineNumber("rate", 0);
  const gens = <u32>cmdlineNumber("gens", 0);
  const base = pageAllocRun(pages);
  if (base == 0) { puts("memory-writer: not enough memory\n"); return 2; }
  puts("memory-writer: ");
  putDec(pages);
  puts(" pages\n");
  const start = now();
  let written: u64 = 0;
  for (let gen: u32 = 1; gens == 0 || gen <= gens; gen++) {
    for (let p: u32 = 0; p < pages; p++) {
      writePage(base, p, gen);
      written += 4;
      if (p % PACE_PAGES == 0) {
        let t = now();
        // Ahead of the rate: wait (reading the clock) until the time it allows has come.
        if (kibPerMs != 0) while (written * 10_000 > (t - start) * kibPerMs) t = now();
      }
    }
    for (let p: u32 = 0; p < pages; p++) {
      const bad = checkPage(base, p, gen);
      if (bad >= 0) {
        puts("MISMATCH gen=");
        putDec(gen);
        puts(" page=");
        putDec(p);
        puts(" word=");
        putDec(<u64>bad);
        puts("\n");
        cli();
        halt();
        return 3;
      }
    }
    now();
    puts("gen=");
    putDec(gen);
    puts(" ok pages=");
    putDec(pages);
    puts(" maxgap-us=");
    putDec(maxGap / 10);
    if (backwards != 0) {
      puts(" TIME-WENT-BACK=");
      putDec(backwards);
    }
    puts("\n");
  }
  puts("memory-writer: done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}
