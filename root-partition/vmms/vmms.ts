/**
 * The Virtual Machine Management Service: owns the VM definitions, the lifecycle of every VM and
 * its worker process, and the events the management layer subscribes to. Embeddable (tests and
 * tools call `Vmms.open({ dataDir })`) and run as the daemon by `tsvisor serve` (daemon.ts).
 *
 * Events on `vmms.events`:
 *   'state-changed' StateChangeEvent — every lifecycle state change, with the reason
 *   'vm-crashed'    { vmId, name, message } — a worker died without being asked
 *   'guest-fault'   { vmId, name, message }
 *   'console'       { vmId, data }
 *   'integration-changed' { vmId, component: 'heartbeat' | 'kvp' } — pushed by the worker as it happens
 *   'defined' / 'modified' / 'removed' { vmId, name }
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import { DataDir } from '../host/data-dir.ts';
import { DefinitionStore, type DefinitionLoadError } from './definition-store.ts';
import { admissionProblem, defaultHostLimits, type HostLimits } from './host-resources.ts';
import { EnabledState, HealthState, stateName, type EnabledStateValue, type HealthStateValue } from './lifecycle.ts';
import { createProcessLogger, type Logger } from '../host/log.ts';
import type { NewVmRequest, VmDefinition } from './vm-definition.ts';
import type { VmEntry, VmView } from './vm-entry.ts';
import { StorageRoots } from '../host/storage-roots.ts';
import { WorkerOperations } from './worker-operations.ts';
import { VmmsLock, VmmsLockedError } from './vmms-lock.ts';
import { OrphanWorkers, type OrphanWorkerView } from './orphan-workers.ts';
import type { MigrationService } from '../migration/migration-service.ts';
import { VmCheckpoints } from './checkpoints.ts';
import { HostCpuScheduler, type CpuMeasurement, type SchedulerStats } from './host-cpu-scheduler.ts';
import { SwitchRegistry } from './switch-registry.ts';
import type { ExportResult } from './vm-export.ts';
import type { ImportOptions, ImportResult } from './vm-import.ts';
import type { VmmsContext } from './vmms-context.ts';
import { VmmsError, type RequestResult, type StateChangeEvent, type VmmsOptions } from './vmms-types.ts';
import {
  confineDefinition,
  defineVm,
  exportDefinedVm,
  importDefinedVm,
  modifyVm,
  removeVm,
  replaceDefinition,
  type VmSettingsChange,
} from './vm-definitions.ts';
import { requestStateChange, shutdownVm } from './vm-state-requests.ts';
import * as integration from './vm-integration-requests.ts';
import { attachWorker } from './worker-attachment.ts';
import { cancelMove, moveOut, receiveVm } from './vm-live-migration.ts';
import { loadVms } from './vms-at-open.ts';
import { applyAutomaticStartActions, applyAutomaticStopActions } from './automatic-actions.ts';

export { VmmsError, type RequestResult, type StateChangeEvent, type VmmsOptions } from './vmms-types.ts';

export class Vmms {
  readonly events = new EventEmitter();
  readonly paths: DataDir;
  readonly limits: HostLimits;
  readonly log: Logger;
  readonly roots: StorageRoots | null;
  loadErrors: DefinitionLoadError[] = [];
  /** This host's part in live migration, when the daemon started one (migration/migration-service.ts). */
  migration: MigrationService | null = null;
  private readonly store: DefinitionStore;
  private readonly vms = new Map<string, VmEntry>();
  private readonly ops: WorkerOperations;
  private readonly orphanWorkers: OrphanWorkers;
  /** Checkpoint-VM, Get-VMSnapshot, Restore-VMSnapshot, Remove-VMSnapshot (checkpoints.ts). */
  readonly checkpoints: VmCheckpoints;
  private closing = false;
  private lock: VmmsLock | undefined;
  /** The host part of the CPU scheduler: budgets per period, admission by reserve, metering. */
  readonly cpu: HostCpuScheduler;
  /** The host's virtual switches (switch-registry.ts), served while this VMMS runs. */
  switches!: SwitchRegistry;
  /** What the service's parts (vm-definitions.ts, vm-state-requests.ts, …) share of it. */
  private readonly ctx: VmmsContext;

  private constructor(readonly opts: VmmsOptions) {
    this.paths = new DataDir(opts.dataDir);
    for (const d of [this.paths.root, this.paths.savedDir, this.paths.logsDir]) mkdirSync(d, { recursive: true });
    this.store = new DefinitionStore(this.paths.vmsDir);
    this.limits = { ...defaultHostLimits(), ...opts.limits };
    this.roots = opts.storageRoots ? StorageRoots.of(opts.storageRoots) : null;
    this.log = (opts.logger ?? createProcessLogger({ dataDir: opts.dataDir, process: 'vmms', terminal: opts.terminalLog ?? false })).child({
      component: 'vmms',
    });
    this.events.setMaxListeners(100);
    this.orphanWorkers = new OrphanWorkers(this.paths, this.log);
    this.cpu = new HostCpuScheduler({ hostCpus: opts.hostCpus, periodUs: opts.cpuPeriodUs }, this.log);
    this.ops = new WorkerOperations(
      this.paths,
      this.log,
      {
        startTimeoutMs: opts.workerStartTimeoutMs ?? 20_000,
        operationTimeoutMs: opts.operationTimeoutMs ?? 30_000,
        reattachTimeoutMs: opts.reattachTimeoutMs ?? 5000,
      },
      {
        setState: (e, s, reason, health) => this.setState(e, s, reason, health),
        attach: (e, c) => attachWorker(this.ctx, e, c),
      },
      this.roots,
    );
    this.ctx = {
      paths: this.paths,
      log: this.log,
      limits: this.limits,
      roots: this.roots,
      events: this.events,
      store: this.store,
      vms: this.vms,
      ops: this.ops,
      cpu: this.cpu,
      closing: () => this.closing,
      find: (vm) => this.find(vm),
      entry: (vm) => this.entry(vm),
      confine: (def) => confineDefinition(this.roots, def),
      admission: (self, memoryBytes) => this.admission(self, memoryBytes),
      setState: (e, s, reason, health) => this.setState(e, s, reason, health),
    };
    this.checkpoints = new VmCheckpoints(
      {
        paths: this.paths,
        find: (vm) => this.find(vm),
        replaceDefinition: (e, def, reason) => replaceDefinition(this.ctx, e, def, reason),
        turnOff: (e) => this.turnOff(e.def.id),
        markSaved: (e, reason) => this.setState(e, EnabledState.Saved, reason, HealthState.Ok),
        checkpointRunning: (e, savedState, switches) => this.ops.checkpoint(e, savedState, switches),
        mergeRunning: (e, child, parent, repoint) => this.ops.mergeDisk(e, child, parent, repoint),
      },
      (e, m) => e.log.info(m),
    );
  }

  /** Loads every definition and reattaches to the workers of VMs that kept running. */
  static async open(opts: VmmsOptions): Promise<Vmms> {
    const vmms = new Vmms(opts);
    vmms.takeLock();
    try {
      // Switches first: workers that kept running reconnect their NICs to them.
      vmms.switches = await SwitchRegistry.open(vmms.paths, vmms.log);
      vmms.ops.switchSocket = (name) => vmms.switches.socketFor(name);
      await vmms.load();
    } catch (e) {
      await vmms.switches?.close();
      vmms.lock?.release();
      throw e;
    }
    return vmms;
  }

  /** One VMMS per data directory, by an flock the kernel drops when the process dies (vmms-lock.ts). */
  private takeLock(): void {
    try {
      this.lock = VmmsLock.take(this.paths);
    } catch (e) {
      if (e instanceof VmmsLockedError) throw new VmmsError(e.code, e.message);
      throw e;
    }
  }

  private async load(): Promise<void> {
    this.loadErrors = await loadVms(this.ctx, this.orphanWorkers);
  }

  list(): VmView[] {
    return [...this.vms.values()].map((e) => e.view());
  }

  /** Workers alive in the data directory whose VM has no loadable definition (orphan-workers.ts). */
  orphans(): OrphanWorkerView[] {
    return this.orphanWorkers.list();
  }

  /** Turns an orphan worker's VM off (by request, else by its pid). */
  stopOrphan(vmId: string): Promise<void> {
    return this.orphanWorkers.stop(vmId);
  }

  get(idOrName: string): VmView | undefined {
    return this.find(idOrName)?.view();
  }

  private find(idOrName: string): VmEntry | undefined {
    return this.vms.get(idOrName) ?? [...this.vms.values()].find((e) => e.def.name === idOrName);
  }

  private entry(idOrName: string): VmEntry {
    const e = this.find(idOrName);
    if (!e) throw new VmmsError('VMMS_ERR_NO_SUCH_VM', `no VM named or with id "${idOrName}"`);
    return e;
  }

  /** DefineSystem: validates, persists, and returns the new VM (Off). */
  defineVm(request: NewVmRequest): VmView {
    return defineVm(this.ctx, request);
  }

  /** ModifySystemSettings / Modify-, Add-, RemoveResourceSettings (vm-definitions.ts): only while Off, but for the service's own settings. */
  modifyVm(idOrName: string, change: VmSettingsChange): RequestResult {
    return modifyVm(this.ctx, idOrName, change);
  }

  /** DestroySystem: only a VM that is Off or Saved; its saved state goes with it. */
  removeVm(idOrName: string): RequestResult {
    return removeVm(this.ctx, this.checkpoints, idOrName);
  }

  /** Export-VM (vm-export.ts): an Off or Saved VM with its disks and checkpoints, to `<dir>/<VM name>/`. */
  exportVm(idOrName: string, dir: string): ExportResult {
    return exportDefinedVm(this.ctx, this.checkpoints, idOrName, dir);
  }

  /** Import-VM (vm-import.ts): registers the VM a `vm export` folder holds, in place or copied. */
  importVm(folder: string, o: ImportOptions): ImportResult {
    return importDefinedVm(this.ctx, this.checkpoints, folder, o);
  }

  /** RequestStateChange: applies the transition and resolves when it is complete. */
  requestStateChange(idOrName: string, requested: number): Promise<RequestResult> {
    return requestStateChange(this.ctx, idOrName, requested);
  }

  /** Live migration in (vm-live-migration.ts): resolves once the arriving VM runs here; one that does not arrive leaves nothing behind. */
  receiveVm(definition: VmDefinition, handOn: (socketPath: string) => Promise<void>, timeoutMs: number): Promise<VmView> {
    return receiveVm(this.ctx, definition, handOn, timeoutMs);
  }

  /** Live migration out (vm-live-migration.ts): on success the VM runs there and its definition leaves this host. */
  moveOut(
    idOrName: string,
    request: Record<string, unknown>,
    onProgress: (p: Record<string, unknown>) => void,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return moveOut(this.ctx, idOrName, request, onProgress, timeoutMs);
  }

  /** Cancels a live migration of the VM before its commit point (the VM runs on here). */
  cancelMove(idOrName: string): Promise<void> {
    return cancelMove(this.ctx, idOrName);
  }

  /** Why a VM of `memoryBytes` cannot start now (null: it can), besides `self`. */
  private admission(self: VmEntry | null, memoryBytes: number): string | null {
    // Orphan workers hold their memory as long as they live (orphan-workers.ts).
    const orphans = this.orphanWorkers.list();
    const committed =
      [...this.vms.values()].filter((v) => v !== self && v.pid !== null).reduce((n, v) => n + v.def.memoryBytes, 0) +
      orphans.reduce((n, o) => n + o.memoryBytes, 0);
    const running = [...this.vms.values()].filter((v) => v.pid !== null).length + orphans.length;
    return admissionProblem(this.limits, memoryBytes, committed, running);
  }

  start(vm: string) {
    return this.requestStateChange(vm, 2);
  }
  turnOff(vm: string) {
    return this.requestStateChange(vm, 3);
  }
  save(vm: string) {
    return this.requestStateChange(vm, 6);
  }
  pause(vm: string) {
    return this.requestStateChange(vm, 9);
  }
  resume(vm: string) {
    return this.requestStateChange(vm, 2);
  }
  reset(vm: string) {
    return this.requestStateChange(vm, 11);
  }

  /** Stop-VM without -TurnOff (vm-state-requests.ts): the guest asked to shut down, turned off when it does not within `timeoutMs`. */
  shutdown(idOrName: string, o: { timeoutMs?: number; force?: boolean; reason?: string } = {}): Promise<RequestResult> {
    return shutdownVm(this.ctx, idOrName, o);
  }

  /** Msvm_HeartbeatComponent OperationalStatus of a running VM: 2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication. */
  heartbeatStatus(idOrName: string): Promise<number> {
    return integration.heartbeatStatus(this.entry(idOrName));
  }

  /** A KVP item the guest holds in `pool` (KvpPool), or null when it has none by that key. */
  kvpGet(idOrName: string, pool: number, key: string): Promise<string | null> {
    return integration.kvpGet(this.entry(idOrName), pool, key);
  }

  /** Writes a host item into the guest's `pool` (KvpPool.External for operator data). */
  kvpSet(idOrName: string, pool: number, key: string, value: string): Promise<void> {
    return integration.kvpSet(this.entry(idOrName), pool, key, value);
  }

  console(idOrName: string): string {
    return this.entry(idOrName).console();
  }

  /** Removes a host item from the guest's `pool`. */
  kvpDelete(idOrName: string, pool: number, key: string): Promise<void> {
    return integration.kvpDelete(this.entry(idOrName), pool, key);
  }

  /** Bytes typed at the VM's console: the worker puts them into COM1's receiver. */
  consoleInput(idOrName: string, bytes: Uint8Array): Promise<void> {
    return integration.consoleInput(this.entry(idOrName), bytes);
  }

  /** The worker's counters now: per VP exits by kind, interrupts, messages, signals, bytes moved. */
  counters(idOrName: string): Promise<WorkerCounters> {
    return integration.counters(this.entry(idOrName));
  }

  private setState(e: VmEntry, state: EnabledStateValue, reason: string, health: HealthStateValue = e.health): void {
    // A disk that failed in this run keeps the VM unhealthy through saves, pauses and its stop.
    if (e.diskFailure !== null && health === HealthState.Ok) health = HealthState.MajorFailure;
    const previous = e.state;
    if (previous === state && health === e.health) return;
    e.state = state;
    e.health = health;
    if (state === EnabledState.Running && e.runningSince === null) e.runningSince = Date.now();
    if (state === EnabledState.Off || state === EnabledState.Saved) {
      e.runningSince = null;
      e.pid = null;
    }
    e.log.info(`${stateName(previous)} → ${stateName(state)}: ${reason}`, { health });
    this.events.emit('state-changed', { vmId: e.def.id, name: e.def.name, previous, state, healthState: health, reason } satisfies StateChangeEvent);
  }

  /** Measure-VM: the VM's average CPU since metering was reset (`reset` starts a new interval). */
  measureCpu(idOrName: string, reset = false): CpuMeasurement {
    const e = this.entry(idOrName);
    const m = this.cpu.measure(e.def.id, reset);
    if (!m) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} is not running: CPU metering covers a running VM`);
    return m;
  }

  /** The CPU budget the scheduler last granted a running VM's VPs (null: none sent yet). */
  cpuGrant(idOrName: string): { perVpUs: number; capUs: number; periodUs: number } | null {
    return this.cpu.grant(this.entry(idOrName).def.id);
  }

  /** What one period of the CPU scheduler costs VMMS, and how many budgets it sent. */
  schedulerStats(): SchedulerStats {
    return this.cpu.stats();
  }

  /**
   * Stops the service. With `stopVms` (the default) each running VM gets its automatic stop
   * action — saved or turned off — first; without, VMs keep running and a later VMMS reattaches.
   */
  async close(opts: { stopVms?: boolean } = {}): Promise<void> {
    if (opts.stopVms ?? true) await applyAutomaticStopActions(this.ctx);
    this.closing = true;
    this.cpu.close();
    this.ops.close();
    for (const e of this.vms.values()) e.conn?.close();
    await this.switches.close();
    this.lock?.release();
    this.log.info((opts.stopVms ?? true) ? 'management service stopped' : 'management service stopped; VMs left running');
  }

  /** Set-VM -AutomaticStartAction, as the service starts (automatic-actions.ts). */
  autoStart(): Promise<{ vm: string; result: RequestResult }[]> {
    return applyAutomaticStartActions(this.ctx);
  }

  /** Tail of a worker's stdio file: what a worker that died before its socket came up said. */
  workerOutput(id: string): string {
    try {
      return readFileSync(this.paths.workerOutput(id), 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }
}
