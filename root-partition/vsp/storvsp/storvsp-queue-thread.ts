/**
 * A storvsp queue thread seen from the thread that owns the VMBus host: a worker_thread of the
 * same process that serves one sub-channel's rings (storvsp-queue-thread-main.ts). The owner
 * hands the channel over (Serve) and takes it back (Park) through two shared words; parking is
 * synchronous and bounded, so anything that needs the device quiet — a save, a drive switch, a
 * merge, a storage move, a close — parks first and then finds the channel on its own thread.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { freshBundlePath, REPO_ROOT } from '../../../hypervisor/bundle-freshness.ts';
import type { PartitionShare } from '../../../hypervisor/partition-handle.ts';
import type { OffloadedChannelGeometry } from '../../../vmbus/host/channel-offload.ts';
import {
  Q_COMMAND,
  Q_STATE,
  Q_WORDS,
  QUEUE_COUNTERS,
  QueueCommand,
  QueueState,
  type QueueCounterName,
  type QueueThreadBind,
  type QueueThreadData,
  type QueueThreadLun,
  type QueueThreadMessage,
} from './storvsp-queue-thread-protocol.ts';

/** How long a park may take: one pass of the thread (≤ 64 ring rounds of synchronous I/O). */
export const QUEUE_PARK_TIMEOUT_MS = 5000;

export interface QueueThreadOptions {
  share: PartitionShare;
  versions?: readonly number[];
  maxTransferBytes?: number;
  spinIterations: number;
  maxSpinIterations?: number;
  onMessage: (m: QueueThreadMessage) => void;
  /** The thread ended without being stopped (an exception in it). */
  onExit: (reason: string) => void;
}

export class StorVspQueueThread {
  private readonly control = new Int32Array(new SharedArrayBuffer(Q_WORDS * 4));
  private readonly counterBuffer = new Float64Array(new SharedArrayBuffer(QUEUE_COUNTERS.length * 8));
  private readonly worker: Worker;
  private readonly bell: Int32Array;
  private stopping = false;
  readonly exited: Promise<void>;
  /** The sub-channel it serves, once bound. */
  geometry: OffloadedChannelGeometry | null = null;

  /** Starts the thread (it loads its code meanwhile); bind() gives it its sub-channel. */
  constructor(opts: QueueThreadOptions) {
    this.bell = new Int32Array(opts.share.control);
    Atomics.store(this.control, Q_COMMAND, QueueCommand.Park);
    const data: QueueThreadData = {
      share: opts.share,
      control: this.control.buffer as SharedArrayBuffer,
      counters: this.counterBuffer.buffer as SharedArrayBuffer,
      versions: opts.versions,
      maxTransferBytes: opts.maxTransferBytes,
      spinIterations: opts.spinIterations,
      maxSpinIterations: opts.maxSpinIterations,
    };
    // The prebuilt bundle when fresh (root-partition/vmwp/worker-bundles.ts): it starts in tens of ms, the sources through tsx in hundreds.
    const code = freshBundlePath(join(REPO_ROOT, 'build', 'host', 'storvsp-queue-thread.mjs')) ?? new URL('./storvsp-queue-thread-worker.mjs', import.meta.url);
    this.worker = new Worker(code, {
      workerData: data,
      name: `${opts.share.name}/storvsp-queue`,
    });
    this.worker.on('message', (m: QueueThreadMessage) => opts.onMessage(m));
    let failure = 'the storvsp queue thread exited';
    this.worker.on('error', (e) => {
      failure = `the storvsp queue thread failed: ${e.message}`;
    });
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', () => {
        Atomics.store(this.control, Q_STATE, QueueState.Stopped);
        if (!this.stopping) opts.onExit(failure);
        resolve();
      }),
    );
  }

  get state(): number {
    return Atomics.load(this.control, Q_STATE);
  }

  /** Gives the thread its sub-channel (once); it parks, ready to serve, when it has built its devices. */
  bind(geometry: OffloadedChannelGeometry, version: number, luns: QueueThreadLun[]): void {
    if (this.geometry !== null) throw new Error('a storvsp queue thread serves one sub-channel');
    this.geometry = geometry;
    this.worker.postMessage({ kind: 'bind', geometry, version, luns } satisfies QueueThreadBind);
  }

  /** The thread is bound, loaded, and waits for the channel (or holds it). */
  get ready(): boolean {
    const s = this.state;
    return s === QueueState.Parked || s === QueueState.Serving;
  }

  /** Hands the rings over: from here the thread reads them at each ring of its doorbell. */
  serve(): void {
    this.command(QueueCommand.Serve);
  }

  /**
   * Takes the rings back: returns once the thread has finished its pass and parked (true), or
   * false if it did not within the timeout (it is then terminated and must be treated as broken).
   */
  park(timeoutMs = QUEUE_PARK_TIMEOUT_MS): boolean {
    this.command(QueueCommand.Park);
    const end = performance.now() + timeoutMs;
    for (;;) {
      const s = this.state;
      if (s === QueueState.Parked || s === QueueState.Stopped) return true;
      const left = end - performance.now();
      if (left <= 0) break;
      Atomics.wait(this.control, Q_STATE, s, left);
    }
    void this.worker.terminate();
    return false;
  }

  /** Ends the thread and waits for it (bounded: terminated if it does not end by itself). */
  async stop(timeoutMs = QUEUE_PARK_TIMEOUT_MS): Promise<void> {
    this.stopping = true;
    this.command(QueueCommand.Stop);
    const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), timeoutMs).unref());
    if ((await Promise.race([this.exited, timer])) === 'late') await this.worker.terminate();
    await this.exited;
  }

  /** The thread's counters as last published (after each of its passes). */
  counters(): Record<QueueCounterName, number> {
    const out = {} as Record<QueueCounterName, number>;
    QUEUE_COUNTERS.forEach((k, i) => {
      out[k] = this.counterBuffer[i]!;
    });
    return out;
  }

  private command(c: number): void {
    Atomics.store(this.control, Q_COMMAND, c);
    Atomics.notify(this.control, Q_COMMAND);
    if (this.geometry === null) return;
    // Wakes the thread from its doorbell wait as a guest signal would.
    Atomics.add(this.bell, this.geometry.doorbellWord, 1);
    Atomics.notify(this.bell, this.geometry.doorbellWord);
  }
}
