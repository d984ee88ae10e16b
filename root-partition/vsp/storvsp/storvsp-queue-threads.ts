/**
 * Which of a controller's sub-channels run on queue threads of their own, and the hand-overs.
 * A sub-channel goes to a thread when threads are on for the controller, every LUN is a raw
 * image whose descriptor may be shared (no storage move, live merge or failure on the drive),
 * nothing of the channel is queued on this thread, and nothing holds the threads parked. The
 * channel comes back (park) before anything that needs the devices quiet, when it closes, and
 * for good after the thread reports a failure; back here it is served as any other channel.
 */
import * as os from 'node:os';
import { DiskIoError } from '../../storage/disk-io-error.ts';
import type { VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { ChannelOffloadAccess } from '../../../vmbus/host/channel-offload.ts';
import type { WaitPolicy } from '../../../hypervisor/adaptive-wait.ts';
import type { ScsiLunConfig } from './scsi-controller.ts';
import { StorVspQueueThread } from './storvsp-queue-thread.ts';
import type { QueueCounterName, QueueThreadLun, QueueThreadMessage } from './storvsp-queue-thread-protocol.ts';

export type SubChannelThreadsSetting = 'auto' | 'on' | 'off';

/** 'auto': a queue thread needs a core beside the VPs and the device thread (as queued I/O does: storvsp-vsp.ts). */
export function subChannelThreadsEnabled(setting: SubChannelThreadsSetting | undefined, cores = os.availableParallelism()): boolean {
  if (setting === 'on') return true;
  if (setting === 'off') return false;
  return cores >= 4;
}

/** What the hand-over needs of a served channel (storvsp-vsp.ts ServedChannel). */
export interface OffloadableChannel {
  readonly channel: VspChannel;
  /** Queued requests and unwritten completions of this thread: the hand-over waits for none. */
  readonly busy: () => boolean;
  readonly version: () => number | undefined;
  /** Stops and re-arms this thread's poll window (it must not read a ring served elsewhere). */
  readonly pollerStop: () => void;
}

interface Entry {
  c: OffloadableChannel;
  access: ChannelOffloadAccess;
  thread: StorVspQueueThread | null;
  offloaded: boolean;
  /** The thread failed or was lost: the channel stays on this thread. */
  broken: boolean;
  retry: NodeJS.Timeout | null;
}

export class StorVspQueueThreads {
  private readonly entries = new Map<VspChannel, Entry>();
  private holds = 0;
  private readonly stopping = new Set<Promise<void>>();
  /** Counters of threads already stopped (a closed sub-channel's), kept for the totals. */
  private readonly retired: Partial<Record<QueueCounterName, number>> = {};
  /** Hand-overs each way, and threads lost (a failure or a park that timed out). */
  readonly stats = { offloads: 0, parks: 0, threadsStarted: 0, threadsLost: 0 };

  constructor(
    private readonly luns: readonly ScsiLunConfig[],
    private readonly opts: { versions?: readonly number[]; maxTransferBytes?: number; maxSubChannels: number; wait: WaitPolicy; log: (m: string) => void },
  ) {}

  /** A thread loaded ahead of the next sub-channel (its code takes a while to load; the guest should not wait for it). */
  private spare: StorVspQueueThread | null = null;

  /** The primary channel opened: a thread starts loading for its first sub-channel. */
  prepare(primary: VspChannel): void {
    const access = primary.offloadAccess();
    if (access !== null && this.opts.maxSubChannels > 0) this.startSpare(access);
  }

  private startSpare(access: ChannelOffloadAccess): void {
    if (this.spare !== null || this.stoppingAll) return;
    const t = new StorVspQueueThread({
      share: access.share,
      versions: this.opts.versions,
      maxTransferBytes: this.opts.maxTransferBytes,
      spinIterations: this.opts.wait.spinIterations,
      maxSpinIterations: this.opts.wait.maxSpinIterations,
      // By the sub-channel the thread was given, even after it was retired: a failure it reports late still reaches the drive.
      onMessage: (m) => {
        const e = this.byThread.get(t);
        if (e) this.onThreadMessage(e, m);
      },
      onExit: (reason) => {
        const e = this.byThread.get(t);
        this.byThread.delete(t);
        if (e && e.thread === t) this.onThreadLost(e, reason);
        else if (this.spare === t) this.spare = null;
      },
    });
    this.stats.threadsStarted++;
    this.live++;
    void t.exited.then(() => this.live--);
    this.spare = t;
  }
  private stoppingAll = false;
  private readonly byThread = new Map<StorVspQueueThread, Entry>();

  /** A sub-channel opened (or was restored): offered to a thread as soon as it can go. */
  add(c: OffloadableChannel): void {
    const access = c.channel.offloadAccess();
    if (access === null) return;
    this.entries.set(c.channel, { c, access, thread: null, offloaded: false, broken: false, retry: null });
    this.schedule(c.channel);
  }

  /** The channel closed: taken back (the guest may reuse its pages once the close is answered) and its thread ended. */
  remove(channel: VspChannel): void {
    const e = this.entries.get(channel);
    if (!e) return;
    this.takeBack(e);
    this.entries.delete(channel);
    if (e.retry) clearTimeout(e.retry);
    e.access.release();
    this.retire(e);
  }

  /** Parks every thread (synchronously) until release(): a save, a drive switch, a merge, a storage move. */
  hold(): void {
    this.holds++;
    for (const e of this.entries.values()) this.takeBack(e);
  }

  release(): void {
    if (this.holds === 0) return;
    if (--this.holds === 0) for (const channel of this.entries.keys()) this.schedule(channel);
  }

  /** A batch ran on this thread for `channel`: it may go (back) to its thread now. */
  served(channel: VspChannel): void {
    const e = this.entries.get(channel);
    if (e && !e.offloaded && !e.broken && this.holds === 0 && e.retry === null) this.schedule(channel);
  }

  isOffloaded(channel: VspChannel): boolean {
    return this.entries.get(channel)?.offloaded === true;
  }

  /** Every thread parked and ended (teardown). */
  async stopAll(): Promise<void> {
    this.stoppingAll = true;
    for (const channel of [...this.entries.keys()]) this.remove(channel);
    const spare = this.spare;
    this.spare = null;
    if (spare) this.stopping.add(spare.stop());
    await Promise.all([...this.stopping]);
  }

  /** Queue threads started and not yet exited (0 after stopAll: every thread joined). */
  get liveThreads(): number {
    return this.live;
  }
  private live = 0;

  /** The threads' counters, summed (running and retired). */
  counters(): Partial<Record<QueueCounterName, number>> {
    const sum: Partial<Record<QueueCounterName, number>> = { ...this.retired };
    for (const e of this.entries.values()) {
      if (!e.thread) continue;
      for (const [k, v] of Object.entries(e.thread.counters()) as [QueueCounterName, number][]) sum[k] = (sum[k] ?? 0) + v;
    }
    return sum;
  }

  private retire(e: Entry): void {
    const t = e.thread;
    if (!t) return;
    e.thread = null;
    for (const [k, v] of Object.entries(t.counters()) as [QueueCounterName, number][]) this.retired[k] = (this.retired[k] ?? 0) + v;
    const p = t.stop().finally(() => this.stopping.delete(p));
    this.stopping.add(p);
  }

  private schedule(channel: VspChannel, delayMs = 0): void {
    const e = this.entries.get(channel);
    if (!e || e.retry !== null) return;
    e.retry = setTimeout(() => {
      e.retry = null;
      this.tryOffload(e);
    }, delayMs);
  }

  private shareableLuns(): QueueThreadLun[] | null {
    const out: QueueThreadLun[] = [];
    for (const l of this.luns) {
      const image = l.disk.backend.sharedDescriptor ?? null;
      if (image === null) return null;
      out.push({ pathId: l.pathId, targetId: l.targetId, lun: l.lun, diskId: l.disk.id, image });
    }
    return out;
  }

  private tryOffload(e: Entry): void {
    const ch = e.c.channel;
    if (e.offloaded || e.broken || this.holds > 0 || this.entries.get(ch) !== e) return;
    if (ch.state !== 'open' || ch.held || ch.isDraining) return;
    // Queued requests of this thread complete here first; a completion's batch calls served() again.
    if (e.c.busy()) return;
    const luns = this.shareableLuns();
    const version = e.c.version();
    if (luns === null || version === undefined) return; // a drive that must stay here: served() retries after later batches
    if (e.thread === null) {
      const geometry = e.access.claim();
      if (geometry === null) return this.lose(e, 'no root doorbell is free for the sub-channel');
      this.startSpare(e.access);
      e.thread = this.spare!;
      this.spare = null;
      this.byThread.set(e.thread, e);
      e.thread.bind(geometry, version, luns);
      // The next sub-channel's thread loads now.
      if (this.entries.size < this.opts.maxSubChannels) this.startSpare(e.access);
    }
    if (!e.thread.ready) return this.schedule(ch, 2); // still loading its code or building its devices
    e.c.pollerStop();
    if (!e.access.route()) return this.lose(e, 'the channel event port could not be routed');
    const thread = e.thread;
    const word = new Int32Array(e.access.share.control);
    const bell = thread.geometry!.doorbellWord;
    ch.servedElsewhere = () => {
      // A signal that reached the VMBus host before the routing: passed on.
      Atomics.add(word, bell, 1);
      Atomics.notify(word, bell);
    };
    e.offloaded = true;
    this.stats.offloads++;
    thread.serve();
  }

  /** The channel back on this thread (parked thread, signals routed to the VMBus host), served once. */
  private takeBack(e: Entry): void {
    if (!e.offloaded) return;
    const parked = e.thread!.park();
    e.offloaded = false;
    e.access.unroute();
    e.c.channel.servedElsewhere = null;
    this.stats.parks++;
    if (!parked) {
      // The thread may have stopped half-way through a request: the ring cannot be trusted.
      this.lose(e, 'the storvsp queue thread did not park in time');
      e.c.channel.fail('its storvsp queue thread did not stop in time');
      return;
    }
    e.c.channel.drain();
  }

  private lose(e: Entry, reason: string): void {
    if (e.broken) return;
    e.broken = true;
    this.stats.threadsLost++;
    this.opts.log(`storvsp relid ${e.c.channel.relid}: served on the device thread from now on: ${reason}`);
    this.retire(e);
  }

  private onThreadMessage(e: Entry, m: QueueThreadMessage): void {
    if (m.kind === 'log') {
      this.opts.log(m.suppressed > 0 ? `${m.message} (${m.suppressed} lines suppressed so far)` : m.message);
      return;
    }
    // Every failure the thread saw reaches its drive (a later flush failure must stay sticky there too).
    if (m.kind === 'disk-failure') this.luns[m.lun]?.disk.backend.adoptFailure?.(new DiskIoError(m.path, m.operation, m.errno, m.lba, m.detail));
    // The thread parked itself after either failure: the channel comes back here, for good.
    const first = !e.broken;
    e.broken = true;
    this.takeBack(e);
    if (first) {
      this.stats.threadsLost++;
      const why = m.kind === 'disk-failure' ? `a request failed on LUN ${m.lun}'s image` : m.reason;
      this.opts.log(`storvsp relid ${e.c.channel.relid}: served on the device thread from now on: ${why}`);
    }
    if (m.kind === 'channel-failed') e.c.channel.fail(m.reason);
    this.retire(e);
  }

  private onThreadLost(e: Entry, reason: string): void {
    const wasServing = e.offloaded;
    e.broken = true;
    if (wasServing) {
      e.offloaded = false;
      e.access.unroute();
      e.c.channel.servedElsewhere = null;
      e.c.channel.fail(reason);
    }
    this.opts.log(`storvsp relid ${e.c.channel.relid}: ${reason}`);
  }
}
