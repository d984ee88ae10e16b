/**
 * A VM's device thread, seen from the thread that owns the partition: the root partition's
 * intercept handler, VMBus host and VSPs run there, spinning then sleeping on the partition's
 * doorbell, so an exit costs a cache-line round trip between two cores instead of an event-loop
 * turn. Start it after `partition.initialize()` and before `partition.start()`.
 */
import { Worker } from 'node:worker_threads';
import type { PartitionShare } from '../../hypervisor/partition-handle.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import type { VmDeviceConfig } from './device-config.ts';

export interface DeviceThreadData {
  partition: PartitionShare;
  devices: VmDeviceConfig;
  spinIterations: number;
  stop: SharedArrayBuffer;
}

export interface DeviceThreadStats {
  served: number;
  rootWaitSpinHits: number;
  rootWaitSleeps: number;
  vmbus: Record<string, number> | null;
  storvsp: Record<string, number>[];
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
  | { kind: 'post-code'; snapshot: PostCodeSnapshot }
  | { kind: 'error'; message: string }
  | { kind: 'log'; message: string }
  | { kind: 'console'; bytes: Uint8Array }
  | { kind: 'stopped'; stats: DeviceThreadStats };

export interface DeviceThreadOptions {
  devices: VmDeviceConfig;
  /** Spin budget of the device thread's doorbell wait (default: the partition's policy). */
  spinIterations?: number;
  console?: (bytes: Uint8Array) => void;
  log?: (message: string) => void;
  /** POST-code snapshots, in order (needs `devices.postCodes`). */
  onPostCode?: (snapshot: PostCodeSnapshot) => void;
}

export class DeviceThread {
  private constructor(
    private readonly worker: Worker,
    private readonly partition: Partition,
    private readonly stopWord: SharedArrayBuffer,
    private readonly stats: Promise<DeviceThreadStats | null>,
  ) {}

  /** Starts the thread and resolves once its devices are built (rejects with the reason if not). */
  static async start(partition: Partition, opts: DeviceThreadOptions): Promise<DeviceThread> {
    const stop = new SharedArrayBuffer(4);
    const data: DeviceThreadData = {
      partition: partition.share(),
      devices: opts.devices,
      spinIterations: opts.spinIterations ?? partition.waitPolicy.spinIterations,
      stop,
    };
    const worker = new Worker(new URL('./device-thread-worker.mjs', import.meta.url), { workerData: data, name: `${partition.name}/devices` });
    let resolveStats!: (s: DeviceThreadStats | null) => void;
    const stats = new Promise<DeviceThreadStats | null>((r) => (resolveStats = r));
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: DeviceThreadMessage) => {
        if (m.kind === 'ready') resolve();
        else if (m.kind === 'error') reject(new Error(m.message));
        else if (m.kind === 'console') opts.console?.(m.bytes);
        else if (m.kind === 'log') opts.log?.(m.message);
        else if (m.kind === 'post-code') opts.onPostCode?.(m.snapshot);
        else if (m.kind === 'stopped') resolveStats(m.stats);
      });
      worker.once('error', reject);
      worker.once('exit', () => {
        resolveStats(null);
        reject(new Error('the device thread exited before its devices were ready'));
      });
    });
    const t = new DeviceThread(worker, partition, stop, stats);
    try {
      await ready;
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    return t;
  }

  /** Stops serving, closes the disks, and returns the thread's counters. */
  async stop(): Promise<DeviceThreadStats | null> {
    Atomics.store(new Int32Array(this.stopWord), 0, 1);
    this.partition.inbox.kick();
    const stats = await Promise.race([this.stats, new Promise<null>((r) => setTimeout(() => r(null), 2000).unref())]);
    await this.worker.terminate();
    return stats;
  }
}
