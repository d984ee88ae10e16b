/**
 * One VM inside its worker process: the child partition (hypervisor core), its devices on the
 * device thread (emulated chipset and disks, VMBus with storvsp and the integration services),
 * and the operations VMMS asks for — pause, resume, save, turn off, reset, and the integration
 * services' heartbeat, shutdown and KVP. It knows nothing of sockets; worker-main.ts wires it to
 * the control server. This thread never touches a device: it asks the device thread.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { StorageRoots } from '../host/storage-roots.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { P_REF_FROZEN_AT } from '../../hypervisor/partition-control.ts';
import { prefaultInBackground, type PrefaultResult } from '../../hypervisor/guest-memory-prefault.ts';
import type { Partition, VpExitEvent } from '../../hypervisor/partition.ts';
import type { VpExitReason } from '../../hypervisor/vp/vp-events.ts';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import type { DeviceStateRecord } from '../devices/device-state.ts';
import type { Logger } from '../host/log.ts';
import type { VmDeviceConfig } from './device-config.ts';
import type { DeviceReplies, DeviceRequest } from './device-requests.ts';
import { DeviceThread, type DeviceThreadOptions, type PreparedDeviceThread } from './device-thread.ts';
import { HeartbeatStatus } from '../vsp/ic/heartbeat-vsp.ts';
import { capturePartition, restorePartition, SnapshotError } from './partition-snapshot.ts';
import { executionToRecord } from './vp-execution-record.ts';
import type { VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import { consumeSavedState, configurationHash, readSavedState, writeSavedState, type SavedState, type SaveSummary } from './saved-state-file.ts';
import { takeRunningCheckpoint, type DiskSwitch } from './running-checkpoint.ts';
import { switchedDeviceConfig } from './disk-switch.ts';

/** What VMMS tells a new VMWP: the VM's configuration and, to restore, its saved-state file. */
export interface WorkerLaunch {
  dataDir: string;
  vmId: string;
  name: string;
  memoryBytes: number;
  vpCount: number;
  imagePath: string;
  cmdline: string;
  restoreFrom?: string;
  /** An arriving live migration: the socket the VM's state comes in on (migration/worker-migration.ts). */
  incomingMigration?: string;
  /** The VM's devices (absent: the chipset with COM1/COM2 and no disks). */
  devices?: VmDeviceConfig;
  /** How long a pause (or save) waits for every VP to reach an exit boundary; see pauseTimeoutMs. */
  pauseTimeoutMs?: number;
  /** The host's storage roots: the image is read through a descriptor checked against them. */
  storageRoots?: string[];
  /** 'linux': the built-in Linux guest on the x86 VP kind (root-partition/x86/linux-vm-worker.ts); imagePath is its manifest. */
  guest?: 'linux';
}

/** A VM's whole state but its memory, as a saved-state file or a migration stream carries it. */
export type RestorableState = Omit<SavedState, 'memory'>;

/** What captureForMigration took: the state to send (or to resume from), and whether the VM ran. */
export interface CapturedVm {
  state: RestorableState;
  wasRunning: boolean;
  /**
   * Where the capture's time went (ms): parking the VPs, saving the devices, capturing the VPs, the
   * hook before the devices stop, stopping the device thread (filled in when it is stopped).
   */
  timing: { pauseMs: number; saveDevicesMs: number; captureVpsMs: number; finalDisksMs: number; stopDevicesMs: number };
  /** Stops the device thread (its drives closed) if the capture left it running (deferStopDevices); idempotent. */
  stopDevices: () => Promise<void>;
}

/** Where an arriving VM's restore went (ms), after its state came in. */
export interface RestoreTiming {
  /** Waiting for the prestarted VP and device threads (0 when they were ready before the state). */
  prestartWaitMs: number;
  /** Partition state written and every VP rewound and parked. */
  continueVpsMs: number;
  /** The devices built (the disks opened) and restored on the prestarted device thread. */
  startDevicesMs: number;
  /** VP threads started after the state came in (0: every VP continued on a prestarted thread). */
  vpThreadsStartedInPause: number;
  /** The device thread's code was still loading when the state came in. */
  deviceThreadLoadedInPause: boolean;
}

export const DEFAULT_PAUSE_TIMEOUT_MS = 5000;
export const PAUSE_TIMEOUT_ENV = 'TSVISOR_PAUSE_TIMEOUT_MS';

type DeviceStateRecordList = DeviceStateRecord[];

export type WorkerState = 'booting' | 'running' | 'paused' | 'stopped';

export interface VpExitRecord {
  vp: number;
  reason: string;
  detail?: string;
}

/**
 * Events: 'console' (bytes), 'state' (WorkerState), 'heartbeat' (OperationalStatus, at each
 * change, 15 Paused while paused), 'kvp' (KvpGuestItems, at each change), 'guest-fault' (message), 'device-failure'
 * (message: the device thread died; the VM cannot go on),
 * 'guest-stopped' (VpExitRecord[]: every VP left on its own: the guest is done).
 */
export class VmWorker extends EventEmitter {
  state: WorkerState = 'booting';
  readonly startedAt = Date.now();
  private readonly hv = new Hypervisor();
  private partition: Partition | null = null;
  private devices: DeviceThread | null = null;
  private image!: Uint8Array;
  private consoleBytes = 0;
  private consoleDroppedBytes = 0;
  private guestLogSuppressed = 0;
  private lastIntercepts = 0;
  /** The heartbeat device's last status (null: the VM offers no heartbeat service). */
  private deviceHeartbeat: number | null = null;
  /** Set while the worker itself stops the VPs, so their exits are not "the guest stopped". */
  private stopping = false;
  /** The start-time backing of guest memory, once done (null while it runs). */
  memoryBacked: PrefaultResult | null = null;

  constructor(
    readonly launch: WorkerLaunch,
    private readonly log: Logger,
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

  /** Creates the partition and starts the guest: at boot, or from the saved state. */
  async boot(): Promise<void> {
    this.image = this.launch.storageRoots
      ? StorageRoots.of(this.launch.storageRoots).readConfined(this.launch.imagePath, 'guest image')
      : readFileSync(this.launch.imagePath);
    const p = this.createPartition();
    if (this.launch.restoreFrom) {
      const file = this.launch.restoreFrom;
      const saved = await this.restoreInto(p, (memory) => readSavedState(file, this.configurationHash(), memory));
      // The guest is about to run ahead of the file: the file must be gone for good (on disk,
      // not just in VMMS's memory) before it does, or a later crash would restore stale memory.
      consumeSavedState(file);
      this.log.info(`restored from ${file} at reference time ${saved.referenceTicks}; the file is consumed`);
      p.resume();
      this.watchIdle(p);
      this.setState('running');
      this.backMemory(p);
      return;
    }
    await this.startDevices(p);
    p.start();
    try {
      await this.firstVpEntered(p);
    } catch (e) {
      await p.stop();
      await this.stopDevices();
      await this.hv.deletePartition(p.id);
      this.partition = null;
      throw e;
    }
    this.watchIdle(p);
    this.setState('running');
    this.backMemory(p);
  }

  /**
   * Backs every page of guest memory behind the running guest (guest-memory-prefault.ts), so the
   * guest's first I/O into a buffer does not pay the kernel's first-touch fault. In the background:
   * it does not delay Running, and stops when the VM does.
   */
  private backMemory(p: Partition): void {
    void prefaultInBackground(p.mem, () => this.partition !== p || p.state === 'deleted').then((r) => {
      this.memoryBacked = r;
      if (!r.cancelled) this.log.info(`guest memory backed: ${r.bytes >> 20} MiB in ${r.ms.toFixed(1)} ms (${r.busyMs.toFixed(1)} ms touching pages)`);
    });
  }

  /**
   * Puts a saved VM into the fresh partition `p`: `read` fills its memory and returns the rest of
   * the state; every VP rewinds and parks, then the devices start from their records. The
   * partition is left paused. On a failure the partition is gone and the error is thrown.
   */
  private async restoreInto(
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

  /**
   * Live migration, destination side: boots from the state `receive` writes into guest memory and
   * returns, paused; `commit` resolves when the source gives the VM up (the VM then runs) and
   * rejects when it does not (the VM is turned off, having never run here); `running` is called
   * once the VM runs.
   */
  async bootFromMigration(
    receive: (memory: Uint8Array, configurationHash: Buffer) => Promise<RestorableState & { blackoutMs?: () => number }>,
    commit: (timing: RestoreTiming) => Promise<void>,
    running: () => void,
  ): Promise<void> {
    this.image = this.launch.storageRoots
      ? StorageRoots.of(this.launch.storageRoots).readConfined(this.launch.imagePath, 'guest image')
      : readFileSync(this.launch.imagePath);
    const p = this.createPartition();
    // The VP threads start and instantiate the image while memory arrives, so the switch-over
    // only hands each its captured stack (Partition.prestartVps).
    const prestarted = p.prestartVps(this.pauseTimeoutMs * 6).then(
      () => null,
      (e: Error) => e,
    );
    // So does the device thread (its code loaded); it builds the devices, opening the disks the
    // source lets go at its pause, only once the state is here.
    let devicesLoaded = false;
    const devices = DeviceThread.prestart(p, this.deviceThreadOptions()).then(
      (d) => {
        devicesLoaded = true;
        return d;
      },
      (e: Error) => e,
    );
    const timing: RestoreTiming = { prestartWaitMs: 0, continueVpsMs: 0, startDevicesMs: 0, vpThreadsStartedInPause: 0, deviceThreadLoadedInPause: false };
    const saved: RestorableState & { blackoutMs?: () => number } = await this.restoreInto(
      p,
      async (memory) => {
        const state = await receive(memory, this.configurationHash());
        const t0 = performance.now();
        timing.deviceThreadLoadedInPause = !devicesLoaded;
        await devices;
        const failed = await prestarted;
        timing.prestartWaitMs = performance.now() - t0;
        if (failed) throw failed;
        return state;
      },
      timing,
      devices,
    );
    try {
      await commit(timing);
    } catch (e) {
      await this.turnOff();
      throw e;
    }
    // A live migration's pause is real time that passed: the guest's reference time moves on by
    // it (as it does across a Hyper-V live migration), so it never falls behind the wall clock
    // and never goes back. A saved VM's clock, by contrast, stays where it was saved.
    const blackoutTicks = BigInt(Math.round((saved.blackoutMs?.() ?? 0) * 10_000));
    const frozen = Atomics.load(p.ctl.i64, P_REF_FROZEN_AT >> 3);
    if (frozen >= 0n && blackoutTicks > 0n) Atomics.store(p.ctl.i64, P_REF_FROZEN_AT >> 3, frozen + blackoutTicks);
    p.resume();
    this.log.info(`migrated in at reference time ${saved.referenceTicks}; running`);
    this.watchIdle(p);
    this.setState('running');
    running();
  }

  /** Live migration, source side: the guest's memory, read while the VM runs and after capture. */
  get migrationMemory(): Uint8Array {
    if (!this.partition) throw new Error(`the VM is ${this.state}`);
    return this.partition.mem.u8;
  }

  /**
   * Live migration switch-over: parks the VPs, saves the devices and captures every VP, then
   * stops the device thread, which closes the disks and so releases their locks for the
   * destination. Guest memory stays readable (migrationMemory) until resumeAfterMigration or
   * turnOff. A failure before the capture is complete puts the VM back as it was.
   * Hooks (none may throw): `memoryFrozen` once the VPs are parked and the devices saved — guest
   * memory changes no more, but for the capture area the VPs borrow while they are captured
   * (hypervisor/vp/stack-capture.ts), so the migration's last memory round can run alongside the
   * capture; `beforeStopDevices` with the VPs captured and the drives still open (a storage move's
   * last dirty blocks, the end of that memory round). `deferStopDevices`: the capture leaves the
   * device thread (idle: the VPs parked, VMBus still) for the caller to stop (`stopDevices`) once
   * the VM runs elsewhere — only when no other host waits for this VM's disk locks (no drives, or
   * their storage moves).
   */
  async captureForMigration(
    hooks: { memoryFrozen?: () => void; beforeStopDevices?: () => Promise<void>; deferStopDevices?: boolean } = {},
  ): Promise<CapturedVm> {
    const p = this.live;
    if (!p.capturable) {
      throw new SnapshotError(
        'VMWP_ERR_SAVE_NOT_RESTORABLE',
        'the guest image was prepared without capturable stacks (TSVISOR_REWRITE is set to preemptible or 0), so its VPs cannot be migrated',
      );
    }
    const wasRunning = this.state === 'running';
    const t0 = performance.now();
    if (wasRunning) await this.pause();
    const t1 = performance.now();
    let t2 = t1;
    let executions: VpExecution[] | null = null;
    this.stopping = true;
    let state: RestorableState;
    try {
      const records = (await this.deviceThread.request({ op: 'save-devices' })).records;
      t2 = performance.now();
      hooks.memoryFrozen?.();
      executions = await p.captureVps(this.pauseTimeoutMs);
      const snap = capturePartition(p);
      state = { ...snap, vps: snap.vps.map((v) => ({ ...v, execution: executionToRecord(executions![v.vp]) })), devices: records };
    } catch (e) {
      await this.undoCapture(p, executions, e);
      if (wasRunning) this.resume();
      throw e;
    }
    const t3 = performance.now();
    await hooks.beforeStopDevices?.();
    const t4 = performance.now();
    const timing = { pauseMs: t1 - t0, saveDevicesMs: t2 - t1, captureVpsMs: t3 - t2, finalDisksMs: t4 - t3, stopDevicesMs: 0 };
    let stopped: Promise<void> | null = null;
    const stopDevices = () => {
      if (stopped) return stopped;
      const t = performance.now();
      stopped = this.stopDevices().then(() => {
        timing.stopDevicesMs = performance.now() - t;
      });
      return stopped;
    };
    if (!hooks.deferStopDevices) await stopDevices();
    return { state, wasRunning, timing, stopDevices };
  }

  /** Whether the VM has drives (their files; a shared-storage move must release them inside the pause). */
  get hasDrives(): boolean {
    const d = this.launch.devices;
    return (d?.ide ?? []).some((x) => x?.path) || (d?.scsi ?? []).some((c) => c.disks.some((x) => x.path));
  }

  /** A storage move's requests to the device thread, which owns the drives (migration/disk-copy-stream.ts). */
  storageMoveRequest<K extends 'move-storage-begin' | 'move-storage-take' | 'move-storage-end'>(
    request: Extract<DeviceRequest, { op: K }>,
  ): Promise<DeviceReplies[K]> {
    return this.deviceThread.request(request);
  }

  /**
   * The migration failed after captureForMigration: the VM goes on here, in a fresh partition
   * restored from the captured state and this partition's memory (the device thread reopens the
   * disks). Running again when `run`, else left paused.
   */
  async resumeAfterMigration(captured: CapturedVm, run: boolean): Promise<void> {
    const old = this.partition;
    if (!old) throw new Error('the VM is gone; nothing to resume');
    // A device thread the capture left running holds its drives until it has stopped.
    await captured.stopDevices();
    const memory = old.mem.u8;
    this.partition = null;
    const p = this.createPartition();
    try {
      await this.restoreInto(p, (m) => {
        m.set(memory);
        return captured.state;
      });
    } finally {
      await this.hv.deletePartition(old.id);
    }
    this.stopping = false;
    this.watchIdle(p);
    if (run) {
      p.resume();
      this.setState('running');
    } else {
      this.setState('paused');
    }
  }

  /**
   * Resolves once VP 0 has instantiated the image and entered it; rejects with the reason when it
   * stopped before (a link error, a missing export): a start that cannot run says so, instead of
   * reporting Running and ending a moment later.
   */
  private firstVpEntered(p: Partition): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        p.off('entered', entered);
        p.off('vp-exit', exited);
        if (error) reject(error);
        else resolve();
      };
      const entered = (e: { vp: number }) => {
        if (e.vp === 0) done();
      };
      const exited = (e: VpExitEvent) => {
        if (e.vp !== 0) return;
        done(e.exit.reason === 'fault' ? new Error(`the guest did not start: ${e.exit.message}`) : undefined);
      };
      p.on('entered', entered);
      p.on('vp-exit', exited);
    });
  }

  private createPartition(): Partition {
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
  private async startDevices(p: Partition, restore?: DeviceStateRecordList, prepared?: Promise<PreparedDeviceThread | Error>): Promise<void> {
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

  private deviceThreadOptions(): DeviceThreadOptions {
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

  private async stopDevices(): Promise<void> {
    const d = this.devices;
    this.devices = null;
    const stats = await d?.stop();
    if (stats) this.lastIntercepts = stats.served;
  }

  /** Call after start: whenIdle resolves at once while no VP has started. */
  private watchIdle(p: Partition): void {
    void p.whenIdle().then(() => this.onIdle(p));
  }

  private onIdle(p: Partition): void {
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

  private setState(s: WorkerState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
    if (s === 'paused' || s === 'running') this.emitHeartbeat();
  }

  private emitHeartbeat(): void {
    if (this.deviceHeartbeat === null) return;
    // A paused guest cannot answer: Paused rather than a heartbeat that is running out.
    this.emit('heartbeat', this.state === 'paused' ? HeartbeatStatus.Paused : this.deviceHeartbeat);
  }

  /** Bytes typed at the console, for COM1's receiver. */
  consoleInput(bytes: Uint8Array): void {
    this.deviceThread.consoleInput(bytes);
  }

  /** The partition now (a reset replaces it), or null while there is none: for the CPU scheduler client. */
  get currentPartition(): Partition | null {
    return this.partition;
  }

  private get live(): Partition {
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

  /**
   * Saves the whole VM and stops it (the VM is then Saved): parks the VPs, has the devices save
   * their state (VMBus and its VSPs included), captures every VP's stack, and writes the file.
   * A save that fails at any step puts everything back — the captured VPs continue, the VM is as
   * it was (running or paused) — and says why.
   */
  async save(path: string): Promise<SaveSummary> {
    const p = this.live;
    if (!p.capturable) {
      throw new SnapshotError(
        'VMWP_ERR_SAVE_NOT_RESTORABLE',
        'the guest image was prepared without capturable stacks (TSVISOR_REWRITE is set to preemptible or 0), so its VPs cannot be saved; shut the VM down or turn it off instead',
      );
    }
    const wasRunning = this.state === 'running';
    if (wasRunning) await this.pause();
    let summary: SaveSummary;
    let records: DeviceStateRecordList;
    let executions: VpExecution[] | null = null;
    const t0 = performance.now();
    // The VPs leave their threads as they are captured: that is not the guest stopping.
    this.stopping = true;
    try {
      records = (await this.deviceThread.request({ op: 'save-devices' })).records;
      executions = await p.captureVps(this.pauseTimeoutMs);
      const snap = capturePartition(p);
      const vps = snap.vps.map((v) => ({ ...v, execution: executionToRecord(executions![v.vp]) }));
      summary = writeSavedState(path, this.configurationHash(), { ...snap, vps, devices: records, memory: p.mem.u8 });
    } catch (e) {
      await this.undoCapture(p, executions, e);
      if (wasRunning) this.resume();
      throw e;
    }
    const stackBytes = executions.reduce((n, x) => n + (x.state === 'captured' ? x.capture.stack.length : 0), 0);
    this.log.info(
      `saved to ${path} in ${(performance.now() - t0).toFixed(1)} ms: VPs ${executions.map((x) => `${x.vp} ${x.state}`).join(', ')} (${stackBytes} bytes of stack), ${summary.pagesWritten} non-zero pages in ${summary.pageRuns} runs, device records ${records.map((d) => d.name).join(', ')}, ${summary.bytes} bytes`,
    );
    await this.turnOff();
    return summary;
  }

  /**
   * A standard checkpoint (running-checkpoint.ts): the whole VM saved into `path` without
   * stopping it, each drive moved to its differencing child while the VPs are parked.
   */
  async checkpoint(path: string, switches: DiskSwitch[]): Promise<{ pauseMs: number }> {
    const p = this.live;
    if (!p.capturable) {
      throw new SnapshotError(
        'VMWP_ERR_SAVE_NOT_RESTORABLE',
        'the guest image was prepared without capturable stacks (TSVISOR_REWRITE is set to preemptible or 0), so its VPs cannot be saved; turn the VM off to checkpoint its disks only',
      );
    }
    const r = await takeRunningCheckpoint(
      {
        wasRunning: this.state === 'running',
        pause: () => this.pause(),
        resume: () => this.resume(),
        saveWhole: async (file, captured) => {
          this.stopping = true;
          const records = (await this.deviceThread.request({ op: 'save-devices' })).records;
          const executions = await p.captureVps(this.pauseTimeoutMs);
          captured(executions);
          const snap = capturePartition(p);
          const vps = snap.vps.map((v) => ({ ...v, execution: executionToRecord(executions[v.vp]) }));
          writeSavedState(file, this.configurationHash(), { ...snap, vps, devices: records, memory: p.mem.u8 });
        },
        switchDisks: async (s) => {
          await this.deviceThread.request({ op: 'switch-disks', switches: s });
          // A reset rebuilds the devices from the launch: on the files the drives use now.
          if (this.launch.devices) this.launch.devices = switchedDeviceConfig(this.launch.devices, s);
        },
        continueVps: async (executions) => {
          await p.continueVps(executions, this.pauseTimeoutMs);
          this.stopping = false;
          this.watchIdle(p);
        },
        undo: (executions, cause) => this.undoCapture(p, executions, cause),
        turnOff: () => this.turnOff(),
      },
      path,
      switches,
    );
    const ph = Object.entries(r.phases)
      .map(([k, ms]) => `${k} ${ms.toFixed(1)}`)
      .join(', ');
    this.log.info(
      `checkpoint saved to ${path}; drives moved to ${switches.map((s) => s.to).join(', ') || 'none'}; paused ${r.pauseMs.toFixed(1)} ms (${ph} ms)`,
    );
    return { pauseMs: r.pauseMs };
  }

  /** A failed save: the captured VPs continue where they were; if even that fails the VM cannot go on. */
  private async undoCapture(p: Partition, executions: VpExecution[] | null, cause: unknown): Promise<void> {
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

  /** A hard reset: new partition, devices at power-on state, the image booted again. */
  async reset(): Promise<void> {
    const old = this.live;
    this.stopping = true;
    await old.stop();
    await this.stopDevices();
    await this.hv.deletePartition(old.id);
    this.stopping = false;
    const p = this.createPartition();
    await this.startDevices(p);
    p.start();
    this.watchIdle(p);
    this.setState('running');
  }

  counters(): WorkerCounters {
    const p = this.partition;
    const vps = p ? Array.from({ length: p.vpCount }, (_, vp) => p.counters(vp)) : [];
    // The device thread counts what it served; while it runs, the VPs' own count is the same number.
    const served = p && this.devices ? vps.reduce((n, c) => n + (c.InterceptsToRoot ?? 0), 0) : this.lastIntercepts;
    return {
      vps,
      interceptsServed: served,
      consoleBytes: this.consoleBytes,
      consoleDroppedBytes: this.consoleDroppedBytes,
      guestLogLinesSuppressed: this.guestLogSuppressed,
    };
  }

  private get deviceThread(): DeviceThread {
    if (!this.devices || this.state === 'stopped') throw new Error(`the VM is ${this.state}`);
    return this.devices;
  }

  /**
   * Merges the drive on `child` into its parent `parent` while the VM runs on (live-merge.ts, on
   * the device thread); the drive ends on `parent`, the child file is deleted.
   */
  async mergeDisk(child: string, parent: string, repoint: string[] = []): Promise<{ copiedBytes: number; switchMs: number; leftover: string | null }> {
    const t0 = performance.now();
    const r = await this.deviceThread.request({ op: 'merge-disk', child, parent, ...(repoint.length ? { repoint } : {}) });
    // A reset rebuilds the devices from the launch: on the file the drive uses now.
    if (this.launch.devices) this.launch.devices = switchedDeviceConfig(this.launch.devices, [{ from: child, to: parent }]);
    this.log.info(
      `merged ${child} into ${parent}${repoint.length ? ` and pointed ${repoint.join(', ')} at it` : ''} while running: ${r.copiedBytes} bytes copied in ${(performance.now() - t0).toFixed(1)} ms; the drive's I/O paused ${r.switchMs.toFixed(1)} ms for the switch${r.leftover ? `; ${r.leftover}` : ''}`,
    );
    return r;
  }

  /** Msvm_HeartbeatComponent OperationalStatus: 2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication, 15 Paused. */
  async heartbeatStatus(): Promise<number> {
    // A paused guest cannot answer: report Paused rather than a heartbeat that is running out.
    if (this.state === 'paused') return HeartbeatStatus.Paused;
    return (await this.deviceThread.request({ op: 'heartbeat' })).status;
  }

  /** Sends the guest a shutdown request and returns its answer; the caller watches the VM stop. */
  initiateShutdown(o: { force: boolean; reason: string; timeoutMs: number }): Promise<DeviceReplies['shutdown']> {
    return this.deviceThread.request({ op: 'shutdown', ...o });
  }

  kvpGet(pool: number, key: string): Promise<string | null> {
    return this.deviceThread.request({ op: 'kvp-get', pool, key }).then((r) => r.value);
  }

  kvpSet(pool: number, key: string, value: string): Promise<DeviceReplies['kvp-set']> {
    return this.deviceThread.request({ op: 'kvp-set', pool, key, value });
  }

  kvpDelete(pool: number, key: string): Promise<DeviceReplies['kvp-delete']> {
    return this.deviceThread.request({ op: 'kvp-delete', pool, key });
  }

  /** Resolves when every VP has left (the guest halted or returned), or at once when none runs. */
  whenGuestStopped(): Promise<void> {
    const p = this.partition;
    return p ? p.whenIdle() : Promise.resolve();
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
