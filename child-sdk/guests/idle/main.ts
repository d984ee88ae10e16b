// An idle guest, for `tsvisor bench idle`: it boots, and then does nothing but wait. With
// `tick=<µs>` on its command line it keeps a periodic synthetic timer (a kernel's scheduler tick;
// 10000 µs is Linux's HZ=100) and halts between ticks; without, it halts for good with
// interrupts enabled, as an idle kernel without a tick would.
import { halt, sti, VP_INDEX } from "../../platform/hv";
import { puts } from "../../kernel/console";
import { cmdlineNumber } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { setInterruptHandler } from "../../kernel/interrupts";
import { pageAlloc } from "../../kernel/pages";
import { hypervisorPresent } from "../../hv/cpuid";
import { enableHypercalls } from "../../hv/hypercall";
import { messageDone, messageSlot, sintRoute, stimerPeriodic, synicEnable } from "../../hv/synic";
import { HVMSG_TIMER_EXPIRED } from "../../../abi/hv-msr";

const TIMER_SINT: u32 = 3;
const TIMER_VECTOR: u32 = 0x33;
const TICKS: usize = memory.data(4, 4);

function onTimer(vector: u32): void {
  const slot = messageSlot(VP_INDEX, TIMER_SINT);
  if (atomic.load<u32>(slot) == HVMSG_TIMER_EXPIRED) atomic.add<u32>(TICKS, 1);
  messageDone(VP_INDEX, TIMER_SINT);
}

function main(): i32 {
  const tickUs = cmdlineNumber("tick", 0);
  if (tickUs > 0) {
    if (!hypervisorPresent() || !enableHypercalls(pageAlloc())) return 2;
    synicEnable(VP_INDEX);
    setInterruptHandler(TIMER_VECTOR, onTimer);
    sintRoute(TIMER_SINT, TIMER_VECTOR);
    stimerPeriodic(0, TIMER_SINT, <u64>tickUs * 10); // 100 ns units
  }
  puts("idle\n");
  sti();
  for (;;) halt();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
