/**
 * One open channel as its VSP sees it: the two rings over the channel's GPADL, batched reading
 * with packets copied out before they are validated, replies written behind one write batch,
 * and at most one signal to the guest per batch, following the ring's rules (Linux drivers/hv/ring_buffer.c:
 * empty → non-empty while unmasked for the writer, pending_send_sz crossed for the reader).
 * A corrupt ring stops the channel at once and is reported to the host, which resets it.
 */
import { badIndexReason } from '../ring/ring-error.ts';
import type { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing, type RingReadBatch, type RingWriteBatch } from '../ring/index.ts';
import type { OpenedChannel } from '../server/server-types.ts';
import type { ChannelRings } from './channel-rings.ts';
import { gpaDirectBuffer, type GpaDirectResult } from './gpa-direct.ts';
import type { Vsp } from './vsp.ts';
import type { ChannelOffloadAccess } from './channel-offload.ts';

export type VspChannelState = 'open' | 'failed' | 'closed';

export interface VspChannelStats {
  /** Packets handed to the VSP. */
  packetsIn: number;
  /** Packets written to the host → guest ring. */
  packetsOut: number;
  /** HvCallSignalEvent-equivalents into the guest's SIEF (one per batch at most). */
  signalsToGuest: number;
  /** Signals the guest sent on this channel's connection. */
  signalsFromGuest: number;
  /** Drain rounds (a batch read and a batch written). */
  batches: number;
  /** Times reading stopped because the host → guest ring had no room for a reply. */
  waitsForSpace: number;
  /** Time spent signalling the guest, µs (cumulative). */
  signalUs: number;
}

/** What the channel needs from the host binding. */
export interface VspChannelHost {
  signalGuest(channel: VspChannel): boolean;
  channelFailed(channel: VspChannel, reason: string): void;
  /** What another root thread needs to serve this channel's rings itself (channel-offload.ts); absent: it cannot. */
  offloadAccess?(channel: VspChannel): ChannelOffloadAccess | null;
}

/** Rounds of one drain before yielding to the event loop, so a flooding guest cannot starve the thread. */
const MAX_ROUNDS = 64;

/** The packets of one read batch: `next()` until null. */
export class PacketBatch implements Iterable<ReceivedPacket> {
  private reader: RingReadBatch | null = null;
  private readonly result = { done: false as const, value: undefined as unknown as ReceivedPacket };
  /** Packets returned in this batch. */
  count = 0;
  stoppedForSpace = false;

  constructor(
    private readonly channel: VspChannel,
    private readonly packet: ReceivedPacket,
  ) {}

  begin(reader: RingReadBatch): void {
    this.reader = reader;
    this.count = 0;
    this.stoppedForSpace = false;
  }

  /**
   * The next packet (a private copy, valid until the next call), or null: the ring is drained,
   * corrupt (the channel then fails), or the host → guest ring has no room for a reply.
   */
  next(): ReceivedPacket | null {
    const reader = this.reader;
    if (reader === null || this.channel.state !== 'open') return null;
    if (!this.channel.hasRoomForReply()) {
      this.stoppedForSpace = true;
      return null;
    }
    const p = reader.tryRead(this.packet);
    if (p === null || p.kind === 'corrupt') return null;
    this.count++;
    return p;
  }

  [Symbol.iterator](): Iterator<ReceivedPacket> {
    return {
      next: () => {
        const p = this.next();
        if (p === null) return { done: true, value: undefined };
        this.result.value = p;
        return this.result;
      },
    };
  }
}

export class VspChannel {
  readonly relid: number;
  readonly connectionId: number;
  readonly targetVp: number;
  readonly subChannelIndex: number;
  /** The primary channel's relid (its own for a primary). */
  readonly primaryRelid: number;
  readonly userData: Uint8Array;
  readonly stats: VspChannelStats = { packetsIn: 0, packetsOut: 0, signalsToGuest: 0, signalsFromGuest: 0, batches: 0, waitsForSpace: 0, signalUs: 0 };
  state: VspChannelState = 'open';
  /**
   * While the VM is being saved: no drain and no send, so the rings and the saved state agree.
   * Cleared by the host when the save is abandoned (the host then drains once).
   */
  held = false;
  /**
   * Set while another thread serves the rings (channel-offload.ts): this side then neither reads
   * nor writes them, and a signal or drain that still reaches it is passed on with this call.
   */
  servedElsewhere: (() => void) | null = null;
  /** Why the channel failed, when it did. */
  failure = '';
  /** For the VSP's own per-channel state. */
  context: unknown = undefined;
  private readonly batch: PacketBatch;
  private writer: RingWriteBatch | null = null;
  /** Host → guest write cursor during a batch (published index + bytes written), for the room check. */
  private outPos = 0;
  private outRead = 0;
  private readonly replyTotal: number;
  private draining = false;
  private rescheduled = false;

  constructor(
    readonly mem: GuestMemory,
    readonly vsp: Vsp,
    open: OpenedChannel,
    readonly rings: ChannelRings,
    private readonly host: VspChannelHost,
  ) {
    this.relid = open.relid;
    this.connectionId = open.connectionId;
    this.targetVp = open.targetVp;
    this.subChannelIndex = open.subChannelIndex;
    this.primaryRelid = open.primaryRelid;
    this.userData = open.userData;
    this.batch = new PacketBatch(this, new ReceivedPacket(Math.min(vsp.maxPacketBytes, rings.inbound.maxPacketLength)));
    this.replyTotal = VmbusRing.packetTotal(0, vsp.maxReplyBytes);
    if (this.replyTotal - 8 > rings.outbound.maxPacketLength) {
      // The guest chose a host → guest ring too small for this device's replies.
      this.replyTotal = Infinity;
    }
  }

  /** True inside drain() (a saved state is never taken then). */
  get isDraining(): boolean {
    return this.draining;
  }

  /** The guest signalled this channel (HvCallSignalEvent on 16 + relid) or the host wants a pass. */
  onGuestSignal(): void {
    this.stats.signalsFromGuest++;
    this.drain();
  }

  /** See VspChannelHost.offloadAccess. */
  offloadAccess(): ChannelOffloadAccess | null {
    return this.host.offloadAccess?.(this) ?? null;
  }

  /**
   * Reads everything the guest has written, in batches (Linux hv_begin_read/hv_end_read): the
   * inbound ring is masked while draining and re-checked after unmasking so a packet written
   * meanwhile is not left unsignalled. Replies go into one write batch per round; one signal
   * at the end if either ring's rule asks for it.
   */
  drain(): void {
    if (this.servedElsewhere !== null) return this.servedElsewhere();
    if (this.state !== 'open' || this.draining || this.held) return;
    this.draining = true;
    const inbound = this.rings.inbound;
    let signal = false;
    try {
      inbound.maskInterrupt();
      for (let round = 0; ; round++) {
        if (round === MAX_ROUNDS) {
          this.reschedule();
          break;
        }
        const reader = inbound.reader();
        this.beginWrite();
        this.batch.begin(reader);
        try {
          this.vsp.onPackets(this, this.batch);
        } catch (e) {
          this.writer = null;
          return this.fail(`VSP failed on a packet: ${e instanceof Error ? e.message : String(e)}`);
        }
        this.stats.packetsIn += this.batch.count;
        this.stats.batches++;
        const corruption = reader.corruption ?? this.writer!.corruption;
        if (corruption !== null) {
          this.writer = null;
          return this.fail(`ring corrupt: ${corruption.reason}`);
        }
        if (this.state !== 'open') return;
        if (reader.commit()) signal = true;
        if (this.writer!.commit()) signal = true;
        this.writer = null;
        if (this.batch.stoppedForSpace) {
          // Publish pending_send_sz only now: committing the batch clears it (ordering pair D).
          // If the guest freed the space meanwhile, go on at once; otherwise its read signals us.
          if (this.rings.outbound.requestSpace(this.replyTotal)) continue;
          this.stats.waitsForSpace++;
          inbound.unmaskInterrupt();
          break;
        }
        if (this.batch.count === 0) {
          // Nothing consumed (the VSP left packets unread): unmask and wait for the next signal.
          inbound.unmaskInterrupt();
          break;
        }
        if (!inbound.unmaskInterrupt()) break;
        inbound.maskInterrupt();
      }
    } finally {
      this.draining = false;
    }
    if (signal) this.signal();
  }

  // ---- sending ------------------------------------------------------------------------------

  /** VM_PKT_COMP answering `request` (same transaction id). */
  complete(request: ReceivedPacket, payload: Uint8Array, start = 0, end = payload.length): boolean {
    return this.send(VmbusPacketType.Completion, 0, request.transIdLo, request.transIdHi, null, payload, start, end);
  }

  /** VM_PKT_DATA_INBAND; `completionRequested` asks the guest for a VM_PKT_COMP. */
  sendInband(transIdLo: number, transIdHi: number, payload: Uint8Array, completionRequested = false, start = 0, end = payload.length): boolean {
    return this.send(VmbusPacketType.DataInband, completionRequested ? 1 : 0, transIdLo, transIdHi, null, payload, start, end);
  }

  /**
   * Writes one packet. Inside onPackets it joins the round's batch (published and signalled once
   * at the end); outside, it is published and signalled at once. False when the ring has no room
   * (outside a batch the framework cannot wait: the caller retries after the guest reads).
   */
  send(type: number, flags: number, lo: number, hi: number, header: Uint8Array | null, payload: Uint8Array, start = 0, end = payload.length): boolean {
    if (this.state !== 'open' || this.held || this.servedElsewhere !== null) return false;
    const inBatch = this.writer !== null;
    const w = this.writer ?? this.rings.outbound.writer();
    if (!w.tryWriteRaw(type, flags, lo, hi, header, payload, start, end)) return false;
    this.stats.packetsOut++;
    this.outPos = (this.outPos + VmbusRing.packetTotal(header?.length ?? 0, end - start)) % this.rings.outbound.dataSize;
    if (!inBatch && w.commit()) this.signal();
    return true;
  }

  /**
   * Runs `write` outside a drain with every send inside it joining one write batch, published and
   * signalled once (completions of requests the VSP finished later, several at a time). Inside a
   * drain the sends simply join the drain's batch.
   */
  sendBatched(write: () => void): void {
    if (this.writer !== null) return write();
    if (this.state !== 'open' || this.held || this.servedElsewhere !== null) return;
    this.beginWrite();
    let signal = false;
    try {
      write();
    } finally {
      const w = this.writer!;
      this.writer = null;
      if (w.corruption !== null) this.fail(`ring corrupt: ${w.corruption.reason}`);
      else if (this.state === 'open') signal = w.commit();
    }
    if (signal) this.signal();
  }

  /** Bounds-checked views of the guest buffer a GPA-direct packet describes (none outside guest memory). */
  gpaDirect(packet: ReceivedPacket): GpaDirectResult {
    return gpaDirectBuffer(this.mem, packet);
  }

  // ---- framework internals ------------------------------------------------------------------

  private beginWrite(): void {
    const out = this.rings.outbound;
    this.writer = out.writer();
    this.outPos = out.writeIndex();
    this.outRead = out.readIndex();
  }

  /**
   * True when the host → guest ring can take the VSP's largest reply now (by this batch's own
   * cursor and the guest's read_index). Without room the batch stops; drain() then publishes
   * pending_send_sz (Linux hv_pkt_iter_close) so the guest signals once it has read enough.
   */
  hasRoomForReply(): boolean {
    const out = this.rings.outbound;
    if (this.writer === null) return true;
    if (out.bytesFree(this.outPos, this.outRead) > this.replyTotal) return true;
    const r = out.readIndex();
    if (!out.isValidIndex(r)) {
      this.fail(`ring corrupt: host → guest ${badIndexReason('read_index', r, out.dataSize)}`);
      return false;
    }
    this.outRead = r;
    if (out.bytesFree(this.outPos, r) > this.replyTotal) return true;
    if (this.replyTotal === Infinity) this.fail(`the host → guest ring (${out.dataSize} bytes) cannot carry a ${this.vsp.maxReplyBytes}-byte reply`);
    return false;
  }

  private signal(): void {
    const t0 = performance.now();
    if (this.host.signalGuest(this)) this.stats.signalsToGuest++;
    this.stats.signalUs += (performance.now() - t0) * 1000;
  }

  private reschedule(): void {
    if (this.rescheduled) return;
    this.rescheduled = true;
    setImmediate(() => {
      this.rescheduled = false;
      this.drain();
    });
  }

  /** Stops serving the channel: the ring is not touched again; the host resets the channel. */
  fail(reason: string): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = reason;
    this.host.channelFailed(this, reason);
  }

  /** The channel closed (the server said so): the VSP is told once. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.vsp.onClose?.(this);
  }
}
