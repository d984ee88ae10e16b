// CPU guest: compute kernels that never exit, and a computing (or halting) VP taking periodic
// timer interrupts. Used by `tsvisor bench cpu` and the preemption tests.
//   kernel=K n=N     run kernel K (1 hash, 2 sort, 3 matmul, 4 recursive, 5 memory) N times;
//                    prints sum=<checksum> t=<100 ns units>, then halts for good
//   spin ticks=N period=P   periodic SynIC timer every P×100 ns, then compute without a single
//                    exit until N interrupts arrived (N = 0: forever); `wait` instead of `spin`
//                    halts between interrupts. Prints ticks=N.
// Results for the host at RESULT_GPA: +0 progress (spin rounds), +4 interrupts taken, +8 latency
// samples taken, +64.. one u32 per interrupt: reference time at the handler minus the timer's
// expiration time (100 ns units).
import { halt, sti, VP_INDEX } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas, cmdlineNumber } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { setInterruptHandler } from "../../kernel/interrupts";
import { pageAlloc } from "../../kernel/pages";
import { enableHypercalls } from "../../hv/hypercall";
import { messageDone, messageSlot, referenceTime, sintRoute, stimerPeriodic, stimerStop, synicEnable } from "../../hv/synic";
import { HVMSG_TIMER_EXPIRED } from "../../../abi/hv-msr";
import { fib, hashKernel, matmulKernel, memoryKernel, sortKernel } from "./kernels";

const RESULT_GPA: usize = 0x3000;
const PROGRESS: usize = RESULT_GPA;
const TICKS: usize = RESULT_GPA + 4;
const SAMPLES: usize = RESULT_GPA + 8;
const SAMPLE_AT: usize = RESULT_GPA + 64;
const MAX_SAMPLES: u32 = (4096 - 64) / 4;
const TIMER_SINT: u32 = 3;
const TIMER_VECTOR: u32 = 0x34;
/** Work area of the kernels: above the runtime heap and the page allocator's first pages. */
const WORK: usize = 0x800000;

function onTimer(vector: u32): void {
  const slot = messageSlot(VP_INDEX, TIMER_SINT);
  if (atomic.load<u32>(slot) == HVMSG_TIMER_EXPIRED) {
    const late = referenceTime() - load<u64>(slot + 24); // HV_TIMER_MESSAGE_PAYLOAD.ExpirationTime
    const n = atomic.load<u32>(SAMPLES);
    if (n < MAX_SAMPLES) {
      store<u32>(SAMPLE_AT + (<usize>n << 2), <u32>min<u64>(late, 0xffffffff));
      atomic.store<u32>(SAMPLES, n + 1);
    }
    atomic.add<u32>(TICKS, 1);
  }
  messageDone(VP_INDEX, TIMER_SINT);
}

function runKernel(k: u32, n: u32): u32 {
  if (k == 1) return hashKernel(WORK, n);
  if (k == 2) return sortKernel(WORK, n);
  if (k == 3) return matmulKernel(WORK, n);
  if (k == 4) { let s: u32 = 0; for (let i: u32 = 0; i < n; i++) s += fib(24); return s; }
  if (k == 5) return memoryKernel(WORK, n);
  return 0;
}

function timerLoop(halting: bool): void {
  const ticks = <u32>cmdlineNumber("ticks", 0);
  if (!enableHypercalls(pageAlloc())) { puts("no hypercalls\n"); return; }
  synicEnable(VP_INDEX);
  setInterruptHandler(TIMER_VECTOR, onTimer);
  sintRoute(TIMER_SINT, TIMER_VECTOR);
  stimerPeriodic(0, TIMER_SINT, cmdlineNumber("period", 10_000));
  sti();
  let x: u32 = 0x9e3779b9;
  let rounds: u32 = 0;
  while (ticks == 0 || atomic.load<u32>(TICKS) < ticks) {
    if (halting) { halt(); continue; }
    // Pure computation: no exit anywhere in this loop.
    for (let i = 0; i < 4096; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; }
    atomic.store<u32>(PROGRESS, ++rounds);
  }
  stimerStop(0);
  store<u32>(RESULT_GPA + 12, x);
  puts("ticks=");
  putDec(atomic.load<u32>(TICKS));
  puts("\n");
}

function main(): i32 {
  if (cmdlineHas("spin") || cmdlineHas("wait")) {
    timerLoop(cmdlineHas("wait"));
  } else {
    const k = <u32>cmdlineNumber("kernel", 0);
    const n = <u32>cmdlineNumber("n", 1);
    const t0 = referenceTime();
    const sum = runKernel(k, n);
    const t1 = referenceTime();
    puts("sum=");
    putDec(sum);
    puts("\nt=");
    putDec(t1 - t0);
    puts("\n");
  }
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
