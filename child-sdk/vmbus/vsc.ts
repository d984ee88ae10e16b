// The VSC framework: a guest driver binds to an offer by interface GUID, opens it with the ring
// sizes it chooses and then sends and receives packets on the channel's two rings (Linux
// channel.c, ring_buffer.c). The framework allocates the ring pages (contiguous, as Linux does),
// describes them in a GPADL, opens the channel, and applies the ring's signal rules: the host is
// signalled (HvCallSignalEvent on the offer's connection id, fast form) only when a committed
// batch took the ring from empty to non-empty while the host listened, or when a read freed the
// space the host said it was waiting for (pending_send_sz). Packet paths allocate nothing.
import { halt, VP_INDEX } from "../platform/hv";
import { signalEvent } from "../hv/hypercall";
import { eventFlagTake } from "../hv/synic";
import { pageAllocRun } from "../kernel/pages";
import { HvStatus } from "../../abi/hv-status";
import { VMBUS_MESSAGE_SINT } from "./channel-protocol";
import { ClientChannelState, ClientGpadlState } from "./client-state";
import {
  clientChannelConnectionId, clientChannelState, clientCloseChannel, clientCreateGpadl, clientFindOffer, clientGpadlState,
  clientGpadlStatus, clientNextGpadlBody, clientOpenChannel, clientReleaseRelid, clientTeardownGpadl, clientChannelOpenStatus,
} from "./client";
import { RingBuffer, RING_FULL, RING_WRITTEN, encodeGpaDirectHeader } from "./ring";
import { RING_FEAT_PENDING_SEND_SZ, VmbusPacketType, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED } from "./ring-layout";
import { vmbusNextGpadlHandle, vmbusOut, vmbusPoll, vmbusPost, vmbusState, vmbusWaitStep, vmbusWakeCount } from "./vmbus-driver";

/** vscOpen failures (vscLastError). */
export enum VscError {
  None = 0,
  NoOffer = 1,
  BadRingSize = 2,
  OutOfPages = 3,
  GpadlRefused = 4, // GPADL_CREATED with a non-zero status (vscLastStatus)
  OpenRefused = 5, // OPENCHANNEL_RESULT with a non-zero status (vscLastStatus)
  PostFailed = 6,
}

const LAST: usize = memory.data(8, 8); // [0] VscError, [4] host status
/** Why the last vscOpen failed (VscError; None after a success). */
export function vscLastError(): u32 { return load<u32>(LAST); }
/** The host's status behind GpadlRefused / OpenRefused from the last vscOpen, else 0. */
export function vscLastStatus(): u32 { return load<u32>(LAST, 4); }
function failed(e: VscError, status: u32 = 0): VscChannel | null {
  store<u32>(LAST, e);
  store<u32>(LAST, status, 4);
  return null;
}

/** Largest GPA-direct buffer one packet can describe from the per-channel header page. */
export const VSC_MAX_GPA_DIRECT_PAGES: u32 = (4096 - 16) / 8;

/** Ring pages of one channel: the PFN list and the OPENCHANNEL user data share one scratch page. */
export const VSC_MAX_RING_PAGES: u32 = (4096 - 128) / 8;

/** An open VMBus channel: its two rings, the GPADL over them and the host's connection id. Made by vscOpen, ended by vscClose. */
export class VscChannel {
  relid: u32 = 0;
  connectionId: u32 = 0;
  gpadl: u32 = 0;
  /** Guest → host ring (this side produces) and host → guest ring (this side consumes). */
  outbound: RingBuffer;
  inbound: RingBuffer;
  /** One page: the GPADL's PFN list at open, then GPA-direct headers. */
  scratch: usize = 0;
  signals: u32 = 0;
  packetsSent: u32 = 0;
  packetsReceived: u32 = 0;
  halts: u32 = 0;
  private batching: bool = false;

  /** Lays out the rings at `ringBase`: `sendBytes` guest → host, then `recvBytes` host → guest, each starting with its 4 KiB control page. */
  constructor(ringBase: usize, sendBytes: u32, recvBytes: u32) {
    this.outbound = new RingBuffer(ringBase, sendBytes - 4096);
    this.inbound = new RingBuffer(ringBase + sendBytes, recvBytes - 4096);
  }

  /** True while the host may use the channel (not rescinded, not closed). */
  isOpen(): bool { return clientChannelState(vmbusState(), this.relid) == ClientChannelState.Open; }
  /** True once the host rescinded the offer; vscClose then also sends RELID_RELEASED. */
  isRescinded(): bool { return clientChannelState(vmbusState(), this.relid) == ClientChannelState.Rescinded; }

  private signalHost(): void {
    if (signalEvent(this.connectionId, 0) == HvStatus.Success) this.signals++;
  }

  // ---- sending ----------------------------------------------------------------------------

  /** Starts a batch: packets written until batchEnd are published (and signalled) once. */
  batchBegin(): void {
    this.outbound.beginWrite();
    this.batching = true;
  }

  /** Ends the batch: publishes write_index once and signals the host if the ring went from empty to non-empty while it listened. */
  batchEnd(): void {
    this.batching = false;
    if (this.outbound.commitWrite()) this.signalHost();
  }

  /**
   * Writes one packet; in a batch it is published at batchEnd, otherwise at once. When the ring
   * is full, publishes what is pending and blocks until the host frees the space (pending_send_sz).
   * Returns RING_WRITTEN or a negative ring error (corrupt ring, packet too large, channel gone).
   */
  send(type: u32, flags: u32, transLo: u32, transHi: u32, header: usize, headerLen: u32, payload: usize, payloadLen: u32): i32 {
    if (!this.batching) this.outbound.beginWrite();
    for (;;) {
      const r = this.outbound.tryWrite(type, flags, transLo, transHi, header, headerLen, payload, payloadLen);
      if (r == RING_WRITTEN) {
        this.packetsSent++;
        if (!this.batching && this.outbound.commitWrite()) this.signalHost();
        return r;
      }
      if (r != RING_FULL) return r;
      if (this.outbound.commitWrite()) this.signalHost();
      const needed = this.outbound.neededBytes;
      while (!this.outbound.requestSpace(needed)) {
        if (!this.isOpen()) return -3;
        this.waitForHost();
      }
      this.outbound.beginWrite();
    }
    return -1; // not reached
  }

  /** VM_PKT_DATA_INBAND carrying `length` bytes at `payload`; returns as send(). */
  sendInband(transLo: u32, transHi: u32, payload: usize, length: u32, completionRequested: bool): i32 {
    return this.send(VmbusPacketType.DataInband, completionRequested ? VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED : 0, transLo, transHi, 0, 0, payload, length);
  }

  /**
   * VM_PKT_DATA_USING_GPA_DIRECT describing `length` bytes of guest memory at `buffer` (one
   * range; Linux storvsc's form), with `payload` as the request; completion always requested.
   */
  sendGpaDirect(transLo: u32, transHi: u32, buffer: usize, length: u32, payload: usize, payloadLength: u32): i32 {
    const offset = <u32>(buffer & 4095);
    const pages = <u32>((<u64>offset + <u64>length + 4095) >> 12);
    if (pages > VSC_MAX_GPA_DIRECT_PAGES) return -2;
    const h = this.scratch;
    const first = buffer >> 12;
    for (let i: u32 = 0; i < pages; i++) store<u64>(h + 16 + (<usize>i << 3), <u64>(first + i));
    const headerLen = encodeGpaDirectHeader(h, length, offset, h + 16, pages);
    return this.send(VmbusPacketType.DataUsingGpaDirect, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, transLo, transHi, h, headerLen, payload, payloadLength);
  }

  // ---- receiving --------------------------------------------------------------------------

  /** Starts reading a batch; recvNext until 0, then recvEnd publishes and signals once. */
  recvBegin(): void { this.inbound.beginRead(); }

  /** Copies the next packet (descriptor included) to `dst`: its length, 0 when none, or a negative ring error. */
  recvNext(dst: usize, capacity: u32): i32 {
    const n = this.inbound.tryRead(dst, capacity);
    if (n > 0) this.packetsReceived++;
    return n;
  }

  /** Publishes read_index once for the batch; signals the host when it was waiting for the freed space (pending_send_sz). */
  recvEnd(): void {
    if (this.inbound.commitRead()) this.signalHost();
  }

  /** Blocks until a packet arrives (or the channel is rescinded: 0); returns as recvNext. */
  recv(dst: usize, capacity: u32): i32 {
    for (;;) {
      this.recvBegin();
      const n = this.recvNext(dst, capacity);
      this.recvEnd();
      if (n != 0 || !this.isOpen()) return n;
      this.waitForHost();
    }
    return 0; // not reached
  }

  /**
   * Sleeps until the host signals this channel (its SIEF flag on SINT2) or a control message
   * arrives. The flag is taken first so that the host's next signal raises SINT2 again.
   */
  waitForHost(): void {
    const seen = vmbusWakeCount();
    eventFlagTake(VP_INDEX, VMBUS_MESSAGE_SINT, this.relid);
    if (this.inbound.writeIndex() != this.inbound.readIndex()) return;
    if (vmbusPoll()) return;
    if (vmbusWakeCount() == seen) {
      this.halts++;
      halt();
    }
  }
}

function waitGpadl(handle: u32): u32 {
  while (clientGpadlState(vmbusState(), handle) == ClientGpadlState.Creating) vmbusWaitStep();
  return clientGpadlState(vmbusState(), handle);
}

/**
 * Binds to the first offer with interface GUID `ifType` (16 wire bytes) and opens it with a
 * guest → host ring of `sendBytes` and a host → guest ring of `recvBytes`, each counting its
 * 4 KiB control page (Linux VMBUS_RING_SIZE) and a multiple of 4 KiB, at least 8 KiB. `userData`
 * (120 bytes, or 0) goes into OPENCHANNEL; `subChannelIndex` > 0 opens that sub-channel of the
 * device instead (offered after the device protocol asked for it, Linux vmbus_process_offer).
 * `targetVp` (OPENCHANNEL target_vp, default: the calling VP) is the VP the host signals for this
 * channel: it must have its SynIC on, and it is the VP that waits on the channel (waitForHost
 * takes the flag from the caller's own event page). Null on failure (vscLastError / vscLastStatus).
 */
export function vscOpen(ifType: usize, sendBytes: u32, recvBytes: u32, userData: usize = 0, subChannelIndex: u32 = 0, targetVp: i32 = -1): VscChannel | null {
  const st = vmbusState();
  const relid = clientFindOffer(st, ifType, subChannelIndex);
  if (relid == 0 || clientChannelState(st, relid) != ClientChannelState.Offered) return failed(VscError.NoOffer);
  if ((sendBytes & 4095) != 0 || (recvBytes & 4095) != 0 || sendBytes < 8192 || recvBytes < 8192) return failed(VscError.BadRingSize);
  const pages = (sendBytes + recvBytes) >> 12;
  if (pages > VSC_MAX_RING_PAGES) return failed(VscError.BadRingSize);
  const base = pageAllocRun(pages);
  const scratch = pageAllocRun(1);
  if (base == 0 || scratch == 0) return failed(VscError.OutOfPages);
  const ch = new VscChannel(base, sendBytes, recvBytes);
  ch.relid = relid;
  ch.connectionId = clientChannelConnectionId(st, relid);
  ch.scratch = scratch;
  // The GPADL: one range over the ring pages, header then bodies (Linux vmbus_establish_gpadl).
  for (let i: u32 = 0; i < pages; i++) store<u64>(scratch + (<usize>i << 3), <u64>((base >> 12) + i));
  ch.gpadl = vmbusNextGpadlHandle();
  if (vmbusPost(clientCreateGpadl(st, relid, ch.gpadl, scratch, pages, vmbusOut())) != HvStatus.Success) return failed(VscError.PostFailed);
  for (let n = clientNextGpadlBody(st, vmbusOut()); n > 0; n = clientNextGpadlBody(st, vmbusOut())) vmbusPost(n);
  if (waitGpadl(ch.gpadl) != ClientGpadlState.Created) {
    const status = clientGpadlStatus(st, ch.gpadl);
    vmbusPost(clientTeardownGpadl(st, ch.gpadl, vmbusOut())); // frees the failed entry
    return failed(VscError.GpadlRefused, status);
  }
  // This side produces on the outbound ring: advertise FEAT_PENDING_SEND_SZ (Linux does).
  ch.outbound.initAsProducer(RING_FEAT_PENDING_SEND_SZ);
  const ud = userData != 0 ? userData : scratch + 4096 - 128;
  if (userData == 0) memory.fill(ud, 0, 120);
  if (vmbusPost(clientOpenChannel(st, relid, ch.gpadl, sendBytes >> 12, targetVp < 0 ? <u32>VP_INDEX : <u32>targetVp, ud, vmbusOut())) != HvStatus.Success) return failed(VscError.PostFailed);
  while (clientChannelState(st, relid) == ClientChannelState.Opening) vmbusWaitStep();
  if (clientChannelState(st, relid) != ClientChannelState.Open) {
    const status = clientChannelOpenStatus(st, relid);
    vscTeardown(ch);
    return failed(VscError.OpenRefused, status);
  }
  store<u32>(LAST, 0);
  return ch;
}

function vscTeardown(ch: VscChannel): void {
  const st = vmbusState();
  const n = clientTeardownGpadl(st, ch.gpadl, vmbusOut());
  if (n > 0 && vmbusPost(n) == HvStatus.Success) {
    while (clientGpadlState(st, ch.gpadl) == ClientGpadlState.TearingDown) vmbusWaitStep();
  }
}

/**
 * Closes the channel (CLOSECHANNEL), tears its GPADL down and waits for GPADL_TORNDOWN; for a
 * rescinded channel also sends RELID_RELEASED (Linux vmbus_release_relid). The ring pages are
 * the guest's again afterwards.
 */
export function vscClose(ch: VscChannel): void {
  const st = vmbusState();
  const rescinded = ch.isRescinded();
  vmbusPost(clientCloseChannel(st, ch.relid, vmbusOut()));
  vscTeardown(ch);
  if (rescinded) vmbusPost(clientReleaseRelid(st, ch.relid, vmbusOut()));
}

/**
 * Describes `pages` contiguous guest pages at `base` to the host in a GPADL on `ch`'s channel
 * (the receive and send buffers of netvsc are GPADLs of their own, Linux netvsc.c), the PFN list
 * built in `pfnList` (8 bytes a page). Waits for GPADL_CREATED; the handle, or 0 when refused.
 */
export function vscCreateGpadl(ch: VscChannel, base: usize, pages: u32, pfnList: usize): u32 {
  const st = vmbusState();
  for (let i: u32 = 0; i < pages; i++) store<u64>(pfnList + (<usize>i << 3), <u64>((base >> 12) + i));
  const handle = vmbusNextGpadlHandle();
  if (vmbusPost(clientCreateGpadl(st, ch.relid, handle, pfnList, pages, vmbusOut())) != HvStatus.Success) return 0;
  for (let n = clientNextGpadlBody(st, vmbusOut()); n > 0; n = clientNextGpadlBody(st, vmbusOut())) vmbusPost(n);
  if (waitGpadl(handle) != ClientGpadlState.Created) {
    vmbusPost(clientTeardownGpadl(st, handle, vmbusOut()));
    return 0;
  }
  return handle;
}
