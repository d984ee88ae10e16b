/**
 * StorVsp: the synthetic SCSI controller as a VSP on the VMBus host framework. One instance is
 * one controller (one instance GUID, several LUNs); every channel the guest opens on it —
 * the primary and the sub-channels it asks for with CREATE_SUB_CHANNELS — is served by a
 * `StorVspChannel` (storvsp-channel.ts), which holds the vstor protocol and the SCSI target.
 *
 * This file is the glue: ring packets in (each already a private copy made by vmbus/ring/), the
 * GPA-direct range header checked through the framework's `gpaDirect` (every page inside guest
 * memory before the request reaches a disk), one completion written per request as soon as it
 * is produced (so the framework's room-for-a-reply check holds), and one signal per batch. While
 * the guest keeps I/O coming, a poll window (storvsp-vsp-poll.ts) keeps the request ring masked so
 * the guest need not signal for every request.
 */
import { VmbusPacketType, VmbusRing, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, type ReceivedPacket } from '../../../vmbus/ring/index.ts';
import type { PacketBatch, VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { Vsp } from '../../../vmbus/host/vsp.ts';
import type { ChannelOfferSpec } from '../../../vmbus/server/server-types.ts';
import { QUEUED, StorVspChannel, type StorVspIncoming, type StorVspOptions, type StorVspOutgoing } from './storvsp-channel.ts';
import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import { StorVspPoller, DEFAULT_POLL_SPIN_MICROS } from './storvsp-vsp-poll.ts';
import { NtStatus, STORVSP_SCSI_INTERFACE_GUID, SUPPORTED_PROTOCOL_VERSIONS, VSTOR_PACKET_SIZE } from './storvsp-protocol.ts';
import { ScsiController } from './scsi-controller.ts';
import { decodeStorVspChannel, encodeStorVspChannel } from './storvsp-saved-state.ts';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { defaultWaitPolicy } from '../../../hypervisor/adaptive-wait.ts';
import { StorVspQueueThreads, subChannelThreadsEnabled } from './storvsp-queue-threads.ts';
import { QUEUE_STORVSP_STATS } from './storvsp-queue-thread-protocol.ts';
import { DEFAULT_MAX_QUEUED_PER_CHANNEL, defaultQueueMinBytes, type StorVspConfig, type StorVspStats } from './storvsp-config.ts';

export {
  DEFAULT_MAX_QUEUED_PER_CHANNEL,
  defaultQueueMinBytes,
  QUEUE_MIN_BYTES_WITH_SPARE_CORES,
  type StorVspConfig,
  type StorVspStats,
  type SubChannelOfferer,
} from './storvsp-config.ts';

/** Per-channel state, kept in VspChannel.context. */
interface ServedChannel {
  protocol: StorVspChannel;
  poller: StorVspPoller;
  /** Reused for every packet: handle() keeps no reference to it. */
  incoming: StorVspIncoming;
  /** The channel's signalUs already added to the VSP's stats. */
  signalUsSeen: number;
  /** Queued requests not yet completed by their disk. */
  inFlight: number;
  /** Their bound: the configured one, or fewer when the guest's ring cannot hold that many replies. */
  maxInFlight: number;
  /** Completions of queued requests not yet in the ring (written in one batch per event-loop turn). */
  completed: StorVspOutgoing[];
  flushScheduled: boolean;
  /** Reading stopped at maxInFlight: a completion drains the ring again. */
  stalled: boolean;
  /** Where a queued request's completion goes. */
  onQueuedDone: (out: StorVspOutgoing) => void;
  /** False once the channel closed (its queued requests still complete, unanswered). */
  open: boolean;
}

/**
 * PFNs accepted in one request's GPA-direct header: 2 MiB, far above max_transfer_bytes (256 KiB,
 * 65 pages when unaligned); the guest VSC framework's header page holds 510.
 */
const MAX_GPA_PAGES = 512;

export class StorVsp implements Vsp {
  readonly offer: ChannelOfferSpec;
  readonly maxReplyBytes = VSTOR_PACKET_SIZE;
  /** A vstor_packet behind a GPA-direct header of up to MAX_GPA_PAGES PFNs (2 MiB): larger is a violation. */
  readonly maxPacketBytes = 16 + 8 + 8 + MAX_GPA_PAGES * 8 + VSTOR_PACKET_SIZE;
  readonly stats: StorVspStats = {
    channelsOpened: 0,
    subChannelsOffered: 0,
    requests: 0,
    badGpaRanges: 0,
    ignoredPackets: 0,
    unanswered: 0,
    polledDrains: 0,
    queued: 0,
    completionsDeferred: 0,
    maxInFlight: 0,
    inFlightStalls: 0,
    batchUs: 0,
    readUs: 0,
    validateUs: 0,
    executeUs: 0,
    backendUs: 0,
    completeUs: 0,
    signalUs: 0,
  };
  /** Primary channel state by relid; a sub-channel finds its primary here by its channel's primaryRelid. */
  private readonly primaries = new Map<number, StorVspChannel>();
  private readonly spinMicros: number;
  private readonly log: (message: string) => void;
  /** Every channel this controller serves (open or closed with requests still queued). */
  private readonly served = new Set<ServedChannel>();
  /** Resolved once nothing is queued any more (whenIdle). */
  private idleWaiters: (() => void)[] = [];

  /** Sub-channels served on queue threads (null: off). */
  readonly queueThreads: StorVspQueueThreads | null;

  constructor(private readonly config: StorVspConfig) {
    this.offer = { interfaceType: STORVSP_SCSI_INTERFACE_GUID, interfaceInstance: config.instanceId };
    this.spinMicros = config.pollSpinMicros ?? DEFAULT_POLL_SPIN_MICROS;
    this.log = config.log ?? (() => {});
    this.queueThreads = subChannelThreadsEnabled(config.subChannelThreads)
      ? new StorVspQueueThreads(config.luns, {
          versions: config.versions,
          maxTransferBytes: config.maxTransferBytes,
          maxSubChannels: config.subChannels ? (config.maxSubChannels ?? 0) : 0,
          wait: config.queueThreadWait ?? defaultWaitPolicy(),
          log: this.log,
        })
      : null;
  }

  /**
   * Serves a sub-channel whose primary lives on another thread (a queue thread's own StorVsp):
   * I/O only, at the version the primary negotiated.
   */
  serveOffloaded(channel: VspChannel, version: number): void {
    const protocol = new StorVspChannel(this.protocolOptions(channel.mem, channel.primaryRelid), { version, controller: new ScsiController(this.config.luns) });
    this.serve(channel, protocol);
  }

  /** Parks every queue thread until releaseQueueThreads(): the sub-channels are served on this thread meanwhile. */
  holdQueueThreads(): void {
    this.queueThreads?.hold();
  }

  releaseQueueThreads(): void {
    this.queueThreads?.release();
  }

  /** Ends the queue threads (teardown): their channels come back to this thread first. */
  stopQueueThreads(): Promise<void> {
    return this.queueThreads?.stopAll() ?? Promise.resolve();
  }

  /** VMBus is being saved: every sub-channel comes back to this thread, so the rings and the saved state agree. */
  quiesce(): void {
    this.holdQueueThreads();
  }

  resumeAfterSave(): void {
    this.releaseQueueThreads();
  }

  /** The stats with the queue threads' work added in, and the threads' own counters (`thread*`). */
  statsSnapshot(): Record<string, number> {
    const out: Record<string, number> = { ...this.stats };
    const q = this.queueThreads;
    if (!q) return out;
    const t = q.counters();
    for (const k of QUEUE_STORVSP_STATS) {
      out[k] = (out[k] ?? 0) + (t[k] ?? 0);
    }
    out.threadRequests = t.requests ?? 0;
    out.threadSignalsToGuest = t.signalsToGuest ?? 0;
    out.threadWakes = t.wakes ?? 0;
    out.threadSpinHits = t.spinHits ?? 0;
    out.threadSleeps = t.sleeps ?? 0;
    out.threadPasses = t.passes ?? 0;
    out.threadOffloads = q.stats.offloads;
    out.threadParks = q.stats.parks;
    out.threadsStarted = q.stats.threadsStarted;
    out.threadsLost = q.stats.threadsLost;
    return out;
  }

  /** The protocol state of an open channel (tests and counters). */
  channelProtocol(channel: VspChannel): StorVspChannel | undefined {
    return (channel.context as ServedChannel | undefined)?.protocol;
  }

  onOpen(channel: VspChannel): number {
    let protocol: StorVspChannel;
    if (channel.subChannelIndex === 0) {
      const relid = channel.relid;
      protocol = new StorVspChannel(this.protocolOptions(channel.mem, relid));
      this.primaries.set(relid, protocol);
      this.queueThreads?.prepare(channel);
    } else {
      // A sub-channel shares its primary's negotiated version and LUNs (Linux storvsc: I/O only).
      const primary = this.primaries.get(channel.primaryRelid);
      if (!primary?.isReady) return NtStatus.InvalidDeviceState;
      protocol = primary.openSubChannel();
    }
    this.serve(channel, protocol);
    this.stats.channelsOpened++;
    return NtStatus.Success;
  }

  private serve(channel: VspChannel, protocol: StorVspChannel): void {
    // Every queued request owes one reply: never more of them than the guest's ring could take.
    const outbound = channel.rings?.outbound as VspChannel['rings']['outbound'] | undefined; // absent in a restore's dry check
    const ringReplies = outbound ? Math.floor(outbound.dataSize / VmbusRing.packetTotal(0, VSTOR_PACKET_SIZE)) - 1 : Infinity;
    const served: ServedChannel = {
      protocol,
      poller: new StorVspPoller(channel, this.spinMicros, () => this.stats.polledDrains++),
      incoming: { transactionId: 0n, completionRequested: false, payload: new Uint8Array(0), data: undefined },
      signalUsSeen: 0, // a channel is served from its opening (or restore): its signal time starts at 0
      inFlight: 0,
      maxInFlight: Math.max(1, Math.min(this.config.maxQueuedPerChannel ?? DEFAULT_MAX_QUEUED_PER_CHANNEL, ringReplies)),
      completed: [],
      flushScheduled: false,
      stalled: false,
      onQueuedDone: (out) => this.queuedDone(channel, served, out),
      open: true,
    };
    channel.context = served;
    this.served.add(served);
    // A sub-channel with rings (not a restore's dry check) may go to a queue thread.
    if (channel.subChannelIndex !== 0 && outbound && this.queueThreads) {
      this.queueThreads.add({
        channel,
        busy: () => served.inFlight > 0 || served.completed.length > 0 || served.flushScheduled,
        version: () => served.protocol.protocolVersion,
        pollerStop: () => served.poller.stop(),
      });
    }
  }

  /** A queued request completed (a thread-pool callback): its completion joins the next batch. */
  private queuedDone(channel: VspChannel, served: ServedChannel, out: StorVspOutgoing): void {
    served.inFlight--;
    this.queuedNow--;
    served.completed.push(out);
    if (served.flushScheduled) return;
    served.flushScheduled = true;
    // After the other completions of this turn of the event loop: one batch, one signal.
    setImmediate(() => {
      served.flushScheduled = false;
      this.flushCompleted(channel, served);
    });
  }

  /** Writes what completed; a full ring waits for the guest (pending_send_sz), a freed slot resumes reading. */
  private flushCompleted(channel: VspChannel, served: ServedChannel): void {
    if (channel.state !== 'open')
      served.completed.length = 0; // nobody to answer: the guest reset or closed the channel
    else if (!channel.held) {
      channel.sendBatched(() => this.writeCompleted(channel, served));
      if (served.stalled && served.inFlight < served.maxInFlight && channel.state === 'open') {
        served.stalled = false;
        channel.drain();
      }
    }
    this.checkIdle();
  }

  private writeCompleted(channel: VspChannel, served: ServedChannel): void {
    const done = served.completed;
    let n = 0;
    while (n < done.length) {
      const out = done[n]!;
      const id = out.transactionId;
      if (!channel.send(VmbusPacketType.Completion, 0, Number(id & 0xffffffffn), Number(id >> 32n), null, out.payload)) break;
      n++;
    }
    done.splice(0, n);
    if (done.length > 0) {
      this.stats.completionsDeferred += done.length;
      // The guest signals when it has read enough; its drain writes the rest first (onPackets).
      if (channel.rings.outbound.requestSpace(VmbusRing.packetTotal(0, VSTOR_PACKET_SIZE)) && !served.flushScheduled) {
        served.flushScheduled = true;
        setImmediate(() => {
          served.flushScheduled = false;
          this.flushCompleted(channel, served);
        });
      }
    }
  }

  /** Resolves once no request of this controller is queued and every completion is in its ring (or its channel is gone). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Requests queued now, over every channel (the device thread then keeps its event loop turning). */
  get inFlight(): number {
    return this.queuedNow;
  }
  private queuedNow = 0;

  /** Nothing queued, and every completion written or waiting for room in a ring the guest must read first. */
  private isIdle(): boolean {
    for (const s of this.served) if (s.inFlight > 0 || s.flushScheduled) return false;
    return true;
  }

  private checkIdle(): void {
    for (const s of this.served) if (s.inFlight === 0 && s.completed.length === 0 && !s.open) this.served.delete(s);
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  // ---- saved state (vmbus/host/vsp.ts) ------------------------------------------------------

  /**
   * The channel's initialization state and version. Requests run to completion inside a drain,
   * and a save is never taken inside one: nothing is in flight, which is checked here.
   */
  saveChannel(channel: VspChannel): Uint8Array {
    const served = channel.context as ServedChannel | undefined;
    if (!served) throw new HvError('STORVSP_SAVE', `relid ${channel.relid} is not served by this controller`);
    if (channel.isDraining) throw new HvError('STORVSP_SAVE', `relid ${channel.relid}: a save inside a drain would miss the request being executed`);
    // The device thread waits for whenIdle() first; what is left here would be lost with the save.
    if (served.inFlight > 0) throw new HvError('STORVSP_SAVE', `relid ${channel.relid}: ${served.inFlight} requests still in flight`);
    if (served.completed.length > 0)
      throw new HvError(
        'STORVSP_SAVE',
        `relid ${channel.relid}: ${served.completed.length} completions wait for room in the guest's ring (the guest is not reading it)`,
      );
    return encodeStorVspChannel({ init: served.protocol.initState, subChannel: channel.subChannelIndex !== 0 });
  }

  restoreChannel(channel: VspChannel, state: Uint8Array | undefined): () => void {
    if (state === undefined) throw new HvError('STORVSP_BAD_SAVED_STATE', `storvsp saved state: none for open relid ${channel.relid}`);
    const s = decodeStorVspChannel(state, this.config.versions ?? SUPPORTED_PROTOCOL_VERSIONS);
    if (s.subChannel !== (channel.subChannelIndex !== 0))
      throw new HvError('STORVSP_BAD_SAVED_STATE', `storvsp saved state: relid ${channel.relid} sub-channel mismatch`);
    return () => {
      let protocol: StorVspChannel;
      if (channel.subChannelIndex === 0) {
        const relid = channel.relid;
        protocol = new StorVspChannel(this.protocolOptions(channel.mem, relid));
        protocol.restoreInitState(s.init);
        this.primaries.set(relid, protocol);
      } else {
        // The primary is restored first when it is open; a sub-channel whose primary the guest
        // closed keeps serving I/O on a controller of its own (the controller keeps no state).
        const primary = this.primaries.get(channel.primaryRelid);
        const version = 'version' in s.init ? s.init.version : 0;
        protocol =
          primary?.protocolVersion === version
            ? primary.openSubChannel()
            : new StorVspChannel(this.protocolOptions(channel.mem, channel.primaryRelid), { version, controller: new ScsiController(this.config.luns) });
      }
      this.serve(channel, protocol);
    };
  }

  private protocolOptions(memory: GuestMemory, relid: number): StorVspOptions {
    return {
      memory,
      luns: this.config.luns,
      maxSubChannels: this.config.subChannels ? (this.config.maxSubChannels ?? 0) : 0,
      maxTransferBytes: this.config.maxTransferBytes,
      versions: this.config.versions,
      minQueuedBytes: this.config.queueMinBytes ?? defaultQueueMinBytes(),
      onCreateSubChannels: (count: number) => this.createSubChannels(relid, count),
    };
  }

  onPackets(channel: VspChannel, batch: PacketBatch): void {
    const served = channel.context as ServedChannel;
    const signalled = channel.stats.signalUs;
    this.stats.signalUs += signalled - served.signalUsSeen;
    served.signalUsSeen = signalled;
    const t0 = performance.now();
    let t = t0;
    let handled = 0;
    // Completions that found the ring full go first: the guest read (it signalled), and they are older.
    if (served.completed.length > 0) this.writeCompleted(channel, served);
    for (;;) {
      if (served.inFlight >= served.maxInFlight) {
        // The rest stays in the ring; a completion drains it again.
        served.stalled = true;
        this.stats.inFlightStalls++;
        break;
      }
      const p = batch.next();
      if (p === null) break;
      const read = performance.now();
      this.stats.readUs += (read - t) * 1000;
      if (p.type !== VmbusPacketType.DataInband && p.type !== VmbusPacketType.DataUsingGpaDirect) {
        this.stats.ignoredPackets++; // storvsp never asks the guest for completions
        t = read;
        continue;
      }
      handled++;
      t = this.handle(channel, served, p, read);
    }
    this.stats.requests += handled;
    if (handled > 0) {
      this.stats.batchUs += (t - t0) * 1000;
      served.poller.arm();
    }
    if (channel.subChannelIndex !== 0) this.queueThreads?.served(channel);
  }

  onClose(channel: VspChannel): void {
    this.queueThreads?.remove(channel);
    const served = channel.context as ServedChannel | undefined;
    if (served) {
      served.poller.stop();
      served.open = false;
      served.completed.length = 0;
      this.checkIdle();
    }
    if (channel.subChannelIndex === 0) this.primaries.delete(channel.relid);
  }

  /** Serves one request; `t0` is when it came off the ring, the result when its completion was written. */
  private handle(channel: VspChannel, served: ServedChannel, p: ReceivedPacket, t0: number): number {
    const incoming = served.incoming;
    incoming.transactionId = p.transactionId;
    incoming.completionRequested = (p.flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) !== 0;
    // The payload is a view of the framework's private copy; handle() keeps no reference.
    incoming.payload = p.bytes.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength);
    incoming.data = undefined;
    if (p.type === VmbusPacketType.DataUsingGpaDirect) {
      // The one check of the guest's pages (vmbus/host/gpa-direct.ts); the channel trusts its views.
      const found = channel.gpaDirect(p);
      incoming.data = found;
      if (!found.ok) {
        // An SRB with data then fails with SRB_STATUS_INVALID_REQUEST, nothing touched.
        this.stats.badGpaRanges++;
        this.log(`storvsp relid ${channel.relid}: GPA-direct request refused: ${found.reason}`);
      }
    }
    const validated = performance.now();
    this.stats.validateUs += (validated - t0) * 1000;
    const backend0 = this.backendUs();
    const out = served.protocol.handleQueued(incoming, served.onQueuedDone);
    const executed = performance.now();
    this.stats.executeUs += (executed - validated) * 1000;
    this.stats.backendUs += this.backendUs() - backend0;
    if (out === QUEUED) {
      this.stats.queued++;
      this.queuedNow++;
      if (++served.inFlight > this.stats.maxInFlight) this.stats.maxInFlight = served.inFlight;
      return executed;
    }
    if (out === null) {
      this.stats.unanswered++;
      return executed;
    }
    // The request's own transaction id halves: no bigint round trip for the reply.
    if (out.kind === 'completion') channel.complete(p, out.payload);
    else channel.sendInband(0, 0, out.payload);
    const completed = performance.now();
    this.stats.completeUs += (completed - executed) * 1000;
    return completed;
  }

  /** Time inside the disks' system calls so far (backends that keep the count), µs. */
  private backendUs(): number {
    let us = 0;
    for (const l of this.config.luns) us += l.disk.backend.ioUs ?? 0;
    return us;
  }

  /**
   * CREATE_SUB_CHANNELS (already range-checked by the protocol layer): offered after the
   * completion is on its way, as the server must not be re-entered from a ring drain.
   */
  private createSubChannels(primaryRelid: number, count: number): boolean {
    const offerer = this.config.subChannels;
    if (!offerer) return false;
    queueMicrotask(() => {
      if (!this.primaries.has(primaryRelid)) return;
      for (let i = 0; i < count; i++) {
        try {
          offerer.offerSubchannel(primaryRelid);
          this.stats.subChannelsOffered++;
        } catch (e) {
          this.log(`storvsp relid ${primaryRelid}: sub-channel not offered: ${e instanceof Error ? e.message : String(e)}`);
          return;
        }
      }
    });
    return true;
  }
}
