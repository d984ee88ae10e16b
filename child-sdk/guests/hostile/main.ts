// A hostile guest for CI (docs/fuzzing.md, "Hostile guest"): VP 0 calls every trapping operation
// with out-of-range arguments and reports what it did; VPs 1..11 each take one fault by design,
// and VP 12, started by VP 10 at a RIP that is no function, traps (run it with 13 VPs).
// Command line: `vps` (start the faulting VPs), `codes=N` (hypercall codes to sweep, default
// 65536), `stride=N` (every Nth port gets wide reads and writes, default 16).
import { cli, halt, sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas, cmdlineNumber, vpCount } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc } from "../../kernel/pages";
import { enableHypercalls, startVirtualProcessor } from "../../hv/hypercall";
import { calls, answers, cpuidSweep, hypercallSweep, messageSweep, mmioSweep, msrReadSweep, msrWriteSweep, portSweep, refused } from "./sweep";
import { FAULT_CASE_COUNT, REACHED, runFaultCase } from "./faults";

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts(" ");
}

function faultingVp(vp: u32): void {
  runFaultCase(vp);
  // Not reached when the case faulted as designed.
  puts("survived=");
  putDec(vp);
  puts("\n");
  cli();
  halt();
}

function main(): i32 {
  cpuidSweep();
  msrReadSweep();
  if (!enableHypercalls(pageAlloc())) { puts("hypercalls not enabled\n"); return 2; }
  msrWriteSweep();
  hypercallSweep(<u32>cmdlineNumber("codes", 0x10000));
  messageSweep();
  portSweep(<u32>cmdlineNumber("stride", 16));
  mmioSweep();
  kv("calls", calls);
  kv("refused", refused);
  kv("answers", answers);
  puts("sweep=done\n");
  if (cmdlineHas("vps")) {
    let started: u32 = 0;
    const n = min<u32>(vpCount() - 1, FAULT_CASE_COUNT);
    for (let vp: u32 = 1; vp <= n; vp++) if (startVirtualProcessor(vp, faultingVp) == 0) started++;
    while (atomic.load<u32>(REACHED) < started) {}
    kv("faulting_vps", started);
    puts("\n");
  }
  // Interrupts on and off again, then the last hostile act: halt with interrupts disabled.
  sti();
  cli();
  puts("halting\n");
  halt();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { vp_start } from "../../kernel/boot";
