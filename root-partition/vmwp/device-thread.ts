/**
 * A VM's device thread, seen from the thread that owns the partition: the root partition's
 * intercept handler, VMBus host and VSPs run there, spinning then sleeping on the partition's
 * doorbell, so an exit costs a cache-line round trip between two cores instead of an event-loop
 * turn. Start it after `partition.initialize()` and before `partition.start()`.
 */
import type { KvpGuestItems } from './kvp-guest-watch.ts';
import { Worker } from 'node:worker_threads';
import type { PartitionShare } from '../../hypervisor/partition-handle.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import type { DeviceStateRecord } from '../devices/device-state.ts';
import type { VmDeviceConfig } from './device-config.ts';
import { freshBundle } from './worker-bundles.ts';
import { DeviceRequestError, type DeviceReplies, type DeviceRequest } from './device-requests.ts';

/** Words of the shared stop buffer: STOP_WORD ends serving; STOP_MAIL ends a slice to read requests. */
export const STOP_WORD = 0;
export const STOP_MAIL = 1;

export interface DeviceThreadData {
  partition: PartitionShare;
  devices: VmDeviceConfig;
  spinIterations: number;
  /** Adaptive spin ceiling of the doorbell wait (adaptive-wait.ts); absent = fixed spin. */
  maxSpinIterations?: number;
  stop: SharedArrayBuffer;
  /** Chipset records to restore before the VPs start (a saved VM). */
  restore?: DeviceStateRecord[];
  /** Load the code, report 'prepared', and build the devices only at the 'begin' message (DeviceThread.prestart). */
  prestart?: boolean;
}

/** What a prestarted device thread waits for: the records to restore (a live migration's device state). */
export interface DeviceThreadBegin {
  kind: 'begin';
  restore?: DeviceStateRecord[];
}

/**
 * A device thread whose code is loaded but whose devices are not built yet: `begin` builds them
 * (opening the disks) and restores the records; `discard` ends it unused.
 */
export interface PreparedDeviceThread {
  begin(restore?: DeviceStateRecord[]): Promise<DeviceThread>;
  discard(): Promise<void>;
}

export interface DeviceThreadStats {
  served: number;
  rootWaitSpinHits: number;
  rootWaitSleeps: number;
  /** Time the device thread spent asleep on the doorbell, wake-ups included (µs). */
  rootWaitSleptUs: number;
  /** The doorbell wait's spin budget when sampled (loads; adaptive-wait.ts). */
  rootSpinBudget: number;
  /** Times the thread found nothing to serve and parked on its event loop until the doorbell, a timer or a request. */
  parked: number;
  vmbus: Record<string, number> | null;
  storvsp: Record<string, number>[];
  /** Each integration service's counters (IcStats; heartbeat adds answered and wrongSequence), when offered. */
  ic: Record<string, Record<string, number>> | null;
  io: Record<string, Record<string, number>>;
}

/** What the POST-code port saw at one write: the instant the guest marked (post-code-port.ts). */
export interface PostCodeSnapshot {
  code: number;
  /** The partition's reference time, 100 ns units. */
  referenceTime: number;
  /** process.cpuUsage() at that instant: every thread of the process, µs. */
  cpu: { user: number; system: number };
  /** Counters of every VP (VpCounterName → value), index = VP. */
  vps: Record<string, number>[];
  device: DeviceThreadStats;
}

export type DeviceThreadMessage =
  | { kind: 'ready' }
  | { kind: 'prepared' }
  | { kind: 'post-code'; snapshot: PostCodeSnapshot }
  | { kind: 'error'; message: string }
  /** `suppressed`: guest-caused lines the device thread's limiter suppressed so far (guest-log-limiter.ts). */
  | { kind: 'log'; message: string; suppressed: number }
  /** `dropped`: console bytes the device thread dropped so far (console-output-buffer.ts). */
  | { kind: 'console'; bytes: Uint8Array; dropped: number }
  | { kind: 'heartbeat'; status: number }
  | { kind: 'kvp'; items: KvpGuestItems }
  /** A drive's first failure (once per drive). */
  | { kind: 'disk-failure'; path: string; message: string }
  | { kind: 'reply'; id: number; ok: boolean; value?: unknown; error?: string; code?: string }
  | { kind: 'stopped'; stats: DeviceThreadStats };

export interface DeviceThreadOptions {
  devices: VmDeviceConfig;
  /** Spin budget of the device thread's doorbell wait (default: the partition's policy). */
  spinIterations?: number;
  /** Adaptive ceiling of that wait (default: the partition's policy). */
  maxSpinIterations?: number;
  console?: (bytes: Uint8Array, droppedSoFar: number) => void;
  /** Msvm_HeartbeatComponent OperationalStatus at each change, pushed by the heartbeat device. */
  heartbeat?: (status: number) => void;
  /** The guest's KVP items (Guest and Auto pools) at each change. */
  kvp?: (items: KvpGuestItems) => void;
  log?: (message: string, suppressedSoFar: number) => void;
  /** A drive failed (its file's I/O error, a damaged VHDX): the first failure of each drive. */
  diskFailure?: (path: string, message: string) => void;
  /** The thread ended without being stopped (an error in a device): the VM cannot go on. */
  onFailure?: (reason: string) => void;
  /** POST-code snapshots, in order (needs `devices.postCodes`). */
  onPostCode?: (snapshot: PostCodeSnapshot) => void;
  /** Chipset records from a saved state, restored before the thread reports ready. */
  restore?: DeviceStateRecord[];
}

export class DeviceThread {
  private nextRequest = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  private stopRequested = false;
  private running = false;

  private constructor(
    private readonly worker: Worker,
    private readonly partition: Partition,
    private readonly stopWord: SharedArrayBuffer,
    private readonly stats: Promise<DeviceThreadStats | null>,
  ) {}

  /** Starts the thread and resolves once its devices are built (rejects with the reason if not). */
  static start(partition: Partition, opts: DeviceThreadOptions): Promise<DeviceThread> {
    return DeviceThread.launch(partition, opts, false).begin(opts.restore);
  }

  /**
   * Starts the thread ahead of its devices (a live migration's destination, while memory
   * arrives: the source still holds the disks): resolves once the code is loaded; begin() then
   * only builds and restores the devices.
   */
  static async prestart(partition: Partition, opts: Omit<DeviceThreadOptions, 'restore'>): Promise<PreparedDeviceThread> {
    const launched = DeviceThread.launch(partition, opts, true);
    try {
      await launched.prepared;
    } catch (e) {
      await launched.discard();
      throw e;
    }
    return launched;
  }

  private static launch(partition: Partition, opts: DeviceThreadOptions, prestart: boolean): PreparedDeviceThread & { prepared: Promise<void> } {
    const stop = new SharedArrayBuffer(8);
    const data: DeviceThreadData = {
      partition: partition.share(),
      devices: opts.devices,
      spinIterations: opts.spinIterations ?? partition.waitPolicy.spinIterations,
      maxSpinIterations: opts.maxSpinIterations ?? partition.waitPolicy.maxSpinIterations,
      stop,
      ...(opts.restore && !prestart ? { restore: opts.restore } : {}),
      ...(prestart ? { prestart } : {}),
    };
    // The prebuilt bundle when fresh (worker-bundles.ts), else the sources through tsx.
    const code = freshBundle('device-thread') ?? new URL('./device-thread-worker.mjs', import.meta.url);
    const worker = new Worker(code, { workerData: data, name: `${partition.name}/devices` });
    let resolveStats!: (s: DeviceThreadStats | null) => void;
    const stats = new Promise<DeviceThreadStats | null>((r) => (resolveStats = r));
    let resolvePrepared!: () => void;
    const prepared = new Promise<void>((r) => (resolvePrepared = r));
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: DeviceThreadMessage) => {
        if (m.kind === 'ready') resolve();
        else if (m.kind === 'prepared') resolvePrepared();
        else if (m.kind === 'error') reject(new Error(m.message));
        else if (m.kind === 'console') {
          opts.console?.(m.bytes, m.dropped);
          worker.postMessage({ kind: 'console-ack', bytes: m.bytes.length }); // credit for the next piece
        } else if (m.kind === 'heartbeat') opts.heartbeat?.(m.status);
        else if (m.kind === 'kvp') opts.kvp?.(m.items);
        else if (m.kind === 'log') opts.log?.(m.message, m.suppressed);
        else if (m.kind === 'disk-failure') opts.diskFailure?.(m.path, m.message);
        else if (m.kind === 'post-code') opts.onPostCode?.(m.snapshot);
        else if (m.kind === 'stopped') resolveStats(m.stats);
        else if (m.kind === 'reply') t.settle(m);
      });
      worker.once('error', reject);
      worker.once('exit', () => {
        resolveStats(null);
        reject(new Error('the device thread exited before its devices were ready'));
      });
    });
    const t: DeviceThread = new DeviceThread(worker, partition, stop, stats);
    let failure = 'the device thread exited';
    worker.on('error', (e) => {
      failure = `the device thread failed: ${e.message}`;
    });
    worker.once('exit', () => {
      t.failPending();
      // Before ready, start() itself rejects with the reason.
      if (t.running && !t.stopRequested) opts.onFailure?.(failure);
    });
    // Settled by begin() or discard(); a thread that fails before either is reported by them.
    ready.catch(() => {});
    return {
      prepared: prestart
        ? Promise.race([
            prepared,
            ready.then(() => {
              throw new Error('the device thread built its devices before it was asked to');
            }),
          ])
        : Promise.resolve(),
      begin: async (restore) => {
        if (prestart) worker.postMessage({ kind: 'begin', ...(restore ? { restore } : {}) } satisfies DeviceThreadBegin);
        try {
          await ready;
          t.running = true;
        } catch (e) {
          await worker.terminate();
          throw e;
        }
        return t;
      },
      discard: async () => {
        await worker.terminate();
      },
    };
  }

  /** One request to the devices, answered on their thread (device-requests.ts). */
  request<K extends DeviceRequest['op']>(request: Extract<DeviceRequest, { op: K }>): Promise<DeviceReplies[K]> {
    if (this.exited) return Promise.reject(new DeviceRequestError('VMWP_ERR_DEVICE_THREAD', 'the device thread has stopped'));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ kind: 'request', id, request });
      // End the thread's serving slice now rather than at its end.
      Atomics.store(new Int32Array(this.stopWord), STOP_MAIL, 1);
      this.partition.inbox.kick();
    });
  }

  /**
   * Bytes typed at the VM's console: they enter COM1's receiver on the device thread (host-side
   * flow control holds what the FIFO cannot take), which raises the UART's interrupt as a line would.
   */
  consoleInput(bytes: Uint8Array): void {
    if (this.exited) return;
    this.worker.postMessage({ kind: 'console-input', bytes });
    Atomics.store(new Int32Array(this.stopWord), STOP_MAIL, 1);
    this.partition.inbox.kick();
  }

  private settle(m: Extract<DeviceThreadMessage, { kind: 'reply' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new DeviceRequestError(m.code ?? 'VMWP_ERR_DEVICE', m.error ?? 'the device request failed'));
  }

  private failPending(): void {
    this.exited = true;
    for (const p of this.pending.values()) p.reject(new DeviceRequestError('VMWP_ERR_DEVICE_THREAD', 'the device thread has stopped'));
    this.pending.clear();
  }

  /** Stops serving, closes the disks, and returns the thread's counters. */
  async stop(): Promise<DeviceThreadStats | null> {
    this.stopRequested = true;
    Atomics.store(new Int32Array(this.stopWord), 0, 1);
    this.partition.inbox.kick();
    const stats = await Promise.race([this.stats, new Promise<null>((r) => setTimeout(() => r(null), 2000).unref())]);
    await this.worker.terminate();
    return stats;
  }
}
