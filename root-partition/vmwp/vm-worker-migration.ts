/**
 * Live migration's part of the VM worker (the transfer itself is root-partition/migration/): the
 * arriving VM booted from the stream, the leaving VM captured at switch-over, a failed move's VM
 * resumed here, and a storage move's requests to the device thread.
 */
import { readFileSync } from 'node:fs';
import { StorageRoots } from '../host/storage-roots.ts';
import { P_REF_FROZEN_AT } from '../../hypervisor/partition-control.ts';
import type { VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import type { DeviceReplies, DeviceRequest } from './device-requests.ts';
import { DeviceThread } from './device-thread.ts';
import { capturePartition, SnapshotError } from './partition-snapshot.ts';
import { executionToRecord } from './vp-execution-record.ts';
import { VmWorkerCore } from './vm-worker-core.ts';
import type { CapturedVm, RestorableState, RestoreTiming } from './vm-worker-types.ts';

export abstract class MigratableVmWorker extends VmWorkerCore {
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
}
