// A test guest: each command-line word runs one probe of the platform and prints key=value lines
// on COM1, so guest-in-the-loop tests can check what the guest saw.
import { halt, hypercall, rdmsr, sti, VP_INDEX } from "../../platform/hv";
import { puts, putDec, putBytes } from "../../kernel/console";
import { cmdlineHas, partitionId, ramPages } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { setInterruptHandler } from "../../kernel/interrupts";
import { pageAlloc } from "../../kernel/pages";
import { hypervisorPresent, privilegesHigh, privilegesLow } from "../../hv/cpuid";
import { enableHypercalls, getPartitionId, inputPage, postMessage, signalEvent } from "../../hv/hypercall";
import { eventFlagTake, messageDone, messageSlot, sintRoute, synicEnable } from "../../hv/synic";
import { HvCall } from "../../../abi/hv-hypercall";

const VMBUS_SINT: u32 = 2;
const VECTOR: u32 = 0x32;
const GOT_MESSAGE: usize = memory.data(4, 4);
const GOT_EVENT: usize = memory.data(4, 4);
const PAYLOAD: usize = memory.data(256, 16);
export const MARKER_GPA: usize = 0x300000;

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

function onVmbus(vector: u32): void {
  const slot = messageSlot(VP_INDEX, VMBUS_SINT);
  const type = atomic.load<u32>(slot);
  if (type != 0) {
    const size = <u32>load<u8>(slot, 4);
    memory.copy(PAYLOAD, slot + 16, size);
    messageDone(VP_INDEX, VMBUS_SINT);
    puts("msg=");
    putBytes(PAYLOAD, size);
    puts("\n");
    kv("msgtype", type);
    atomic.add<u32>(GOT_MESSAGE, 1);
  }
  if (eventFlagTake(VP_INDEX, VMBUS_SINT, 7)) {
    kv("event", 7);
    atomic.add<u32>(GOT_EVENT, 1);
  }
}

function main(): i32 {
  kv("ram_kib", ramPages() * 4);
  kv("hv", hypervisorPresent() ? 1 : 0);
  kv("privlo", privilegesLow());
  kv("privhi", privilegesHigh());
  // An assertion: the SDK routes it to hv.panic with its message and source location.
  if (cmdlineHas("panic")) assert(false, "probe asked to panic");
  if (cmdlineHas("ud")) hypercall(HvCall.GetPartitionId, 0, 0, 0);
  if (cmdlineHas("oob")) kv("oob", load<u32>(<usize>ramPages() * 4096 + 64));
  if (cmdlineHas("gp")) kv("gp", rdmsr(0x1234));
  kv("enabled", enableHypercalls(pageAlloc()) ? 1 : 0);
  kv("partition", getPartitionId());
  if (cmdlineHas("marker")) {
    kv("marker_before", load<u32>(MARKER_GPA));
    store<u32>(MARKER_GPA, partitionId());
  }
  synicEnable(VP_INDEX);
  setInterruptHandler(VECTOR, onVmbus);
  sintRoute(VMBUS_SINT, VECTOR);
  sti();
  if (cmdlineHas("post")) {
    const text = "hello root";
    for (let i = 0; i < text.length; i++) store<u8>(PAYLOAD + i, <u8>text.charCodeAt(i));
    kv("post", postMessage(0x100, 1, PAYLOAD, text.length));
    kv("post_bad_conn", postMessage(0x999, 1, PAYLOAD, 4));
    kv("post_bad_type", postMessage(0x100, 0x80000001, PAYLOAD, 4));
    kv("post_too_big", postMessage(0x100, 1, PAYLOAD, 241));
  }
  if (cmdlineHas("signal")) {
    kv("signal", signalEvent(0x101, 2));
    kv("signal_bad_flag", signalEvent(0x101, 9));
    kv("signal_bad_conn", signalEvent(0x999, 0));
  }
  if (cmdlineHas("rootcall")) {
    memory.fill(inputPage(), 0, 72);
    kv("create_partition", hypercall(HvCall.CreatePartition, 0, inputPage(), inputPage() + 2048) & 0xffff);
    kv("create_port", hypercall(HvCall.CreatePort, 0, inputPage(), 0) & 0xffff);
    kv("unknown_code", hypercall(0x7fff, 0, inputPage(), 0) & 0xffff);
  }
  if (cmdlineHas("wait")) {
    puts("ready\n");
    while (atomic.load<u32>(GOT_MESSAGE) == 0 || atomic.load<u32>(GOT_EVENT) == 0) halt();
  }
  if (cmdlineHas("spin")) {
    puts("spinning\n");
    let x: u32 = 0;
    while (atomic.load<u32>(GOT_EVENT) != 0xffffffff) x++;
  }
  puts("done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
