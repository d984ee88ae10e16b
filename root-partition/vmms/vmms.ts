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
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../host/atomic-file.ts';
import type { ControlNotification } from '../ipc/vmwp-control-schema.ts';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import { DataDir } from '../host/data-dir.ts';
import { DefinitionStore, type DefinitionLoadError } from './definition-store.ts';
import { admissionProblem, defaultHostLimits, type HostLimits } from './host-resources.ts';
import {
  EnabledState,
  HealthState,
  ReturnCode,
  stateName,
  transition,
  type EnabledStateValue,
  type HealthStateValue,
  type LifecycleOperation,
  type ReturnCodeValue,
} from './lifecycle.ts';
import { createProcessLogger, type Logger } from '../host/log.ts';
import { newDefinition, validateDefinition, type NewVmRequest, type VmDefinition } from './vm-definition.ts';
import { VmEntry, type VmView } from './vm-entry.ts';
import { definitionFiles } from './vm-device-settings.ts';
import { StorageRoots } from '../host/storage-roots.ts';
import { WorkerOperations } from './worker-operations.ts';
import { VmmsLock, VmmsLockedError } from './vmms-lock.ts';
import type { VmwpConnection } from './vmwp-connection.ts';
import { OrphanWorkers, type OrphanWorkerView } from './orphan-workers.ts';
import type { MigrationService } from '../migration/migration-service.ts';
import { VmCheckpoints } from './checkpoints.ts';
import { cpuSettingsOf, HostCpuScheduler, type CpuMeasurement, type SchedulerStats } from './host-cpu-scheduler.ts';
import { SwitchRegistry } from './switch-registry.ts';
import { exportVm, type ExportResult } from './vm-export.ts';
import { importVm, type ImportOptions, type ImportResult } from './vm-import.ts';

/** The VMs running as the service last stopped them (for 'start-if-running'). */
const RUNNING_AT_STOP_FILE = 'running-at-stop.json';

export interface VmmsOptions {
  dataDir: string;
  limits?: Partial<HostLimits>;
  logger?: Logger;
  /** Readable log lines on stderr as well as the JSON file. */
  terminalLog?: boolean;
  /**
   * The directories disks and guest images may come from (storage-roots.ts), checked at
   * definition and again at start. Absent: any path (an embedded VMMS running as its user).
   */
  storageRoots?: readonly string[];
  /** How long a worker may take to start and boot, and to answer one request. */
  workerStartTimeoutMs?: number;
  operationTimeoutMs?: number;
  /** How long a worker found at open has to answer before its VM shows Unknown (default 5 s). */
  reattachTimeoutMs?: number;
  /** CPUs given to guests, for the CPU scheduler and its admission control (default: all the host's). */
  hostCpus?: number;
  /** The CPU scheduler's period, µs (default 50 ms; docs/scheduling.md). */
  cpuPeriodUs?: number;
}

export interface StateChangeEvent {
  vmId: string;
  name: string;
  previous: EnabledStateValue;
  state: EnabledStateValue;
  healthState: HealthStateValue;
  reason: string;
}

export interface RequestResult {
  returnValue: ReturnCodeValue;
  error?: string;
  vm?: VmView;
}

export class VmmsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

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
        attach: (e, c) => this.attach(e, c),
      },
      this.roots,
    );
    this.checkpoints = new VmCheckpoints(
      {
        paths: this.paths,
        find: (vm) => this.find(vm),
        replaceDefinition: (e, def, reason) => this.replaceDefinition(e, def, reason),
        turnOff: (e) => this.turnOff(e.def.id),
        markSaved: (e, reason) => this.setState(e, EnabledState.Saved, reason, HealthState.Ok),
        checkpointRunning: (e, savedState, switches) => this.ops.checkpoint(e, savedState, switches),
        mergeRunning: (e, child, parent, repoint) => this.ops.mergeDisk(e, child, parent, repoint),
      },
      (e, m) => e.log.info(m),
    );
  }

  /** A definition changed by the service itself (checkpoints): validated and persisted in any state. */
  private replaceDefinition(e: VmEntry, next: VmDefinition, reason: string): void {
    const def = validateDefinition({ ...next, id: e.def.id, name: e.def.name, version: e.def.version }, `VM ${e.def.name}`);
    this.confine(def);
    this.store.save(def);
    e.def = def;
    e.log.info(`definition changed: ${reason}`);
    this.events.emit('modified', { vmId: def.id, name: def.name });
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
    const { definitions, errors } = this.store.loadAll();
    this.loadErrors = errors;
    for (const e of errors) this.log.error(`VM definition not loaded: ${e.message}`);
    await Promise.all(
      definitions.map(async (def) => {
        const entry = new VmEntry(def, this.log);
        this.vms.set(def.id, entry);
        const saved = this.paths.savedState(def.id);
        entry.state = existsSync(saved) ? EnabledState.Saved : EnabledState.Off;
        await this.ops.reattach(entry);
        // A worker runs the VM: a saved state beside it is older than the guest (the worker
        // consumes the file it restores), and restoring it later would roll the guest back.
        if (entry.pid !== null && existsSync(saved)) {
          entry.log.warn(`${saved} is older than the running VM; discarded`);
          rmSync(saved, { force: true });
        }
      }),
    );
    this.orphanWorkers.scan(new Set(definitions.map((d) => d.id)), errors);
    this.log.info(
      `loaded ${definitions.length} VM definitions (${errors.length} refused); ${this.list().filter((v) => v.processId).length} running VMs reattached`,
    );
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
    const def = newDefinition(request);
    if (this.vms.size >= this.limits.maxVms) throw new VmmsError('VMMS_ERR_LIMIT', `the host has ${this.vms.size} VMs defined, its limit`);
    if (def.memoryBytes > this.limits.memoryBudgetBytes)
      throw new VmmsError('VMMS_ERR_LIMIT', `a VM of ${def.memoryBytes} bytes can never fit the host memory budget of ${this.limits.memoryBudgetBytes} bytes`);
    if (this.find(def.name)) throw new VmmsError('VMMS_ERR_NAME_IN_USE', `a VM named "${def.name}" exists`);
    this.confine(def);
    if (!existsSync(def.imagePath)) throw new VmmsError('VMMS_ERR_NO_IMAGE', `guest image ${def.imagePath} does not exist`);
    this.store.save(def);
    this.vms.set(def.id, new VmEntry(def, this.log));
    this.vms.get(def.id)!.log.info(`defined VM ${def.name} (${def.id})`);
    this.events.emit('defined', { vmId: def.id, name: def.name });
    return this.vms.get(def.id)!.view();
  }

  /**
   * ModifySystemSettings / Modify-, Add-, RemoveResourceSettings: a changed definition, validated
   * like a new one and persisted. Only while the VM is Off: a running worker holds the old one,
   * and a saved state was taken with it.
   */
  modifyVm(
    idOrName: string,
    change: Partial<
      Pick<
        VmDefinition,
        | 'name'
        | 'memoryBytes'
        | 'vpCount'
        | 'imagePath'
        | 'cmdline'
        | 'automaticStopAction'
        | 'automaticStartAction'
        | 'notes'
        | 'devices'
        | 'cpuReserve'
        | 'cpuMaximum'
        | 'cpuWeight'
      >
    >,
  ): RequestResult {
    const e = this.find(idOrName);
    if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
    // Notes and the automatic actions concern the service, not the running guest: any state.
    // So do the CPU reserve, maximum and weight: the scheduler applies them at its next period.
    // A setting given with the value it has is no change (WMI clients send whole instances).
    const changed = Object.keys(change).filter((k) => change[k as keyof typeof change] !== e.def[k as keyof VmDefinition]);
    const serviceOnly = changed.every((k) => ['notes', 'automaticStartAction', 'automaticStopAction', 'cpuReserve', 'cpuMaximum', 'cpuWeight'].includes(k));
    if (e.state !== EnabledState.Off && !serviceOnly)
      return {
        returnValue: ReturnCode.InvalidState,
        error: `cannot change the settings of a VM that is ${stateName(e.state)}; turn it off first`,
        vm: e.view(),
      };
    const other = change.name === undefined ? undefined : this.find(change.name);
    if (other && other !== e) return { returnValue: ReturnCode.InvalidParameter, error: `a VM named "${change.name}" exists` };
    let def: VmDefinition;
    try {
      def = validateDefinition({ ...e.def, ...change, id: e.def.id, version: e.def.version }, `VM ${e.def.name}`);
    } catch (err) {
      return { returnValue: ReturnCode.InvalidParameter, error: (err as Error).message, vm: e.view() };
    }
    if (def.memoryBytes > this.limits.memoryBudgetBytes)
      return {
        returnValue: ReturnCode.InvalidParameter,
        error: `${def.memoryBytes} bytes can never fit the host memory budget of ${this.limits.memoryBudgetBytes} bytes`,
      };
    try {
      this.confine(def);
    } catch (err) {
      return { returnValue: ReturnCode.InvalidParameter, error: (err as Error).message, vm: e.view() };
    }
    const cpuRefusal = this.cpu.changeSettings(def.id, cpuSettingsOf(def));
    if (cpuRefusal) return { returnValue: ReturnCode.InvalidParameter, error: `the CPU reserve cannot be raised: ${cpuRefusal}`, vm: e.view() };
    this.store.save(def);
    e.def = def;
    e.log.info('definition changed', { change: Object.keys(change) });
    this.events.emit('modified', { vmId: def.id, name: def.name });
    return { returnValue: ReturnCode.Completed, vm: e.view() };
  }

  /** Refuses a definition naming a host file outside the storage roots (before anything is kept). */
  private confine(def: VmDefinition): void {
    if (!this.roots) return;
    for (const f of definitionFiles(def.id, def.imagePath, def.devices)) this.roots.check(f.path, f.what);
  }

  /** DestroySystem: only a VM that is Off or Saved; its saved state goes with it. */
  removeVm(idOrName: string): RequestResult {
    const e = this.find(idOrName);
    if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
    if (e.state !== EnabledState.Off && e.state !== EnabledState.Saved)
      return { returnValue: ReturnCode.InvalidState, error: `cannot remove a VM that is ${stateName(e.state)}; turn it off first` };
    rmSync(this.paths.savedState(e.def.id), { force: true });
    this.checkpoints.forgetVm(e.def.id);
    this.store.remove(e.def.id);
    this.vms.delete(e.def.id);
    e.log.info(`removed VM ${e.def.name}`);
    this.events.emit('removed', { vmId: e.def.id, name: e.def.name });
    return { returnValue: ReturnCode.Completed };
  }

  /** Export-VM (vm-export.ts): an Off or Saved VM with its disks and checkpoints, to `<dir>/<VM name>/`. */
  exportVm(idOrName: string, dir: string): ExportResult {
    const e = this.entry(idOrName);
    if (e.state !== EnabledState.Off && e.state !== EnabledState.Saved) {
      throw new VmmsError(
        'VMMS_ERR_INVALID_STATE',
        `cannot export VM ${e.def.name} while it is ${stateName(e.state)}: its disks change under the copy; save it (tsvisor vm save ${e.def.name}) or turn it off, then export`,
      );
    }
    this.roots?.check(dir, 'export directory');
    const r = exportVm(
      { def: e.def, savedState: e.state === EnabledState.Saved ? this.paths.savedState(e.def.id) : null, tree: this.checkpoints.store.load(e.def.id) },
      dir,
    );
    e.log.info(`exported to ${r.path}`);
    return r;
  }

  /** Import-VM (vm-import.ts): registers the VM a `vm export` folder holds, in place or copied. */
  importVm(folder: string, o: ImportOptions): ImportResult {
    const r = importVm(folder, o, {
      idTaken: (id) => this.vms.has(id),
      nameTaken: (name) => this.find(name) !== undefined,
      savedStatePath: (id) => this.paths.savedState(id),
      checkpointDir: (id) => this.checkpoints.store.dir(id),
      checkRoot: (path, what) => {
        this.roots?.check(path, what);
      },
      register: (def, tree, saved) => {
        if (this.vms.size >= this.limits.maxVms) throw new VmmsError('VMMS_ERR_LIMIT', `the host has ${this.vms.size} VMs defined, its limit`);
        if (def.memoryBytes > this.limits.memoryBudgetBytes)
          throw new VmmsError(
            'VMMS_ERR_LIMIT',
            `a VM of ${def.memoryBytes} bytes can never fit the host memory budget of ${this.limits.memoryBudgetBytes} bytes`,
          );
        this.confine(def);
        if (tree) this.checkpoints.store.save(tree);
        try {
          this.store.save(def);
        } catch (err) {
          if (tree) this.checkpoints.store.remove(def.id);
          throw err;
        }
        const e = new VmEntry(def, this.log);
        e.state = saved ? EnabledState.Saved : EnabledState.Off;
        this.vms.set(def.id, e);
        e.log.info(`imported VM ${def.name} (${def.id}) from ${folder}`);
        this.events.emit('defined', { vmId: def.id, name: def.name });
      },
    });
    return r;
  }

  /** RequestStateChange: applies the transition and resolves when it is complete. */
  async requestStateChange(idOrName: string, requested: number): Promise<RequestResult> {
    const e = this.find(idOrName);
    if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
    if (this.closing) return { returnValue: ReturnCode.InvalidState, error: 'the management service is stopping' };
    const t = transition(e.state, requested);
    if (!t.ok) {
      e.log.info(`refused RequestedState ${requested} in ${stateName(e.state)}: ${t.reason} (${t.returnValue})`);
      return { returnValue: t.returnValue, error: t.reason, vm: e.view() };
    }
    if (t.operation === 'start' || t.operation === 'restore') {
      const problem = this.admission(e, e.def.memoryBytes);
      if (problem) {
        e.log.warn(`refused to start: ${problem}`);
        return { returnValue: ReturnCode.Failed, error: problem, vm: e.view() };
      }
      const cpuProblem = this.cpu.admit(e.def.id, e.def.vpCount, cpuSettingsOf(e.def));
      if (cpuProblem) {
        const error = `not enough unreserved CPU: ${cpuProblem}`;
        e.log.warn(`refused to start: ${error}`);
        return { returnValue: ReturnCode.Failed, error, vm: e.view() };
      }
    }
    try {
      await this.ops.apply(e, t.operation as LifecycleOperation, t.via, t.to);
      e.lastError = null;
      return { returnValue: ReturnCode.Completed, vm: e.view() };
    } catch (err) {
      if (!e.conn) this.cpu.detach(e.def.id);
      e.lastError = (err as Error).message;
      e.log.error(`${t.operation} failed: ${e.lastError}`);
      return { returnValue: ReturnCode.Failed, error: e.lastError, vm: e.view() };
    }
  }

  /**
   * Live migration in (migration/migration-service.ts): defines the arriving VM from the
   * definition that travels with it, starts its worker on the stream `handOn` delivers to the
   * worker's migration socket, and resolves once the VM runs here. A VM that does not arrive
   * leaves nothing behind (no definition, no worker).
   */
  async receiveVm(definition: VmDefinition, handOn: (socketPath: string) => Promise<void>, timeoutMs: number): Promise<VmView> {
    if (this.closing) throw new VmmsError('VMMS_ERR_STOPPING', 'the management service is stopping');
    const def = validateDefinition(definition, 'the arriving VM');
    if (this.vms.has(def.id)) throw new VmmsError('VMMS_ERR_VM_EXISTS', `a VM with id ${def.id} is already defined on this host`);
    if (this.find(def.name)) throw new VmmsError('VMMS_ERR_NAME_IN_USE', `a VM named "${def.name}" exists on this host`);
    this.confine(def);
    if (!existsSync(def.imagePath)) throw new VmmsError('VMMS_ERR_NO_IMAGE', `guest image ${def.imagePath} does not exist on this host`);
    const problem = this.admission(null, def.memoryBytes);
    if (problem) throw new VmmsError('VMMS_ERR_LIMIT', problem);
    this.store.save(def);
    const e = new VmEntry(def, this.log);
    this.vms.set(def.id, e);
    this.events.emit('defined', { vmId: def.id, name: def.name });
    this.setState(e, EnabledState.Starting, 'arriving by live migration');
    try {
      await this.ops.startIncoming(e, handOn, timeoutMs);
    } catch (err) {
      e.log.error(`the VM did not arrive: ${(err as Error).message}`);
      e.expectingExit = true;
      this.setState(e, EnabledState.Off, `the migration in failed: ${(err as Error).message}`);
      this.store.remove(def.id);
      this.vms.delete(def.id);
      this.events.emit('removed', { vmId: def.id, name: def.name });
      throw err;
    }
    this.setState(e, EnabledState.Running, 'arrived by live migration', HealthState.Ok);
    return e.view();
  }

  /**
   * Live migration out: the worker streams the VM to the destination (request: where, with which
   * TLS identity and trusted hosts). On success the VM runs there and its definition leaves this
   * host; on a failure it runs on here (or, when the destination's answer was lost after the
   * commit, stays Paused: it may be running there) and the error says why.
   */
  async moveOut(
    idOrName: string,
    request: Record<string, unknown>,
    onProgress: (p: Record<string, unknown>) => void,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    const e = this.entry(idOrName);
    if (this.closing) throw new VmmsError('VMMS_ERR_STOPPING', 'the management service is stopping');
    if (e.state !== EnabledState.Running || !e.conn)
      throw new VmmsError('VMMS_ERR_INVALID_STATE', `cannot move a VM that is ${stateName(e.state)}; only a Running VM moves live`);
    const conn = e.conn;
    const progress = (n: ControlNotification) => {
      if (n.kind !== 'MIGRATION_PROGRESS') return;
      try {
        onProgress(JSON.parse(n.message ?? '{}') as Record<string, unknown>);
      } catch {
        /* a malformed report is only a report */
      }
    };
    conn.on('notification', progress);
    e.log.info(`live migration to ${String(request.host)}:${String(request.port)} requested`);
    let summary: Record<string, unknown>;
    try {
      const r = await conn.request('MIGRATE', timeoutMs, { migration: JSON.stringify({ ...request, hello: { definition: e.def } }) });
      // The worker exits now: its VM runs on the destination.
      e.expectingExit = true;
      summary = JSON.parse(r.migrationSummary || '{}') as Record<string, unknown>;
    } catch (err) {
      const code = (err as { code?: string }).code;
      e.lastError = `live migration failed: ${(err as Error).message}`;
      e.log.error(e.lastError);
      if (code === 'MIGRATION_ERR_OUTCOME_UNKNOWN') this.setState(e, EnabledState.Paused, e.lastError, HealthState.MajorFailure);
      throw err;
    } finally {
      conn.off('notification', progress);
    }
    e.generation++;
    await Promise.race([conn.whenClosed(), new Promise((r) => setTimeout(r, 3000))]);
    if (e.pid !== null && !conn.isClosed) await this.ops.apply(e, 'turn-off', EnabledState.Stopping, EnabledState.Off).catch(() => {});
    this.setState(e, EnabledState.Off, `moved to ${String(request.host)}:${String(request.port)}`);
    this.store.remove(e.def.id);
    this.vms.delete(e.def.id);
    e.log.info(`moved to ${String(request.host)}:${String(request.port)}; its definition left this host`);
    this.events.emit('removed', { vmId: e.def.id, name: e.def.name });
    return summary;
  }

  /** Cancels a live migration of the VM before its commit point (the VM runs on here). */
  async cancelMove(idOrName: string): Promise<void> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    await e.conn.request('CANCEL_MIGRATION', 5000);
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

  /**
   * Stop-VM without -TurnOff: the guest's shutdown integration service is asked to shut down;
   * a guest that does not stop within `timeoutMs` (default 30 s) is turned off. Only from
   * Running. A guest that refuses, or runs no shutdown service, keeps running (Failed, with why).
   */
  async shutdown(idOrName: string, o: { timeoutMs?: number; force?: boolean; reason?: string } = {}): Promise<RequestResult> {
    const e = this.find(idOrName);
    if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
    if (this.closing) return { returnValue: ReturnCode.InvalidState, error: 'the management service is stopping' };
    if (e.state !== EnabledState.Running)
      return {
        returnValue: ReturnCode.InvalidState,
        error: `cannot shut down a VM that is ${stateName(e.state)}; only a Running VM can be shut down`,
        vm: e.view(),
      };
    const timeoutMs = o.timeoutMs ?? 30_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 3_600_000)
      return { returnValue: ReturnCode.InvalidParameter, error: 'timeoutMs must be an integer from 0 to 3600000', vm: e.view() };
    try {
      await this.ops.shutdown(e, { timeoutMs, force: o.force ?? false, reason: o.reason ?? '' });
      e.lastError = null;
      return { returnValue: ReturnCode.Completed, vm: e.view() };
    } catch (err) {
      e.lastError = (err as Error).message;
      e.log.error(`shutdown failed: ${e.lastError}`);
      return { returnValue: ReturnCode.Failed, error: e.lastError, vm: e.view() };
    }
  }

  /** Msvm_HeartbeatComponent OperationalStatus of a running VM: 2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication. */
  async heartbeatStatus(idOrName: string): Promise<number> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    return (await e.conn.request('HEARTBEAT', 5000)).heartbeatStatus ?? 0;
  }

  /** A KVP item the guest holds in `pool` (KvpPool), or null when it has none by that key. */
  async kvpGet(idOrName: string, pool: number, key: string): Promise<string | null> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    const r = await e.conn.request('KVP_GET', 10_000, { kvpPool: pool, kvpKey: key });
    return r.kvpFound ? (r.kvpValue ?? '') : null;
  }

  /** Writes a host item into the guest's `pool` (KvpPool.External for operator data). */
  async kvpSet(idOrName: string, pool: number, key: string, value: string): Promise<void> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    await e.conn.request('KVP_SET', 10_000, { kvpPool: pool, kvpKey: key, kvpValue: value });
  }

  console(idOrName: string): string {
    return this.entry(idOrName).console();
  }

  /** Removes a host item from the guest's `pool`. */
  async kvpDelete(idOrName: string, pool: number, key: string): Promise<void> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    await e.conn.request('KVP_DELETE', 10_000, { kvpPool: pool, kvpKey: key });
  }

  /** Bytes typed at the VM's console: the worker puts them into COM1's receiver. */
  async consoleInput(idOrName: string, bytes: Uint8Array): Promise<void> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    await e.conn.request('CONSOLE_INPUT', 5000, { consoleInput: bytes });
  }

  private setHeartbeat(e: VmEntry, status: number | null): void {
    if (e.heartbeatStatus === status) return;
    e.heartbeatStatus = status;
    this.events.emit('integration-changed', { vmId: e.def.id, component: 'heartbeat' });
  }

  /** The worker's counters now: per VP exits by kind, interrupts, messages, signals, bytes moved. */
  async counters(idOrName: string): Promise<WorkerCounters> {
    const e = this.entry(idOrName);
    if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
    await e.conn.request('COUNTERS', 5000);
    return e.conn.lastCounters!;
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

  private attach(e: VmEntry, conn: VmwpConnection): void {
    e.conn = conn;
    this.cpu.attach(e.def.id, e.def.vpCount, cpuSettingsOf(e.def), conn);
    e.cpuLoad = () => this.cpu.load(e.def.id);
    e.expectingExit = false;
    e.guestStopped = false;
    e.guestExitFault = null;
    conn.on('console', (data: Uint8Array) => {
      e.appendConsole(data);
      this.events.emit('console', { vmId: e.def.id, data });
    });
    conn.on('notification', (n: ControlNotification) => {
      if (n.kind === 'DISK_FAILURE') {
        if (e.diskFailure !== null) return; // the first one stays
        e.diskFailure = n.message || 'a disk failed';
        e.log.error(`disk failure: ${e.diskFailure}`);
        this.setState(e, e.state, `disk failure: ${e.diskFailure}`, HealthState.MajorFailure);
      } else if (n.kind === 'GUEST_FAULT') {
        e.guestExitFault = n.message ?? 'guest fault';
        this.events.emit('guest-fault', { vmId: e.def.id, name: e.def.name, message: n.message });
      } else if (n.kind === 'HEARTBEAT') {
        this.setHeartbeat(e, n.heartbeatStatus ?? null);
      } else if (n.kind === 'KVP') {
        const pairs = (items?: { key: string; value: string }[]) => (items ?? []).map((i): [string, string] => [i.key, i.value]);
        e.kvp = { guest: pairs(n.kvpGuestItems), intrinsic: pairs(n.kvpIntrinsicItems) };
        this.events.emit('integration-changed', { vmId: e.def.id, component: 'kvp' });
      } else if (n.kind === 'GUEST_STOPPED') {
        e.guestStopped = true;
        e.expectingExit = true;
        const fault = n.exits?.find((x) => x.reason === 'fault');
        if (fault) e.guestExitFault = fault.detail ?? 'fault';
      }
    });
    // The changes come pushed; this reads where the heartbeat stands now (after a VMMS restart).
    conn.request('HEARTBEAT', 5000).then(
      (r) => {
        if (e.conn === conn) this.setHeartbeat(e, r.heartbeatStatus ?? null);
      },
      () => {},
    );
    conn.on('close', () => {
      if (e.conn !== conn) return;
      e.conn = null;
      this.cpu.detach(e.def.id);
      e.cpuLoad = null;
      this.setHeartbeat(e, null);
      if (e.kvp) {
        e.kvp = null;
        this.events.emit('integration-changed', { vmId: e.def.id, component: 'kvp' });
      }
      if (this.closing && !e.expectingExit) return; // VMMS detaches; the worker runs on
      void this.ops.forget(e, e.pid);
      if (e.guestStopped) {
        e.pid = null;
        // A guest that faulted (at instantiation, say) keeps the reason as the VM's last error.
        if (e.guestExitFault) e.lastError = `the guest stopped: ${e.guestExitFault}`;
        this.setState(
          e,
          EnabledState.Off,
          e.guestExitFault ? `the guest stopped: ${e.guestExitFault}` : 'the guest stopped',
          e.guestExitFault ? HealthState.MajorFailure : HealthState.Ok,
        );
      } else if (!e.expectingExit) {
        const message = `the worker process ${e.pid} ended unexpectedly`;
        e.lastError = message;
        e.generation++;
        e.log.error(message);
        this.setState(e, EnabledState.Off, message, HealthState.CriticalFailure);
        e.pid = null;
        this.events.emit('vm-crashed', { vmId: e.def.id, name: e.def.name, message });
      }
    });
  }

  /**
   * Stops the service. With `stopVms` (the default) each running VM gets its automatic stop
   * action — saved or turned off — first; without, VMs keep running and a later VMMS reattaches.
   */
  async close(opts: { stopVms?: boolean } = {}): Promise<void> {
    if (opts.stopVms ?? true) {
      this.recordRunning();
      await Promise.all(
        [...this.vms.values()]
          .filter((e) => e.pid !== null || e.conn)
          .map(async (e) => {
            const action = e.def.automaticStopAction;
            let r =
              action === 'save' && (e.state === EnabledState.Running || e.state === EnabledState.Paused)
                ? await this.save(e.def.id)
                : await this.turnOff(e.def.id);
            if (r.returnValue !== ReturnCode.Completed && action === 'save') {
              e.log.error(`automatic save failed (${r.error}); turning the VM off`);
              r = await this.turnOff(e.def.id);
            }
          }),
      );
    }
    this.closing = true;
    this.cpu.close();
    this.ops.close();
    for (const e of this.vms.values()) e.conn?.close();
    await this.switches.close();
    this.lock?.release();
    this.log.info((opts.stopVms ?? true) ? 'management service stopped' : 'management service stopped; VMs left running');
  }

  private get runningAtStopFile(): string {
    return join(this.paths.root, RUNNING_AT_STOP_FILE);
  }

  /** Which VMs ran as the service stopped them: the 'start-if-running' VMs the next start starts. */
  private recordRunning(): void {
    const running = [...this.vms.values()].filter((e) => e.state === EnabledState.Running || e.state === EnabledState.Paused).map((e) => e.def.id);
    try {
      writeFileAtomic(this.runningAtStopFile, JSON.stringify(running) + '\n');
    } catch (err) {
      this.log.warn(`could not record the running VMs for their automatic start: ${(err as Error).message}`);
    }
  }

  /**
   * Set-VM -AutomaticStartAction, as the service starts: 'start' VMs are started, 'start-if-running'
   * ones that were running when the service last stopped them. Each VM's outcome is logged; one
   * that fails to start stays Off with its error, as after a failed `vm start`.
   */
  async autoStart(): Promise<{ vm: string; result: RequestResult }[]> {
    let wasRunning: string[] = [];
    try {
      const v: unknown = JSON.parse(readFileSync(this.runningAtStopFile, 'utf8'));
      if (Array.isArray(v)) wasRunning = v.filter((x): x is string => typeof x === 'string');
    } catch {
      /* no record: the service never stopped VMs here */
    }
    rmSync(this.runningAtStopFile, { force: true });
    const due = [...this.vms.values()].filter(
      (e) => e.pid === null && (e.def.automaticStartAction === 'start' || (e.def.automaticStartAction === 'start-if-running' && wasRunning.includes(e.def.id))),
    );
    const out: { vm: string; result: RequestResult }[] = [];
    for (const e of due) {
      const result = await this.start(e.def.id);
      if (result.returnValue === ReturnCode.Completed) e.log.info(`started by its automatic start action (${e.def.automaticStartAction})`);
      else e.log.error(`automatic start (${e.def.automaticStartAction}) failed: ${result.error}`);
      out.push({ vm: e.def.name, result });
    }
    return out;
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
