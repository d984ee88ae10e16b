// A guest that floods the host with VMBus messages it must refuse, for the host's log bounds:
// `count=<n>` (default 20000) HvCallPostMessage calls on the VMBus message connection with SynIC
// message type 2 (VMBus uses 1), each worth one refusal on the host. A post refused with
// INSUFFICIENT_BUFFERS (the host has not drained the port yet) is retried. Prints the tally, then
// idles, still running.
import { halt, sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineNumber } from "../../kernel/boot-info";
import { kernelBoot, SETUP_HYPERCALLS } from "../../kernel/boot";
import { postMessage } from "../../hv/hypercall";

const VMBUS_MESSAGE_CONNECTION_ID: u32 = 1;
const HV_STATUS_SUCCESS: u32 = 0;
const HV_STATUS_INSUFFICIENT_BUFFERS: u32 = 0x13;
const PAYLOAD: usize = memory.data(16, 8);

function main(): i32 {
  const count = <u32>cmdlineNumber("count", 20000);
  let posted: u32 = 0, retries: u32 = 0, other: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    store<u32>(PAYLOAD, i);
    for (;;) {
      const s = postMessage(VMBUS_MESSAGE_CONNECTION_ID, 2, PAYLOAD, 16);
      if (s == HV_STATUS_SUCCESS) { posted++; break; }
      if (s != HV_STATUS_INSUFFICIENT_BUFFERS) { other++; break; }
      retries++;
    }
  }
  puts("message-flood: posted=");
  putDec(posted);
  puts(" retries=");
  putDec(retries);
  puts(" other=");
  putDec(other);
  puts("\n");
  sti();
  for (;;) halt();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main, SETUP_HYPERCALLS);
}

export function interrupt(vector: u32): void {}
