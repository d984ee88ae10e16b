// The sample guest: discovers the hypervisor, enables hypercalls and the SynIC, takes a few
// synthetic-timer interrupts, and halts for good.
import { halt, sti, VP_INDEX } from "../../platform/hv";
import { puts, putDec, putHex } from "../../kernel/console";
import { ramPages, vpCount } from "../../kernel/boot-info";
import { EXIT_NO_HYPERCALLS, kernelBoot } from "../../kernel/boot";
import { setInterruptHandler } from "../../kernel/interrupts";
import { pageAlloc } from "../../kernel/pages";
import { hypervisorPresent } from "../../hv/cpuid";
import { enableHypercalls, getPartitionId } from "../../hv/hypercall";
import { messageDone, messageSlot, sintRoute, stimerPeriodic, stimerStop, synicEnable } from "../../hv/synic";
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
  puts("tsvisor sample guest: ");
  putDec(ramPages() * 4);
  puts(" KiB RAM, ");
  putDec(vpCount());
  puts(" VP\n");
  if (!hypervisorPresent()) {
    puts("no hypervisor: nothing more to do\n");
    return 0;
  }
  puts("hypervisor: Microsoft Hv, interface Hv#1\n");
  if (!enableHypercalls(pageAlloc())) return EXIT_NO_HYPERCALLS;
  puts("partition id ");
  putDec(getPartitionId());
  puts("\n");
  synicEnable(VP_INDEX);
  setInterruptHandler(TIMER_VECTOR, onTimer);
  sintRoute(TIMER_SINT, TIMER_VECTOR);
  stimerPeriodic(0, TIMER_SINT, 100_000); // 10 ms
  sti();
  while (atomic.load<u32>(TICKS) < 5) halt();
  stimerStop(0);
  puts("5 timer interrupts at 10 ms, heap base 0x");
  putHex(__heap_base);
  puts("\nhalting\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
