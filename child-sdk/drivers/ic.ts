// The guest's integration-component framework: binds the IC offers (heartbeat, shutdown, time
// sync, KVP) by interface GUID, opens each with small rings, and serves what the host sends.
// The host drives every IC conversation (Linux drivers/hv/hv_util.c): NEGOTIATE
// first, then the service's requests; each answer goes back as VM_PKT_DATA_INBAND with the
// request's transaction id, the message rewritten in place (Linux hv_util.c). A malformed or
// unexpected message gets status E_FAIL and the driver carries on.
import { halt, VP_INDEX } from "../platform/hv";
import { eventFlagTake } from "../hv/synic";
import { pageAllocRun } from "../kernel/pages";
import { VMBUS_MESSAGE_SINT } from "../vmbus/channel-protocol";
import { packetLen8, packetOffset8, packetTransIdHi, packetTransIdLo, packetType } from "../vmbus/ring";
import { VmbusPacketType } from "../vmbus/ring-layout";
import { vmbusPoll, vmbusWakeCount } from "../vmbus/vmbus-driver";
import { VscChannel, vscOpen } from "../vmbus/vsc";
import { IC_E_FAIL, ICMSGHDRFLAG_REQUEST, ICMSGTYPE_NEGOTIATE, icAnswer, icFlags, icMessageLength, icMessageType, icNegotiate } from "./ic-protocol";

/** Ring bytes each way (4 KiB control page + 12 KiB data): room for a few 2.6 KiB KVP messages. */
export const IC_RING_BYTES: u32 = 4 * 4096;
/** One packet (descriptor + the largest IC message, a KVP one of 2608 bytes) fits in a page. */
const IC_BUFFER_BYTES: u32 = 4096;

/** Framework versions this guest takes, in preference order (Linux util_fw_version: 3.0, then 1.0). */
export const IC_FRAMEWORK_VERSIONS: usize = memory.data<u32>([0x30000, 0x10000]);

/** Handles one request of the service's own message type at `msg` (`length` bytes); writes the answer in place. False: leave it unanswered. */
export type IcHandler = (dev: IcDevice, msg: usize, length: u32) => bool;

/** One open IC channel: the service it serves, the versions it takes, the negotiated version, its handler and receive buffer. */
export class IcDevice {
  channel: VscChannel;
  /** ICMSGTYPE this device serves. */
  messageType: u32;
  /** Message versions this guest takes, preference order (u32 major << 16 | minor). */
  versions: usize;
  versionCount: u32;
  /** Negotiated message version (0 before NEGOTIATE). */
  version: u32 = 0;
  handler: IcHandler;
  buffer: usize;
  requests: u32 = 0;
  refused: u32 = 0;
  /** While set, requests of the service's type are read and dropped unanswered (a hung service). */
  ignoring: bool = false;

  /** Wraps an open channel; icOpen is the usual way to make one. `versions` holds `versionCount` u32s, `buffer` one page. */
  constructor(channel: VscChannel, messageType: u32, versions: usize, versionCount: u32, handler: IcHandler, buffer: usize) {
    this.channel = channel;
    this.messageType = messageType;
    this.versions = versions;
    this.versionCount = versionCount;
    this.handler = handler;
    this.buffer = buffer;
  }
}

/** Opens the IC offer with interface GUID `ifType` (16 wire bytes); null when it is not offered or the open fails. */
export function icOpen(ifType: usize, messageType: u32, versions: usize, versionCount: u32, handler: IcHandler): IcDevice | null {
  const ch = vscOpen(ifType, IC_RING_BYTES, IC_RING_BYTES);
  if (ch == null) return null;
  const buffer = pageAllocRun(IC_BUFFER_BYTES >> 12);
  return new IcDevice(ch, messageType, versions, versionCount, handler, buffer);
}

/** Answers one received packet at dev.buffer (`n` bytes including the descriptor). */
function serveOne(dev: IcDevice, n: u32): void {
  const p = dev.buffer;
  if (packetType(p) != VmbusPacketType.DataInband) { dev.refused++; return; }
  const offset = packetOffset8(p) << 3;
  const total = packetLen8(p) << 3;
  if (offset > total || total > n) { dev.refused++; return; }
  const msg = p + offset;
  const received = total - offset;
  const length = icMessageLength(msg, received);
  if (length == 0 || (icFlags(msg) & ICMSGHDRFLAG_REQUEST) == 0) { dev.refused++; return; } // nothing trustworthy to answer
  dev.requests++;
  const type = icMessageType(msg);
  if (type == ICMSGTYPE_NEGOTIATE) {
    dev.version = icNegotiate(msg, length, IC_FRAMEWORK_VERSIONS, 2, dev.versions, dev.versionCount);
  } else if (type == dev.messageType && dev.version != 0) {
    if (dev.ignoring) return;
    if (!dev.handler(dev, msg, length)) return;
  } else {
    dev.refused++;
    icAnswer(msg, IC_E_FAIL); // Linux: "Invalid msg type" → HV_E_FAIL
  }
  dev.channel.sendInband(packetTransIdLo(p), packetTransIdHi(p), msg, length, false);
}

/** Serves everything waiting on `dev`'s ring. Returns the requests handled, or a negative ring error. */
export function icServe(dev: IcDevice): i32 {
  let handled: i32 = 0;
  const ch = dev.channel;
  ch.recvBegin();
  let n = ch.recvNext(dev.buffer, IC_BUFFER_BYTES);
  while (n > 0) {
    serveOne(dev, <u32>n);
    handled++;
    n = ch.recvNext(dev.buffer, IC_BUFFER_BYTES);
  }
  ch.recvEnd();
  return n < 0 ? n : handled;
}

/**
 * Sleeps until any of `devices` has a packet or a VMBus control message arrives: each channel's
 * SIEF flag is taken first so the host's next signal raises SINT2 again, then the rings are
 * checked, and the VP halts only if no wake-up came meanwhile (interrupts arrive at exits).
 */
export function icWait(devices: StaticArray<IcDevice | null>): void {
  const seen = vmbusWakeCount();
  for (let i = 0; i < devices.length; i++) {
    const d = unchecked(devices[i]);
    if (d != null) eventFlagTake(VP_INDEX, VMBUS_MESSAGE_SINT, d.channel.relid);
  }
  for (let i = 0; i < devices.length; i++) {
    const d = unchecked(devices[i]);
    if (d != null && d.channel.inbound.writeIndex() != d.channel.inbound.readIndex()) return;
  }
  if (vmbusPoll()) return;
  if (vmbusWakeCount() == seen) halt();
}
