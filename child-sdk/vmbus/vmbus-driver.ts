// The guest's VMBus driver: runs the client state machine (client.ts) over the SynIC. Control
// messages go out with HvCallPostMessage on the connection the client names (4 for
// INITIATE_CONTACT from 5.0, then VERSION_RESPONSE.msg_conn_id; Linux connection.c) and come in
// through the SINT2 message slot, which is copied out and freed (pending/EOM, TLFS SynIC)
// before the client looks at the copy. The SINT2 interrupt handler only counts wake-ups: all
// protocol work happens in vmbusPoll on the driver's own path, so the client state is never
// entered re-entrantly from an interrupt taken inside an exit. Single-VP guests (VP 0 drives
// VMBus); state lives in memory, not in module globals (a Wasm global is per VP instance).
import { halt, VP_INDEX } from "../platform/hv";
import { postMessage } from "../hv/hypercall";
import { messageDone, messageSlot, simPage, sintRoute, synicEnable } from "../hv/synic";
import { setInterruptHandler } from "../kernel/interrupts";
import { pageAlloc, pageAllocRun } from "../kernel/pages";
import { HvStatus } from "../../abi/hv-status";
import { VMBUS_MESSAGE_SINT, VMBUS_SYNIC_MESSAGE_TYPE, VMBUS_MAX_MESSAGE_SIZE } from "./channel-protocol";
import { CLIENT_STATE_SIZE, ClientPhase } from "./client-state";
import { clientInit, clientPhase, clientPostConnectionId, clientReceive, clientStart, clientUnload } from "./client";

// Driver block: [0] client state GPA, [4] outgoing message GPA, [8] received-message copy GPA,
// [12] SINT2 wake-ups, [16] messages received, [20] messages posted, [24] posts retried,
// [28] next GPADL handle, [32] client errors seen.
const DRIVER: usize = memory.data(64, 16);
const D_STATE: usize = 0;
const D_OUT: usize = 4;
const D_RX: usize = 8;
const D_WAKE: usize = 12;
const D_RECEIVED: usize = 16;
const D_POSTED: usize = 20;
const D_RETRIED: usize = 24;
const D_NEXT_GPADL: usize = 28;
const D_ERRORS: usize = 32;

/** Linux starts GPADL handles at 0xE1E10 (drivers/hv/channel.c next_gpadl_handle). */
const FIRST_GPADL_HANDLE: u32 = 0xe1e10;
/** Posts refused for lack of buffers are retried this often before giving up (the host drains its port queue continuously). */
const POST_RETRIES: u32 = 1_000_000;

/** GPA of the client state block (client.ts) vmbusInit allocated; 0 before it. */
export function vmbusState(): usize { return load<usize>(DRIVER + D_STATE); }
/** GPA of the outgoing-message buffer: client functions write there, vmbusPost sends from there. */
export function vmbusOut(): usize { return load<usize>(DRIVER + D_OUT); }
/** SINT2 interrupts taken so far (read atomically; the handler only counts). */
export function vmbusWakeCount(): u32 { return atomic.load<u32>(DRIVER + D_WAKE); }
/** SINT2 message-slot messages consumed by vmbusPoll, VMBus or not. */
export function vmbusMessagesReceived(): u32 { return load<u32>(DRIVER + D_RECEIVED); }
/** Messages HvCallPostMessage accepted. */
export function vmbusMessagesPosted(): u32 { return load<u32>(DRIVER + D_POSTED); }
/** Posts repeated after HV_STATUS_INSUFFICIENT_BUFFERS. */
export function vmbusPostRetries(): u32 { return load<u32>(DRIVER + D_RETRIED); }
/** Received messages the client refused (clientReceive returned a ClientError). */
export function vmbusClientErrors(): u32 { return load<u32>(DRIVER + D_ERRORS); }

function onSint2(vector: u32): void {
  atomic.add<u32>(DRIVER + D_WAKE, 1);
}

/**
 * Enables the SynIC (if not yet), routes SINT2 to `vector` and prepares the client. Call with
 * interrupts disabled; enable them (sti) before vmbusConnect. False when pages ran out.
 */
export function vmbusInit(vector: u32): bool {
  if (simPage(VP_INDEX) == 0 && synicEnable(VP_INDEX) == 0) return false;
  const st = pageAllocRun(<u32>(CLIENT_STATE_SIZE >> 12));
  const out = pageAlloc();
  // Interrupt page and monitor pages: reported in INITIATE_CONTACT below 5.0 (Linux vmbus_negotiate_version).
  const irq = pageAlloc();
  const mon = pageAllocRun(2);
  if (st == 0 || out == 0 || irq == 0 || mon == 0) return false;
  store<usize>(DRIVER + D_STATE, st);
  store<usize>(DRIVER + D_OUT, out);
  store<usize>(DRIVER + D_RX, out + 2048);
  store<u32>(DRIVER + D_NEXT_GPADL, FIRST_GPADL_HANDLE);
  clientInit(st, <u32>VP_INDEX, <u32>irq, <u32>mon, <u32>(mon + 4096));
  setInterruptHandler(vector, onSint2);
  sintRoute(VMBUS_MESSAGE_SINT, vector);
  return true;
}

/** Posts the `length`-byte message at vmbusOut() on the connection the client chose. Returns the HV_STATUS. */
export function vmbusPost(length: i32): u32 {
  if (length <= 0) return HvStatus.Success;
  const conn = clientPostConnectionId(vmbusState());
  let status: u32 = 0;
  for (let i: u32 = 0; i < POST_RETRIES; i++) {
    status = postMessage(conn, VMBUS_SYNIC_MESSAGE_TYPE, vmbusOut(), <u32>length);
    if (status != HvStatus.InsufficientBuffers) break;
    store<u32>(DRIVER + D_RETRIED, load<u32>(DRIVER + D_RETRIED) + 1);
  }
  if (status == HvStatus.Success) store<u32>(DRIVER + D_POSTED, load<u32>(DRIVER + D_POSTED) + 1);
  return status;
}

/**
 * Handles the message waiting in the SINT2 slot, if any: copy out, free the slot (EOM when
 * another is pending), run the client, post its answer. True when a message was handled.
 */
export function vmbusPoll(): bool {
  const slot = messageSlot(VP_INDEX, VMBUS_MESSAGE_SINT);
  const type = atomic.load<u32>(slot);
  if (type == 0) return false;
  let size = <u32>load<u8>(slot, 4);
  if (size > VMBUS_MAX_MESSAGE_SIZE) size = VMBUS_MAX_MESSAGE_SIZE;
  const rx = load<usize>(DRIVER + D_RX);
  memory.copy(rx, slot + 16, size);
  messageDone(VP_INDEX, VMBUS_MESSAGE_SINT);
  store<u32>(DRIVER + D_RECEIVED, load<u32>(DRIVER + D_RECEIVED) + 1);
  if (type != VMBUS_SYNIC_MESSAGE_TYPE) return true; // not VMBus: nothing to do with it
  const r = clientReceive(vmbusState(), rx, size, vmbusOut());
  if (r < 0) store<u32>(DRIVER + D_ERRORS, load<u32>(DRIVER + D_ERRORS) + 1);
  else vmbusPost(r);
  return true;
}

/**
 * One step of waiting for the host: handles a message if one is there, otherwise halts until
 * the next SINT2 interrupt. A wake-up taken during the poll's own exits is not lost: the halt
 * is skipped when the count moved (interrupts are delivered only at exits).
 */
export function vmbusWaitStep(): void {
  const seen = vmbusWakeCount();
  if (vmbusPoll()) return;
  if (vmbusWakeCount() == seen) halt();
}

/** Connects: INITIATE_CONTACT (newest version first), then waits for all offers. True when Ready. */
export function vmbusConnect(): bool {
  const st = vmbusState();
  if (vmbusPost(clientStart(st, vmbusOut())) != HvStatus.Success) return false;
  for (;;) {
    const phase = clientPhase(st);
    if (phase == ClientPhase.Ready) return true;
    if (phase == ClientPhase.NoVersion) return false;
    vmbusWaitStep();
  }
  return false; // not reached
}

/** UNLOAD, then waits for UNLOAD_RESPONSE (the host forgets every channel and GPADL). */
export function vmbusUnload(): bool {
  const st = vmbusState();
  const n = clientUnload(st, vmbusOut());
  if (n < 0 || vmbusPost(n) != HvStatus.Success) return false;
  while (clientPhase(st) != ClientPhase.Unloaded) vmbusWaitStep();
  return true;
}

/** A fresh GPADL handle. */
export function vmbusNextGpadlHandle(): u32 {
  const h = load<u32>(DRIVER + D_NEXT_GPADL);
  store<u32>(DRIVER + D_NEXT_GPADL, h + 1);
  return h;
}
