// An interactive guest, for `tsvisor bench sched`: a periodic synthetic timer (tick=<µs>, default
// 10000), and after each tick a short burst of work (burst=<µs>, default 200), then halt — what a
// shell or a request handler does. Each tick's wake-to-run latency is measured by the guest
// itself: the reference time when its interrupt handler runs minus the timer's ExpirationTime
// (both 100 ns units, from the timer message). Samples leave on COM1 in lines of up to 32:
// "lat <v> <v> …" (100 ns units), the last ones when the count reaches samples=<n> (default 500),
// after which it prints "interactive done" and keeps ticking without reporting.
import { cli, halt, sti, VP_INDEX } from "../../platform/hv";
import { putDec, puts } from "../../kernel/console";
import { cmdlineNumber } from "../../kernel/boot-info";
import { kernelBoot, SETUP_SYNIC } from "../../kernel/boot";
import { setInterruptHandler } from "../../kernel/interrupts";
import { messageDone, messageSlot, referenceTime, sintRoute, stimerPeriodic } from "../../hv/synic";
import { HVMSG_TIMER_EXPIRED } from "../../../abi/hv-msr";

const TIMER_SINT: u32 = 3;
const TIMER_VECTOR: u32 = 0x33;
const LINE: u32 = 32;
/** Latency samples not yet printed (100 ns units), and how many; ticks not yet worked off. */
const SAMPLES: usize = memory.data(4 * LINE, 8);
const COUNT: usize = memory.data(4, 4);
const PENDING: usize = memory.data(4, 4);

function onTimer(vector: u32): void {
  const now = referenceTime();
  const slot = messageSlot(VP_INDEX, TIMER_SINT);
  if (atomic.load<u32>(slot) == HVMSG_TIMER_EXPIRED) {
    // Payload at +16: TimerIndex u32, Reserved u32, ExpirationTime u64, DeliveryTime u64.
    const expiration = load<u64>(slot + 24);
    const n = atomic.load<u32>(COUNT);
    if (n < LINE) {
      store<u32>(SAMPLES + (<usize>n << 2), now > expiration ? <u32>min<u64>(now - expiration, 0xffffffff) : 0);
      atomic.store<u32>(COUNT, n + 1);
    }
    atomic.add<u32>(PENDING, 1);
  }
  messageDone(VP_INDEX, TIMER_SINT);
}

function flush(): void {
  const n = atomic.load<u32>(COUNT);
  if (n == 0) return;
  puts("lat");
  for (let i: u32 = 0; i < n; i++) {
    puts(" ");
    putDec(load<u32>(SAMPLES + (<usize>i << 2)));
  }
  puts("\n");
  atomic.store<u32>(COUNT, 0);
}

function main(): i32 {
  const tickUs = cmdlineNumber("tick", 10000);
  const burst = cmdlineNumber("burst", 200) * 10;
  const wanted = cmdlineNumber("samples", 500);
  setInterruptHandler(TIMER_VECTOR, onTimer);
  sintRoute(TIMER_SINT, TIMER_VECTOR);
  stimerPeriodic(0, TIMER_SINT, tickUs * 10);
  puts("interactive\n");
  sti();
  let reported: u64 = 0;
  let sink: u64 = 0;
  for (;;) {
    halt();
    while (atomic.load<u32>(PENDING) > 0) {
      atomic.sub<u32>(PENDING, 1);
      const until = referenceTime() + burst;
      while (referenceTime() < until) for (let i = 0; i < 200; i++) sink = sink * 6364136223846793005 + 1442695040888963407;
    }
    if (reported < wanted && atomic.load<u32>(COUNT) >= LINE) {
      // No tick may land while the buffer is printed and emptied.
      cli();
      reported += atomic.load<u32>(COUNT);
      flush();
      sti();
      if (reported >= wanted) puts("interactive done\n");
    }
  }
  return <i32>sink;
}

export function boot(): i32 {
  return kernelBoot(main, SETUP_SYNIC);
}

export { interrupt } from "../../kernel/boot";
