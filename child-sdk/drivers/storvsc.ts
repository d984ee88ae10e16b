// The storvsc controller: the guest half of synthetic SCSI (Linux drivers/scsi/storvsc_drv.c;
// OpenVMM vm/devices/storage/storvsp_protocol). Opens the SCSI channel, runs the vstor
// initialization, and owns the request slots every disk on the controller shares: an SRB is
// written into its slot, sent as a GPA-direct packet naming the caller's buffer (in-band when it
// moves no data), and matched to its completion by transaction id (lo = slot, hi = the slot's
// generation, so a stale or forged id never completes the wrong request). Disks
// (storvsc-disk.ts) are BlockDevice views on this controller. Nothing on the I/O path allocates.
import { VscChannel, vscOpen } from "../vmbus/vsc";
import { pageAllocRun } from "../kernel/pages";
import { clientFindOffer } from "../vmbus/client";
import { vmbusState, vmbusWaitStep } from "../vmbus/vmbus-driver";
import { packetOffset8, packetTransIdHi, packetTransIdLo, packetType } from "../vmbus/ring";
import { VmbusPacketType } from "../vmbus/ring-layout";
import { BLOCK_BAD_REQUEST, BLOCK_IO_ERROR, BLOCK_NOT_READY, BLOCK_OK, BLOCK_QUEUE_FULL } from "./block-device";
import { srbResult } from "./storvsc-status";
import {
  SRB_STATUS_AUTOSENSE_VALID, STORVSC_SCSI_INTERFACE_TYPE, VMBUS_RQST_INIT_HI, VMBUS_RQST_INIT_LO, VMSTOR_PROTO_VERSION_WIN10, VMSTOR_PROTO_VERSION_WIN8,
  VMSTOR_PROTO_VERSION_WIN8_1, VSTOR_OPERATION_BEGIN_INITIALIZATION, VSTOR_OPERATION_COMPLETE_IO,
  VSTOR_OPERATION_END_INITIALIZATION, VSTOR_OPERATION_QUERY_PROPERTIES, VSTOR_PACKET_SIZE,
  completionOperation, completionScsiStatus, completionSenseAsc, completionSenseAscq, completionSenseInfoLength, completionSenseKey,
  completionSrbStatus, completionStatus, encodeCreateSubChannels, encodeQueryProtocolVersion, propertiesFlags, propertiesMaxChannelCount,
  propertiesMaxTransferBytes, vstorPacketInit,
} from "./storvsc-protocol";

/** Requests in flight per controller (Linux asks the host for far more; 128 is ample for a guest). */
export const STORVSC_QUEUE_DEPTH: u32 = 128;
/** Disks per controller this driver tracks. */
export const STORVSC_MAX_DISKS: u32 = 8;
/**
 * Ring sizes (control page included). Guest → host: VMBUS_RING_SIZE(128 KiB), Linux's
 * storvsc_ringbuffer_size; it holds all 128 requests even at 256 KiB each (≈616 bytes with 65
 * PFNs), so a submit never waits for ring space while completions pile up on the other ring.
 * Host → guest: 128 completions of 88 bytes fit many times over.
 */
const SEND_RING_BYTES: u32 = 33 * 4096;
const RECV_RING_BYTES: u32 = 16 * 4096;
/** Versions offered, newest first (Linux vmstor_protocols). */
const VERSIONS: StaticArray<u16> = [VMSTOR_PROTO_VERSION_WIN10, VMSTOR_PROTO_VERSION_WIN8_1, VMSTOR_PROTO_VERSION_WIN8];

// Slot layout: 64-byte vstor_packet (request, then the completion copied over it), then metadata.
const SLOT_SIZE: u32 = 128;
const S_STATE: u32 = 64; // SLOT_FREE / SLOT_BUSY / SLOT_DONE
const S_GEN: u32 = 68;
const S_OWNER: u32 = 72; // disk index
const S_RESULT: u32 = 76; // BlockError
const S_SYNC: u32 = 80; // 1: a synchronous call waits on it (not queued for poll)
const S_EXPECTED: u32 = 84; // bytes the request asked to move
const SLOT_FREE: u32 = 0;
const SLOT_BUSY: u32 = 1;
const SLOT_DONE: u32 = 2;

/** Controller failures (StorvscController.error). */
export enum StorvscError {
  None = 0,
  OpenFailed = 1,
  InitFailed = 2,
  NoVersion = 3,
  RingCorrupt = 4,
  ChannelGone = 5,
}

/** One synthetic SCSI channel (primary or sub-channel): the vstor handshake, the shared request slots, batching and completion matching. */
export class StorvscController {
  ch: VscChannel | null = null;
  error: StorvscError = StorvscError.None;
  /** Negotiated vstor version (major << 8 | minor). */
  protocol: u32 = 0;
  /** QUERY_PROPERTIES. */
  maxTransferBytes: u32 = 0;
  maxSubChannels: u32 = 0;
  multiChannel: bool = false;
  // counters
  submitted: u32 = 0;
  completed: u32 = 0;
  /** Completions with a transaction id that matched no request in flight. */
  unmatched: u32 = 0;
  /** In-band packets from the host (ENUMERATE_BUS, REMOVE_DEVICE): noted, not acted on. */
  hostNotifications: u32 = 0;
  /** The last failed request: SRB status, SCSI status, sense key, ASC, ASCQ (0 when there was no sense). */
  lastSrbStatus: u32 = 0;
  lastScsiStatus: u32 = 0;
  lastSenseKey: u32 = 0;
  lastAsc: u32 = 0;
  lastAscq: u32 = 0;
  /** Published submit batches. */
  batches: u32 = 0;
  /** Spins on the completion ring before sleeping (see idle): adapts between pollMin and pollMax. */
  pollSpins: u32 = 2000;
  pollMin: u32 = 2000;
  /** The bound: ≈ 50–100 µs of looking at two ring words; 0 = never grow. */
  pollMax: u32 = 65536;
  /** Waits the spin ended (a completion seen without the host signalling) or missed (halted). */
  pollHits: u64 = 0;
  pollMisses: u64 = 0;
  private pollMissesAtMax: u32 = 0;
  private slots: usize = 0;
  private freeStack: usize = 0; // u16 slot indexes
  private freeTop: u32 = 0;
  private inFlightCount: u32 = 0;
  // Per disk: a FIFO of completed queued tags (u16 × queue depth) and its head/tail.
  private done: usize = 0;
  private doneHead: StaticArray<u32> = new StaticArray<u32>(STORVSC_MAX_DISKS);
  private doneTail: StaticArray<u32> = new StaticArray<u32>(STORVSC_MAX_DISKS);
  private rx: usize = 0;
  private initPacket: usize = 0;
  private batchOpen: bool = false;
  private batchCount: u32 = 0;
  private initDone: bool = false;
  private initStatus: u32 = 0;

  /** Opens the first SCSI controller offer and initializes it. False on failure (see error). */
  open(): bool {
    if (!this.allocate()) return this.fail(StorvscError.OpenFailed);
    this.ch = vscOpen(STORVSC_SCSI_INTERFACE_TYPE, SEND_RING_BYTES, RECV_RING_BYTES);
    if (this.ch == null) return this.fail(StorvscError.OpenFailed);
    return this.initialize();
  }

  /**
   * CREATE_SUB_CHANNELS, sent after END_INITIALIZATION as Linux storvsc_channel_init does when
   * QUERY_PROPERTIES said SUPPORTS_MULTI_CHANNEL. The host then offers `count` sub-channels of
   * this device (sub_channel_index 1..count). True when it accepted.
   */
  createSubChannels(count: u32): bool {
    if (!this.multiChannel || count == 0 || count > this.maxSubChannels) return false;
    encodeCreateSubChannels(this.initPacket, <u16>count);
    return this.initRequest() == 0;
  }

  /**
   * Opens sub-channel `index` of `primary`'s device as a queue of its own: its own rings, slots
   * and completions, the primary's negotiated protocol (a sub-channel carries I/O only). Waits
   * for the offer, which the host sends after CREATE_SUB_CHANNELS. `targetVp` (default: the
   * caller's) gets the channel's interrupts and must be the VP that drives this queue (Linux
   * storvsc spreads its sub-channels over the CPUs the same way).
   */
  openSubChannel(primary: StorvscController, index: u32, targetVp: i32 = -1): bool {
    if (!this.allocate()) return this.fail(StorvscError.OpenFailed);
    const st = vmbusState();
    while (clientFindOffer(st, STORVSC_SCSI_INTERFACE_TYPE, index) == 0) {
      if (primary.ch == null || !primary.ch!.isOpen()) return this.fail(StorvscError.ChannelGone);
      vmbusWaitStep();
    }
    this.ch = vscOpen(STORVSC_SCSI_INTERFACE_TYPE, SEND_RING_BYTES, RECV_RING_BYTES, 0, index, targetVp);
    if (this.ch == null) return this.fail(StorvscError.OpenFailed);
    this.protocol = primary.protocol;
    this.maxTransferBytes = primary.maxTransferBytes;
    return true;
  }

  private allocate(): bool {
    const pages = (STORVSC_QUEUE_DEPTH * SLOT_SIZE) >> 12;
    this.slots = pageAllocRun(pages);
    this.freeStack = pageAllocRun(1);
    this.done = pageAllocRun((STORVSC_MAX_DISKS * STORVSC_QUEUE_DEPTH * 2 + 4095) >> 12);
    this.rx = pageAllocRun(2);
    if (this.slots == 0 || this.freeStack == 0 || this.done == 0 || this.rx == 0) return false;
    this.initPacket = this.rx + 4096;
    for (let i: u32 = 0; i < STORVSC_QUEUE_DEPTH; i++) store<u16>(this.freeStack + (<usize>i << 1), <u16>(STORVSC_QUEUE_DEPTH - 1 - i));
    this.freeTop = STORVSC_QUEUE_DEPTH;
    return true;
  }

  /**
   * Linux storvsc_channel_init: BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION newest first until
   * the host says 0 (negotiating down), QUERY_PROPERTIES, END_INITIALIZATION; each in-band with
   * trans_id VMBUS_RQST_INIT, each waited for.
   */
  private initialize(): bool {
    const p = this.initPacket;
    vstorPacketInit(p, VSTOR_OPERATION_BEGIN_INITIALIZATION, VSTOR_PACKET_SIZE);
    if (this.initRequest() != 0) return this.fail(StorvscError.InitFailed);
    for (let i = 0; i < VERSIONS.length; i++) {
      encodeQueryProtocolVersion(p, VERSIONS[i]);
      const s = this.initRequest();
      if (s == 0xffffffff) return this.fail(StorvscError.InitFailed);
      if (s == 0) {
        this.protocol = VERSIONS[i];
        break;
      }
    }
    if (this.protocol == 0) return this.fail(StorvscError.NoVersion);
    vstorPacketInit(p, VSTOR_OPERATION_QUERY_PROPERTIES, VSTOR_PACKET_SIZE);
    if (this.initRequest() != 0) return this.fail(StorvscError.InitFailed);
    // initRequest copied the reply over initPacket: read it before the next request overwrites it.
    this.maxSubChannels = propertiesMaxChannelCount(p);
    this.multiChannel = (propertiesFlags(p) & 1) != 0;
    this.maxTransferBytes = propertiesMaxTransferBytes(p);
    if (this.maxTransferBytes < 4096) return this.fail(StorvscError.InitFailed);
    vstorPacketInit(p, VSTOR_OPERATION_END_INITIALIZATION, VSTOR_PACKET_SIZE);
    if (this.initRequest() != 0) return this.fail(StorvscError.InitFailed);
    return true;
  }

  /** Sends the packet at initPacket, waits for its completion (copied back over it); its vstor status, or 0xffffffff. */
  private initRequest(): u32 {
    const ch = this.ch!;
    this.initDone = false;
    if (ch.sendInband(VMBUS_RQST_INIT_LO, VMBUS_RQST_INIT_HI, this.initPacket, VSTOR_PACKET_SIZE, true) < 0) return 0xffffffff;
    while (!this.initDone) {
      if (this.reap() == 0) {
        if (this.error != StorvscError.None || !ch.isOpen()) return 0xffffffff;
        ch.waitForHost();
      }
    }
    return this.initStatus;
  }

  private fail(e: StorvscError): bool {
    this.error = e;
    return false;
  }

  // ---- request slots ------------------------------------------------------------------------

  /** Requests sent and not yet completed on this channel. */
  inFlight(): u32 { return this.inFlightCount; }
  /** Address of slot `slot`'s 64-byte vstor_packet: the caller encodes the SRB there; the completion is copied over it. */
  slotPacket(slot: u32): usize { return this.slots + <usize>slot * SLOT_SIZE; }
  /** BLOCK_OK or the BlockError of the slot's completed request (BLOCK_IO_ERROR until it completes). */
  slotResult(slot: u32): i32 { return load<i32>(this.slotPacket(slot) + S_RESULT); }
  /** True once the slot's request has completed (set by reap). */
  slotDone(slot: u32): bool { return load<u32>(this.slotPacket(slot) + S_STATE) == SLOT_DONE; }

  /** A free slot for disk `owner` (its packet to be filled by the caller), or BLOCK_QUEUE_FULL. */
  allocSlot(owner: u32, sync: bool): i32 {
    if (owner >= STORVSC_MAX_DISKS) return BLOCK_BAD_REQUEST;
    if (this.freeTop == 0) return BLOCK_QUEUE_FULL;
    this.freeTop--;
    const slot = <u32>load<u16>(this.freeStack + (<usize>this.freeTop << 1));
    const s = this.slotPacket(slot);
    store<u32>(s + S_OWNER, owner);
    store<u32>(s + S_SYNC, sync ? 1 : 0);
    store<i32>(s + S_RESULT, BLOCK_IO_ERROR);
    return <i32>slot;
  }

  /** Returns the slot to the free stack and bumps its generation, so a late completion with the old id no longer matches. */
  freeSlot(slot: u32): void {
    const s = this.slotPacket(slot);
    store<u32>(s + S_STATE, SLOT_FREE);
    store<u32>(s + S_GEN, load<u32>(s + S_GEN) + 1);
    store<u16>(this.freeStack + (<usize>this.freeTop << 1), <u16>slot);
    this.freeTop++;
  }

  /**
   * Sends the SRB in `slot` (its packet already encoded) into the open submit batch: GPA-direct
   * over `length` bytes at `buffer`, or in-band when `length` is 0. Published by kick(). Returns
   * BLOCK_OK or a BlockError (the slot is then freed).
   */
  sendSlot(slot: u32, buffer: usize, length: u32): i32 {
    const ch = this.ch;
    if (ch == null || !ch.isOpen()) {
      this.freeSlot(slot);
      return BLOCK_NOT_READY;
    }
    const s = this.slotPacket(slot);
    store<u32>(s + S_STATE, SLOT_BUSY);
    store<u32>(s + S_EXPECTED, length);
    if (!this.batchOpen) {
      ch.batchBegin();
      this.batchOpen = true;
    }
    const gen = load<u32>(s + S_GEN);
    const r = length > 0 ? ch.sendGpaDirect(slot, gen, buffer, length, s, VSTOR_PACKET_SIZE) : ch.sendInband(slot, gen, s, VSTOR_PACKET_SIZE, true);
    if (r < 0) {
      this.freeSlot(slot);
      return BLOCK_BAD_REQUEST;
    }
    this.batchCount++;
    this.inFlightCount++;
    this.submitted++;
    return BLOCK_OK;
  }

  /** Publishes the submit batch: one index update, at most one signal for all its requests. */
  kick(): void {
    if (!this.batchOpen) return;
    this.batchOpen = false;
    this.ch!.batchEnd();
    if (this.batchCount > 0) this.batches++;
    this.batchCount = 0;
  }

  // ---- completions --------------------------------------------------------------------------

  /** Publishes pending submits, then handles every completion on the ring. Returns how many packets were read. */
  reap(): u32 {
    this.kick();
    const ch = this.ch!;
    let count: u32 = 0;
    ch.recvBegin();
    let n = ch.recvNext(this.rx, 4096);
    while (n > 0) {
      this.onPacket(this.rx, <u32>n);
      count++;
      n = ch.recvNext(this.rx, 4096);
    }
    ch.recvEnd();
    if (n < 0) this.error = StorvscError.RingCorrupt;
    return count;
  }

  /**
   * Waits for the host: first a bounded spin on the completion ring with its interrupt_mask set
   * (the host need not signal while this side is looking: no SIEF event, no interrupt, no halt),
   * then a halt until the host signals. The spin adapts like KVM's halt polling: a miss doubles
   * it (up to pollMax), a completion found in the first eighth of it halves it (down to pollMin),
   * and four misses in a row at pollMax drop it to pollMin — the host is slower than any spin worth
   * paying (a large transfer, or no free core), so this side sleeps again at once.
   */
  idle(): void {
    const ch = this.ch!;
    const inbound = ch.inbound;
    inbound.maskInterrupt();
    const budget = this.pollSpins;
    let i: u32 = 0;
    for (; i < budget; i++) {
      if (inbound.writeIndex() != inbound.readIndex()) break;
    }
    if (i < budget) {
      this.pollHits++;
      this.pollMissesAtMax = 0;
      if (i < budget >> 3 && budget > this.pollMin) this.pollSpins = max(this.pollMin, budget >> 1);
    } else {
      this.pollMisses++;
      if (budget >= this.pollMax) {
        if (++this.pollMissesAtMax >= 4) {
          this.pollMissesAtMax = 0;
          this.pollSpins = this.pollMin;
        }
      } else this.pollSpins = min(this.pollMax, budget << 1);
    }
    if (inbound.unmaskInterrupt()) return;
    ch.waitForHost();
  }

  /** Completed queued tags of disk `owner`, oldest first: how many were written to tags/statuses. */
  takeDone(owner: u32, tags: usize, statuses: usize, max: u32): u32 {
    let k: u32 = 0;
    if (owner >= STORVSC_MAX_DISKS) return 0;
    const fifo = this.done + <usize>owner * STORVSC_QUEUE_DEPTH * 2;
    let head = this.doneHead[owner];
    const tail = this.doneTail[owner];
    while (k < max && head != tail) {
      const slot = <u32>load<u16>(fifo + (<usize>(head % STORVSC_QUEUE_DEPTH) << 1));
      head++;
      store<i32>(tags + (<usize>k << 2), <i32>slot);
      store<i32>(statuses + (<usize>k << 2), this.slotResult(slot));
      this.freeSlot(slot);
      k++;
    }
    this.doneHead[owner] = head;
    return k;
  }

  private noteFailure(s: usize): void {
    this.lastSrbStatus = completionSrbStatus(s);
    this.lastScsiStatus = completionScsiStatus(s);
    const sense = (completionSrbStatus(s) & SRB_STATUS_AUTOSENSE_VALID) != 0 && completionSenseInfoLength(s) >= 14;
    this.lastSenseKey = sense ? completionSenseKey(s) : 0;
    this.lastAsc = sense ? completionSenseAsc(s) : 0;
    this.lastAscq = sense ? completionSenseAscq(s) : 0;
  }

  private onPacket(p: usize, n: u32): void {
    const type = packetType(p);
    const body = p + (<usize>packetOffset8(p) << 3);
    const bodyLen = n - (packetOffset8(p) << 3);
    if (type == VmbusPacketType.DataInband) {
      this.hostNotifications++;
      return;
    }
    if (type != VmbusPacketType.Completion) {
      this.unmatched++;
      return;
    }
    const lo = packetTransIdLo(p), hi = packetTransIdHi(p);
    if (lo == VMBUS_RQST_INIT_LO && hi == VMBUS_RQST_INIT_HI) {
      // Linux checks only operation and status of an init reply; a short reply is a failure.
      if (bodyLen < 12 || this.initDone) {
        this.unmatched++;
        return;
      }
      memory.fill(this.initPacket, 0, VSTOR_PACKET_SIZE);
      memory.copy(this.initPacket, body, bodyLen < VSTOR_PACKET_SIZE ? bodyLen : VSTOR_PACKET_SIZE);
      this.initStatus = completionOperation(this.initPacket) == VSTOR_OPERATION_COMPLETE_IO ? completionStatus(this.initPacket) : 0xffffffff;
      this.initDone = true;
      return;
    }
    if (lo >= STORVSC_QUEUE_DEPTH) {
      this.unmatched++;
      return;
    }
    const s = this.slotPacket(lo);
    if (load<u32>(s + S_STATE) != SLOT_BUSY || load<u32>(s + S_GEN) != hi) {
      this.unmatched++;
      return;
    }
    // Copy the completion over the request; a short one leaves zeros, never stale request bytes.
    memory.fill(s, 0, VSTOR_PACKET_SIZE);
    memory.copy(s, body, bodyLen < VSTOR_PACKET_SIZE ? bodyLen : VSTOR_PACKET_SIZE);
    const result = bodyLen < 28 ? BLOCK_IO_ERROR : srbResult(s, load<u32>(s + S_EXPECTED));
    store<i32>(s + S_RESULT, result);
    if (result != BLOCK_OK) this.noteFailure(s);
    store<u32>(s + S_STATE, SLOT_DONE);
    this.inFlightCount--;
    this.completed++;
    if (load<u32>(s + S_SYNC) == 0) {
      const owner = load<u32>(s + S_OWNER);
      const fifo = this.done + <usize>owner * STORVSC_QUEUE_DEPTH * 2;
      store<u16>(fifo + (<usize>(this.doneTail[owner] % STORVSC_QUEUE_DEPTH) << 1), <u16>lo);
      this.doneTail[owner] = this.doneTail[owner] + 1;
    }
  }
}
