/**
 * The live CimProvider: root/virtualization/v2 over the VMMS. Instances are built from the VMs
 * as they are at each call; intrinsic events are pushed from the VMMS's own notifications
 * (state changes, definitions, removals) and from job changes, never found by polling.
 */
import type { CimInstance } from '../cim/instance.ts';
import { keyValue, sameObjectPath, type CimObjectPath } from '../cim/object-path.ts';
import type { CimEventListener, CimInstanceEvent, CimMethodResult, CimProvider } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import { IMAGE_SERVICE_CLASS, ImageManagementService } from './image-management-service.ts';
import { JobTable } from './job-table.ts';
import { changeKvpItems, KVP_METHODS, type KvpMethodContext } from './kvp-methods.ts';
import { ServiceMethods } from './service-methods.ts';
import { SNAPSHOT_CLASSES, SnapshotService } from './snapshot-service.ts';
import { MIGRATION_CLASSES, MigrationService } from './migration-service.ts';
import { SwitchMethods, switchObjects } from './switch-instances.ts';
import { buildVmObjects, hostSystemOf, managementServiceOf, NO_REQUESTED_STATE, type VmObjects, type VmTracking } from './vm-instances.ts';
import type { VmmsPort, VmmsPortEvent, VmRecord } from './vmms-port.ts';

/** RequestedState values Msvm_ComputerSystem.RequestStateChange accepts (Microsoft Docs). */
const STATE_CHANGE_DESCRIPTION: Record<number, string> = {
  2: 'Starting Virtual Machine',
  3: 'Turning Off Virtual Machine',
  6: 'Saving Virtual Machine',
  9: 'Pausing Virtual Machine',
  10: 'Rebooting Virtual Machine',
  11: 'Resetting Virtual Machine',
};
/** EnabledStates a state change passes through (Stopping, Starting, Resetting, Saving, Pausing, Resuming). */
const TRANSITIONAL = new Set([4, 10, 11, 32773, 32776, 32777]);
/** How long InitiateShutdown waits for the guest to refuse before answering that it accepted. */
const SHUTDOWN_ACCEPT_MS = 2000;

export interface VmmsProviderOptions {
  /** Where a VM's definition lives (Msvm_VirtualSystemSettingData.ConfigurationFile). */
  configurationFile?: (vmId: string) => string;
  jobRetentionMs?: number;
}

export class VmmsProvider implements CimProvider {
  readonly jobs: JobTable;
  private readonly listeners = new Set<CimEventListener>();
  private readonly tracking = new Map<string, VmTracking>();
  /** The Msvm_ComputerSystem last published per VM: the PreviousInstance of the next change. */
  private readonly published = new Map<string, CimInstance>();
  /** The integration components last published per VM ("<vmId> <class>"), for the same reason. */
  private readonly publishedComponents = new Map<string, CimInstance>();
  private readonly runningJobs = new Map<string, CimObjectPath>();
  private readonly service: ServiceMethods;
  private readonly snapshots: SnapshotService;
  private readonly migration: MigrationService;
  private readonly switchMethods: SwitchMethods;
  private readonly images: ImageManagementService | null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly schema: CimSchema,
    private readonly port: VmmsPort,
    private readonly options: VmmsProviderOptions = {},
  ) {
    this.jobs = new JobTable(schema, (e) => this.emit(e), options.jobRetentionMs);
    this.service = new ServiceMethods({ schema, port, jobs: this.jobs, systemPath: (id) => this.systemPath(id) });
    this.snapshots = new SnapshotService({ schema, port, jobs: this.jobs, systemPath: (id) => this.systemPath(id) });
    this.migration = new MigrationService({ schema, port, jobs: this.jobs, systemPath: (id) => this.systemPath(id) });
    this.switchMethods = new SwitchMethods(port.switches, this.jobs);
    this.images = port.images ? new ImageManagementService({ schema, images: port.images, jobs: this.jobs, hostName: port.hostName }) : null;
    for (const vm of port.list()) {
      const objects = this.objectsOf(vm);
      this.published.set(vm.id, objects.system);
      for (const c of objects.components) this.publishedComponents.set(`${vm.id} ${c.className}`, c);
    }
    this.unsubscribe = port.subscribe((e) => this.onVmmsEvent(e));
  }

  dispose(): void {
    this.unsubscribe();
    this.jobs.dispose();
    this.listeners.clear();
  }

  enumerateInstances(className: string): readonly CimInstance[] {
    const vms = () => this.port.list().map((vm) => this.objectsOf(vm));
    switch (className.toLowerCase()) {
      case 'msvm_computersystem':
        return [hostSystemOf(this.schema, this.port.hostName), ...vms().map((o) => o.system)];
      case 'msvm_virtualsystemmanagementservice':
        return [managementServiceOf(this.schema, this.port.hostName)];
      case 'msvm_virtualsystemsettingdata':
        return [...vms().map((o) => o.settings), ...this.snapshots.settings()];
      case 'msvm_concretejob':
        return this.jobs.list();
      case 'msvm_affectedjobelement':
        return this.jobs.affectedElements();
      case 'msvm_virtualethernetswitch':
        return this.switchObjects().switches;
      case 'msvm_virtualethernetswitchsettingdata':
        return this.switchObjects().settings;
      case 'msvm_virtualethernetswitchmanagementservice':
        return [this.switchObjects().service];
      case 'msvm_imagemanagementservice':
        return this.images ? [this.images.serviceInstance()] : [];
    }
    const lower = className.toLowerCase();
    if (SNAPSHOT_CLASSES.has(lower)) return this.snapshots.enumerate(lower);
    if (MIGRATION_CLASSES.has(lower)) return this.migration.enumerate(lower);
    return vms()
      .flatMap((o) => [...o.resources, ...o.components, ...o.associations])
      .filter((i) => i.className.toLowerCase() === lower);
  }

  getInstance(path: CimObjectPath): CimInstance | null {
    const lower = path.className.toLowerCase();
    if (lower === 'msvm_concretejob') return this.jobs.get(String(keyValue(path, 'InstanceID') ?? ''));
    if (lower === 'msvm_computersystem') {
      const vm = this.port.get(String(keyValue(path, 'Name') ?? '').toLowerCase());
      if (vm && String(keyValue(path, 'CreationClassName')).toLowerCase() === 'msvm_computersystem') return this.objectsOf(vm).system;
    }
    return this.enumerateInstances(path.className).find((i) => sameObjectPath(this.schema.pathOf(i), path)) ?? null;
  }

  async invokeMethod(path: CimObjectPath, method: string, params: Readonly<Record<string, CimValue>>): Promise<CimMethodResult> {
    switch (`${path.className}.${method}`.toLowerCase()) {
      case 'msvm_computersystem.requeststatechange':
        return this.requestStateChange(path, params);
      case 'msvm_shutdowncomponent.initiateshutdown':
        return this.initiateShutdown(path, params);
      // Only a Cancellable job (a live migration) can be terminated or killed; others answer 4097.
      case 'msvm_concretejob.requeststatechange':
        return { returnValue: this.jobs.requestStateChange(String(keyValue(path, 'InstanceID') ?? ''), params.RequestedState), out: {} };
    }
    const kvp = KVP_METHODS[method.toLowerCase()];
    if (kvp && path.className.toLowerCase() === 'msvm_virtualsystemmanagementservice') return changeKvpItems(this.kvpContext(), kvp, params);
    if (path.className.toLowerCase() === 'msvm_virtualsystemmanagementservice') return this.service.invoke(method, params);
    if (path.className.toLowerCase() === 'msvm_virtualsystemsnapshotservice') return this.snapshots.invoke(method, params);
    if (path.className.toLowerCase() === 'msvm_virtualsystemmigrationservice') return this.migration.invoke(method, params);
    if (path.className.toLowerCase() === 'msvm_virtualethernetswitchmanagementservice') return this.switchMethods.invoke(method, params);
    if (path.className.toLowerCase() === IMAGE_SERVICE_CLASS.toLowerCase())
      return this.images ? this.images.invoke(method, params) : { returnValue: 32770, out: {} };
    return { returnValue: 32768, out: {} };
  }

  subscribe(listener: CimEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private kvpContext(): KvpMethodContext {
    return { port: this.port, jobs: this.jobs, systemPath: (id) => this.systemPath(id) };
  }

  systemPath(vmId: string): CimObjectPath {
    return {
      className: 'Msvm_ComputerSystem',
      keys: [
        { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
        { name: 'Name', value: vmId },
      ],
    };
  }

  private objectsOf(vm: VmRecord): VmObjects {
    const switches = this.port.switches?.list() ?? [];
    return buildVmObjects(this.schema, this.port.hostName, vm, this.trackingOf(vm.id), this.options.configurationFile?.(vm.id) ?? '', switches);
  }

  private switchObjects() {
    return switchObjects(this.schema, this.port.hostName, this.port.switches?.list() ?? []);
  }

  private trackingOf(vmId: string): VmTracking {
    let t = this.tracking.get(vmId);
    if (!t) this.tracking.set(vmId, (t = { requestedState: NO_REQUESTED_STATE, timeOfLastStateChange: new Date() }));
    return t;
  }

  /**
   * 4096 and a job for a change the VM may make now; the refusal code (32775 invalid state, 4097
   * unsupported, 32773 bad value) at once otherwise. TimeoutPeriod is answered 4098: a change
   * runs to its end, and turn-off (3) is the way out of one that hangs.
   */
  private async requestStateChange(path: CimObjectPath, p: Readonly<Record<string, CimValue>>): Promise<CimMethodResult> {
    const vm = this.port.get(String(keyValue(path, 'Name')).toLowerCase());
    if (!vm) return { returnValue: 32768, out: {} }; // the host itself: its state is not changed here
    const requested = p.RequestedState;
    if (typeof requested !== 'number') return { returnValue: 32773, out: {} };
    if (p.TimeoutPeriod !== null && p.TimeoutPeriod !== undefined && !/^0+\.0+:000$/.test(String(p.TimeoutPeriod))) return { returnValue: 4098, out: {} };
    const refused = this.port.refuseStateChange(vm.id, requested);
    if (refused) return { returnValue: refused.returnValue, out: {} };
    const job = this.jobs.start(STATE_CHANGE_DESCRIPTION[requested] ?? `Changing state to ${requested}`, this.systemPath(vm.id));
    this.runningJobs.set(vm.id, job);
    this.setRequestedState(vm.id, requested);
    void this.port.requestStateChange(vm.id, requested).then(
      (r) => this.endStateChange(vm.id, job, r.returnValue, r.error),
      (e: Error) => this.endStateChange(vm.id, job, 32768, e.message),
    );
    return { returnValue: 4096, out: { Job: job } };
  }

  private endStateChange(vmId: string, job: CimObjectPath, code: number, error?: string): void {
    if (this.runningJobs.get(vmId) === job) this.runningJobs.delete(vmId);
    this.setRequestedState(vmId, NO_REQUESTED_STATE);
    this.jobs.finish(job, code, error);
  }

  private async initiateShutdown(path: CimObjectPath, p: Readonly<Record<string, CimValue>>): Promise<CimMethodResult> {
    const shutdown = this.port.shutdownGuest;
    // 32770 Not Supported: the worker has no path to the guest's shutdown service yet.
    if (!shutdown) return { returnValue: 32770, out: {} };
    const vmId = String(keyValue(path, 'SystemName') ?? '').toLowerCase();
    if (!this.port.get(vmId)) return { returnValue: 32773, out: {} };
    // InitiateShutdown answers once the guest has the request (Hyper-V returns 0 then); a
    // refusal (no shutdown service, guest says no) comes back within the grace period.
    const running = shutdown(vmId, p.Force === true, typeof p.Reason === 'string' ? p.Reason : '').catch((e: Error) => ({
      returnValue: 32768,
      error: e.message,
    }));
    const early = await Promise.race([running, new Promise<null>((r) => setTimeout(r, SHUTDOWN_ACCEPT_MS, null).unref())]);
    return { returnValue: early ? early.returnValue : 0, out: {} };
  }

  private setRequestedState(vmId: string, requested: number): void {
    const t = this.trackingOf(vmId);
    if (t.requestedState === requested) return;
    t.requestedState = requested;
    this.publish(vmId);
  }

  private onVmmsEvent(e: VmmsPortEvent): void {
    if (e.kind === 'removed') {
      const last = this.published.get(e.vmId);
      this.published.delete(e.vmId);
      for (const key of [...this.publishedComponents.keys()]) if (key.startsWith(`${e.vmId} `)) this.publishedComponents.delete(key);
      this.tracking.delete(e.vmId);
      if (last) this.emit({ kind: 'deletion', target: last, time: new Date() });
      return;
    }
    const vm = this.port.get(e.vmId);
    if (!vm) return;
    if (e.kind === 'component-changed') {
      this.publishComponent(vm, COMPONENT_CLASS[e.component]);
      return;
    }
    if (e.kind === 'defined') {
      const objects = this.objectsOf(vm);
      this.published.set(vm.id, objects.system);
      for (const c of objects.components) this.publishedComponents.set(`${vm.id} ${c.className}`, c);
      this.emit({ kind: 'creation', target: objects.system, time: new Date() });
      this.emit({ kind: 'creation', target: objects.settings, time: new Date() });
      return;
    }
    if (e.kind === 'state-changed') {
      this.trackingOf(vm.id).timeOfLastStateChange = new Date();
      const job = this.runningJobs.get(vm.id);
      if (job && TRANSITIONAL.has(vm.enabledState)) this.jobs.progress(job, 50);
    }
    if (e.kind === 'modified') {
      this.emit({ kind: 'modification', target: this.objectsOf(vm).settings, time: new Date() });
    }
    this.publish(vm.id);
  }

  /** Push a modification of the VM's Msvm_ComputerSystem with what was published before. */
  private publish(vmId: string): void {
    const vm = this.port.get(vmId);
    if (!vm) return;
    const target = this.objectsOf(vm).system;
    const previous = this.published.get(vmId);
    this.published.set(vmId, target);
    this.emit({ kind: 'modification', target, ...(previous ? { previous } : {}), time: new Date() });
  }

  /** Push a modification of one of the VM's integration components, as the worker reported the change. */
  private publishComponent(vm: VmRecord, className: string): void {
    const target = this.objectsOf(vm).components.find((c) => c.className === className);
    if (!target) return;
    const key = `${vm.id} ${className}`;
    const previous = this.publishedComponents.get(key);
    // No contact and no worker read the same (12): a change the instance does not show is no event.
    if (previous && sameProperties(previous, target)) return;
    this.publishedComponents.set(key, target);
    this.emit({ kind: 'modification', target, ...(previous ? { previous } : {}), time: new Date() });
  }

  private emit(event: CimInstanceEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        /* one subscriber's failure must not stop the others */
      }
    }
  }
}

const COMPONENT_CLASS = { heartbeat: 'Msvm_HeartbeatComponent', kvp: 'Msvm_KvpExchangeComponent' } as const;

function sameProperties(a: CimInstance, b: CimInstance): boolean {
  const text = (i: CimInstance) => JSON.stringify(i.properties, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return text(a) === text(b);
}
