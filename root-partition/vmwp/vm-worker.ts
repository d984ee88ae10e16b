/**
 * One VM inside its worker process: the child partition (hypervisor core), its devices on the
 * device thread (emulated chipset and disks, VMBus with storvsp and the integration services),
 * and the operations VMMS asks for — pause, resume, save, turn off, reset, and the integration
 * services' heartbeat, shutdown and KVP. It knows nothing of sockets; worker-main.ts wires it to
 * the control server. This thread never touches a device: it asks the device thread.
 * The partition and device thread it stands on are vm-worker-core.ts; live migration's part is
 * vm-worker-migration.ts.
 */
import { readFileSync } from 'node:fs';
import { StorageRoots } from '../host/storage-roots.ts';
import { prefaultInBackground } from '../../hypervisor/guest-memory-prefault.ts';
import type { Partition, VpExitEvent } from '../../hypervisor/partition.ts';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import type { DeviceStateRecord } from '../devices/device-state.ts';
import type { DeviceReplies } from './device-requests.ts';
import { HeartbeatStatus } from '../vsp/ic/heartbeat-vsp.ts';
import { capturePartition, SnapshotError } from './partition-snapshot.ts';
import { executionToRecord } from './vp-execution-record.ts';
import type { VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import { consumeSavedState, readSavedState, writeSavedState, type SaveSummary } from './saved-state-file.ts';
import { takeRunningCheckpoint, type DiskSwitch } from './running-checkpoint.ts';
import { switchedDeviceConfig } from './disk-switch.ts';
import { MigratableVmWorker } from './vm-worker-migration.ts';

export {
  DEFAULT_PAUSE_TIMEOUT_MS,
  PAUSE_TIMEOUT_ENV,
  type CapturedVm,
  type RestorableState,
  type RestoreTiming,
  type VpExitRecord,
  type WorkerLaunch,
  type WorkerState,
} from './vm-worker-types.ts';

/**
 * Events: 'console' (bytes), 'state' (WorkerState), 'heartbeat' (OperationalStatus, at each
 * change, 15 Paused while paused), 'kvp' (KvpGuestItems, at each change), 'guest-fault' (message), 'device-failure'
 * (message: the device thread died; the VM cannot go on),
 * 'guest-stopped' (VpExitRecord[]: every VP left on its own: the guest is done).
 */
export class VmWorker extends MigratableVmWorker {
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

  /** Bytes typed at the console, for COM1's receiver. */
  consoleInput(bytes: Uint8Array): void {
    this.deviceThread.consoleInput(bytes);
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
    let records: DeviceStateRecord[];
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
