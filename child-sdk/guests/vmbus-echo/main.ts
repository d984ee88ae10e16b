// A VMBus guest: connects, opens the echo device, round-trips batches of messages and a
// GPA-direct buffer, checks every byte, closes, unloads, halts. Prints key=value lines on COM1
// for test/vmbus/e2e-echo.test.ts. Command-line words add hostile scenarios:
//   badgpa  — a GPA-direct request naming memory the guest does not have (refused per request);
//   corrupt — a corrupted ring index (the host resets the channel; the guest reopens it).
import { cli, halt, sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas, ramPages } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc, pageAllocRun } from "../../kernel/pages";
import { enableHypercalls, signalEvent } from "../../hv/hypercall";
import { clientFindOffer, clientChannelState, clientOfferCount, clientVersion } from "../../vmbus/client";
import { ClientChannelState } from "../../vmbus/client-state";
import {
  vmbusClientErrors, vmbusConnect, vmbusInit, vmbusMessagesPosted, vmbusMessagesReceived, vmbusState, vmbusUnload, vmbusWaitStep,
} from "../../vmbus/vmbus-driver";
import { VscChannel, vscClose, vscLastError, vscLastStatus } from "../../vmbus/vsc";
import { echoGpaRequest, echoOpen, echoRoundTrip } from "../../drivers/echo";
import { ECHO_INTERFACE_TYPE, ECHO_OP_CHECKSUM, ECHO_OP_REVERSE } from "../../drivers/echo-protocol";

const VMBUS_VECTOR: u32 = 0x30;
const RING_BYTES: u32 = 16 * 4096; // per direction: 32 ring pages, so the GPADL needs a GPADL_BODY
const RESULT: usize = memory.data(8, 8);
const GPA_LENGTH: u32 = 10000;

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

function report(ch: VscChannel, prefix: string): void {
  kv(prefix + "signals_to_host", ch.signals);
  kv(prefix + "packets_sent", ch.packetsSent);
  kv(prefix + "packets_received", ch.packetsReceived);
  kv(prefix + "halts", ch.halts);
}

/** Reverse request over a pattern buffer straddling pages; prints what the host did. */
function gpaReverse(ch: VscChannel): void {
  const buf = pageAllocRun(4) + 100;
  let sum: u32 = 0;
  for (let i: u32 = 0; i < GPA_LENGTH; i++) {
    const b = <u8>(i * 31 + (i >> 8));
    store<u8>(buf + i, b);
    sum += b;
  }
  kv("gpa_status", echoGpaRequest(ch, ECHO_OP_REVERSE, buf, GPA_LENGTH, 5000, RESULT));
  kv("gpa_bytes", load<u32>(RESULT));
  kv("gpa_checksum_ok", load<u32>(RESULT, 4) == sum ? 1 : 0);
  let reversed: u32 = 1;
  for (let i: u32 = 0; i < GPA_LENGTH; i++) {
    const j = GPA_LENGTH - 1 - i;
    if (load<u8>(buf + i) != <u8>(j * 31 + (j >> 8))) { reversed = 0; break; }
  }
  kv("gpa_reversed_ok", reversed);
  // Guard bytes either side were not touched.
  kv("gpa_guard_ok", load<u8>(buf - 1) == 0 && load<u8>(buf + GPA_LENGTH) == 0 ? 1 : 0);
}

function badGpa(ch: VscChannel): void {
  const outside = <usize>ramPages() * 4096 + 64;
  kv("badgpa_status", echoGpaRequest(ch, ECHO_OP_CHECKSUM, outside, 64, 6000, RESULT));
  const buf = pageAlloc();
  store<u32>(buf, 0x01020304);
  kv("after_badgpa_status", echoGpaRequest(ch, ECHO_OP_CHECKSUM, buf, 4, 6001, RESULT));
  kv("after_badgpa_checksum", load<u32>(RESULT, 4));
}

/** Corrupts the guest → host ring's write_index and signals; the host must reset the channel. */
function corruptRing(ch: VscChannel): VscChannel | null {
  atomic.store<u32>(ch.outbound.control, 3); // misaligned write_index (refused by the host, as OpenVMM vmbus_ring does)
  signalEvent(ch.connectionId, 0);
  while (!ch.isRescinded()) ch.waitForHost();
  kv("rescinded", 1);
  vscClose(ch);
  const st = vmbusState();
  // The host offers the device again once the relid is released (hot add).
  for (;;) {
    const relid = clientFindOffer(st, ECHO_INTERFACE_TYPE, 0);
    if (relid != 0 && clientChannelState(st, relid) == ClientChannelState.Offered) break;
    vmbusWaitStep();
  }
  const again = echoOpen(RING_BYTES);
  kv("reopened", again != null ? 1 : 0);
  if (again != null) kv("reopen_echo", echoRoundTrip(again, 4, 4, 16, true));
  return again;
}

function main(): i32 {
  kv("hypercalls", enableHypercalls(pageAlloc()) ? 1 : 0);
  kv("vmbus_init", vmbusInit(VMBUS_VECTOR) ? 1 : 0);
  sti();
  kv("connected", vmbusConnect() ? 1 : 0);
  kv("version", clientVersion(vmbusState()));
  kv("offers", clientOfferCount(vmbusState()));
  let ch = echoOpen(RING_BYTES);
  if (ch == null) {
    kv("open_error", vscLastError());
    kv("open_status", vscLastStatus());
    puts("done\n");
    cli();
    halt();
    return 1;
  }
  kv("opened", 1);
  kv("relid", ch.relid);
  kv("echo_completions", echoRoundTrip(ch, 64, 16, 100, true));
  kv("echo_inband", echoRoundTrip(ch, 32, 8, 40, false));
  gpaReverse(ch);
  report(ch, "");
  if (cmdlineHas("badgpa")) badGpa(ch);
  if (cmdlineHas("corrupt")) ch = corruptRing(ch);
  if (ch != null) {
    vscClose(ch);
    kv("closed", 1);
  }
  kv("unloaded", vmbusUnload() ? 1 : 0);
  kv("messages_received", vmbusMessagesReceived());
  kv("messages_posted", vmbusMessagesPosted());
  kv("client_errors", vmbusClientErrors());
  puts("done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
