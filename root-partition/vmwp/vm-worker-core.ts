/**
 * What every operation of a VM worker stands on: the child partition (hypervisor core) and the
 * device thread serving it, the worker's state and its events, the VPs parked and continued,
 * and a saved VM put into a fresh partition. vm-worker-migration.ts and vm-worker.ts build the
 * operations on it.
 */
import { EventEmitter } from 'node:events';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { PrefaultResult } from '../../hypervisor/guest-memory-prefault.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import type { VpExitReason } from '../../hypervisor/vp/vp-events.ts';
import type { VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import type { DeviceStateRecord } from '../devices/device-state.ts';
import type { Logger } from '../host/log.ts';
import { DeviceThread, type DeviceThreadOptions, type PreparedDeviceThread } from './device-thread.ts';
import { HeartbeatStatus } from '../vsp/ic/heartbeat-vsp.ts';
import { restorePartition } from './partition-snapshot.ts';
import { configurationHash } from './saved-state-file.ts';
import {
  DEFAULT_PAUSE_TIMEOUT_MS,
  PAUSE_TIMEOUT_ENV,
  type RestorableState,
  type RestoreTiming,
  type VpExitRecord,
  type WorkerLaunch,
  type WorkerState,
} from './vm-worker-types.ts';

type DeviceStateRecordList = DeviceStateRecord[];

export abstract class VmWorkerCore extends EventEmitter {
  state: WorkerState = 'booting';
  readonly startedAt = Date.now();
  protected readonly hv = new Hypervisor();
  protected partition: Partition | null = null;
  protected devices: DeviceThread | null = null;
  protected image!: Uint8Array;
  protected consoleBytes = 0;
  protected consoleDroppedBytes = 0;
  protected guestLogSuppressed = 0;
  protected lastIntercepts = 0;
  /** The heartbeat device's last status (null: the VM offers no heartbeat service). */
  protected deviceHeartbeat: number | null = null;
  /** Set while the worker itself stops the VPs, so their exits are not "the guest stopped". */
  protected stopping = false;
  /** The start-time backing of guest memory, once done (null while it runs). */
  memoryBacked: PrefaultResult | null = null;

  constructor(
    readonly launch: WorkerLaunch,
    protected readonly log: Logger,
  ) {
    super();
  }

  /** The launch's pause time-out, else TSVISOR_PAUSE_TIMEOUT_MS (1..600000), else 5 s. */
  get pauseTimeoutMs(): number {
    if (this.launch.pauseTimeoutMs !== undefined) return this.launch.pauseTimeoutMs;
    const env = process.env[PAUSE_TIMEOUT_ENV];
    if (env === undefined || env === '') return DEFAULT_PAUSE_TIMEOUT_MS;
    const ms = Number(env);
    if (!Number.isInteger(ms) || ms < 1 || ms > 600_000) {
      this.log.warn(`${PAUSE_TIMEOUT_ENV}=${env} is not a whole number of milliseconds in 1..600000; using ${DEFAULT_PAUSE_TIMEOUT_MS}`);
      return DEFAULT_PAUSE_TIMEOUT_MS;
    }
    return ms;
  }

  configurationHash(): Buffer {
    return configurationHash({ vmId: this.launch.vmId, memoryBytes: this.launch.memoryBytes, vpCount: this.launch.vpCount, image: this.image });
  }

  /**
   * Puts a saved VM into the fresh partition `p`: `read` fills its memory and returns the rest of
   * the state; every VP rewinds and parks, then the devices start from their records. The
   * partition is left paused. On a failure the partition is gone and the error is thrown.
   */
  protected async restoreInto(
    p: Partition,
    read: (memory: Uint8Array) => RestorableState | Promise<RestorableState>,
    timing?: RestoreTiming,
    devices?: Promise<PreparedDeviceThread | Error>,
  ): Promise<RestorableState> {
    let saved: RestorableState;
    try {
      saved = await read(p.mem.u8);
      const t0 = performance.now();
      const threads = p.threadsStarted;
      // Before the device thread exists: this thread alone writes the control block.
      const executions = restorePartition(p, saved);
      // Every VP rewinds to the exit it was captured in and parks there (the partition stays
      // paused, its clock frozen) before any device runs: the capture area each VP borrows for
      // its rewind holds the guest's bytes again before a device could touch guest memory.
      await p.continueVps(executions, this.pauseTimeoutMs);
      if (timing) {
        timing.continueVpsMs = performance.now() - t0;
        timing.vpThreadsStartedInPause = p.threadsStarted - threads;
      }
    } catch (e) {
      await devices?.then((d) => (d instanceof Error ? undefined : d.discard()));
      await p.stop();
      await this.hv.deletePartition(p.id);
      this.partition = null;
      throw e;
    }
    const t1 = performance.now();
    await this.startDevices(p, saved.devices, devices);
    if (timing) timing.startDevicesMs = performance.now() - t1;
    return saved;
  }

  protected createPartition(): Partition {
    const p = this.hv.createPartition({ name: this.launch.name, memoryBytes: this.launch.memoryBytes, vpCount: this.launch.vpCount });
    p.initialize();
    // Loaded on restore too: it compiles the module without its data segments; memory is then
    // overwritten from the saved state.
    p.loadImage(this.image, this.launch.cmdline);
    p.on('fault', (f: { vp: number; kind: string; message: string }) => {
      this.log.warn(`guest fault on VP ${f.vp} (${f.kind}): ${f.message}`);
      this.emit('guest-fault', `VP ${f.vp} (${f.kind}): ${f.message}`);
    });
    this.partition = p;
    return p;
  }

  /**
   * After the partition is initialized and before its VPs start: the device thread opens the
   * disks (a bad one fails the boot here, naming the file), restores the chipset's records when
   * given, and serves the partition's intercepts and VMBus from then on.
   */
  protected async startDevices(p: Partition, restore?: DeviceStateRecordList, prepared?: Promise<PreparedDeviceThread | Error>): Promise<void> {
    try {
      if (prepared) {
        const d = await prepared;
        if (d instanceof Error) throw d;
        this.devices = await d.begin(restore);
      } else {
        this.devices = await DeviceThread.start(p, { ...this.deviceThreadOptions(), ...(restore ? { restore } : {}) });
      }
    } catch (e) {
      await this.hv.deletePartition(p.id);
      this.partition = null;
      throw e;
    }
  }

  protected deviceThreadOptions(): DeviceThreadOptions {
    return {
      devices: this.launch.devices ?? {},
      console: (bytes, dropped) => {
        this.consoleBytes += bytes.length;
        this.consoleDroppedBytes = dropped;
        this.emit('console', Uint8Array.from(bytes));
      },
      kvp: (items) => this.emit('kvp', items),
      heartbeat: (status) => {
        this.deviceHeartbeat = status;
        this.emitHeartbeat();
      },
      log: (m, suppressed) => {
        this.guestLogSuppressed = suppressed;
        this.log.warn(`devices: ${m}`);
      },
      diskFailure: (path, message) => {
        this.log.error(`disk ${path} failed: ${message}`);
        this.emit('disk-failure', message);
      },
      onFailure: (reason) => {
        this.log.error(reason);
        this.emit('device-failure', reason);
      },
    };
  }

  protected async stopDevices(): Promise<void> {
    const d = this.devices;
    this.devices = null;
    const stats = await d?.stop();
    if (stats) this.lastIntercepts = stats.served;
  }

  /** Call after start: whenIdle resolves at once while no VP has started. */
  protected watchIdle(p: Partition): void {
    void p.whenIdle().then(() => this.onIdle(p));
  }

  protected onIdle(p: Partition): void {
    // Every started VP has left without being asked: the guest returned, halted for good or faulted.
    if (this.stopping || p !== this.partition || p.state === 'deleted') return;
    const exits: VpExitRecord[] = [];
    for (let vp = 0; vp < p.vpCount; vp++) {
      const e = p.vpExit(vp);
      if (e) exits.push(describe(vp, e));
    }
    this.log.info(`guest stopped: ${exits.map((e) => `VP ${e.vp} ${e.reason}${e.detail ? ` ${e.detail}` : ''}`).join('; ')}`);
    this.setState('stopped');
    this.emit('guest-stopped', exits);
  }

  protected setState(s: WorkerState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
    if (s === 'paused' || s === 'running') this.emitHeartbeat();
  }

  protected emitHeartbeat(): void {
    if (this.deviceHeartbeat === null) return;
    // A paused guest cannot answer: Paused rather than a heartbeat that is running out.
    this.emit('heartbeat', this.state === 'paused' ? HeartbeatStatus.Paused : this.deviceHeartbeat);
  }

  /** The partition now (a reset replaces it), or null while there is none: for the CPU scheduler client. */
  get currentPartition(): Partition | null {
    return this.partition;
  }

  protected get live(): Partition {
    if (!this.partition || this.state === 'stopped' || this.state === 'booting') throw new Error(`the VM is ${this.state}`);
    return this.partition;
  }

  /**
   * Parks the VPs. When they do not all reach an exit boundary within the pause time-out the
   * partition undoes the pause and the VM stays Running; the error names the VPs that did not.
   */
  async pause(): Promise<void> {
    const p = this.live;
    const timeoutMs = this.pauseTimeoutMs;
    const r = await p.pause(timeoutMs);
    if (!r.paused) {
      const vps = r.notParked.map((vp) => `VP ${vp}`).join(', ');
      const message = `the pause failed: ${vps} did not reach an exit boundary within ${timeoutMs} ms (a guest computing without exits, or an overloaded host); the pause was undone and the VM runs on`;
      this.log.warn(message);
      throw Object.assign(new Error(message), { code: 'VMWP_ERR_PAUSE_TIMEOUT' });
    }
    this.setState('paused');
  }

  resume(): void {
    this.live.resume();
    this.setState('running');
  }

  /** A failed save: the captured VPs continue where they were; if even that fails the VM cannot go on. */
  protected async undoCapture(p: Partition, executions: VpExecution[] | null, cause: unknown): Promise<void> {
    try {
      if (executions) await p.continueVps(executions, this.pauseTimeoutMs);
      this.stopping = false;
      this.watchIdle(p);
    } catch (e) {
      const message = `the save failed (${cause instanceof Error ? cause.message : String(cause)}) and the VPs could not continue (${e instanceof Error ? e.message : String(e)}); the VM is turned off`;
      this.log.error(message);
      await this.turnOff();
      throw Object.assign(new Error(message), { code: 'VMWP_ERR_SAVE_UNDO' });
    }
  }

  async turnOff(): Promise<void> {
    this.stopping = true;
    const p = this.partition;
    if (p) {
      await p.stop();
      await this.stopDevices();
      await this.hv.deletePartition(p.id);
    }
    this.partition = null;
    this.setState('stopped');
  }

  protected get deviceThread(): DeviceThread {
    if (!this.devices || this.state === 'stopped') throw new Error(`the VM is ${this.state}`);
    return this.devices;
  }
}

function describe(vp: number, e: VpExitReason): VpExitRecord {
  switch (e.reason) {
    case 'returned':
      return { vp, reason: 'returned', detail: String(e.value) };
    case 'fault':
      return { vp, reason: 'fault', detail: `${e.kind}: ${e.message}` };
    default:
      return { vp, reason: e.reason };
  }
}
