/**
 * Msvm_VirtualSystemManagementService's methods over the VMMS (Microsoft Docs). A change
 * that completes at once answers 0; one that fails answers 4096 with a job in Exception whose
 * ErrorCode is the Hyper-V code and ErrorDescription the reason — the way Hyper-V reports why,
 * and what libvirt's hyperv driver reads — so that no failure is a bare number.
 */
import { CimInstance } from '../cim/instance.ts';
import { keyValue, type CimObjectPath } from '../cim/object-path.ts';
import type { CimMethodResult } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import type { JobTable } from './job-table.ts';
import { addUserVsps, isUserVspSetting, removeUserVsp } from './user-vsp-settings.ts';
import {
  addStorage,
  computeChange,
  integrationChange,
  modifyStorage,
  removeStorage,
  SettingRefused,
  systemSettingsChange,
  type AddedSetting,
} from './resource-changes.ts';
import { controllerInstanceId, diskInstanceId, driveInstanceId } from './device-settings.ts';
import { addNetwork, isNetworkSetting, modifyNetwork, removeNetwork } from './network-settings.ts';
import type { DeviceRecord, PortResult, VmDefinitionChange, VmmsPort, VmRecord } from './vmms-port.ts';

const Code = { Completed: 0, JobStarted: 4096, Failed: 32768, InvalidParameter: 32773, InvalidState: 32775 } as const;
const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

export interface ServiceContext {
  readonly schema: CimSchema;
  readonly port: VmmsPort;
  readonly jobs: JobTable;
  /** The Msvm_ComputerSystem path of a VM. */
  systemPath(vmId: string): CimObjectPath;
}

type Params = Readonly<Record<string, CimValue>>;

/** The VM whose id a VSSD InstanceID ("Microsoft:<id>") or a setting's InstanceID starts with. */
function vmOfInstanceId(port: VmmsPort, instanceId: unknown): VmRecord | undefined {
  const m = /^Microsoft:([0-9a-fA-F-]{36})/.exec(String(instanceId ?? ''));
  return m ? port.get(m[1]!.toLowerCase()) : undefined;
}

function instances(v: CimValue | undefined): CimInstance[] {
  return (Array.isArray(v) ? v : v ? [v] : []).filter((x): x is CimInstance => x instanceof CimInstance);
}

export class ServiceMethods {
  constructor(private readonly ctx: ServiceContext) {}

  async invoke(method: string, p: Params): Promise<CimMethodResult> {
    try {
      switch (method) {
        case 'DefineSystem':
          return this.defineSystem(p);
        case 'DestroySystem':
          return this.outcome('Destroying Virtual Machine', null, this.destroy(p));
        case 'ModifySystemSettings':
          return this.modifySystemSettings(p);
        case 'AddResourceSettings':
          return this.changeResources('Adding Resources', p, 'add');
        case 'ModifyResourceSettings':
          return this.changeResources('Modifying Resources', p, 'modify');
        case 'RemoveResourceSettings':
          return this.changeResources('Removing Resources', p, 'remove');
        case 'GetSummaryInformation':
          return this.summary(p);
        default:
          return this.failed(method, null, Code.Failed, `${method} is not offered by this host (KVP items need the KVP integration service)`);
      }
    } catch (e) {
      if (e instanceof SettingRefused) return this.failed(method, null, Code.InvalidParameter, e.message);
      throw e;
    }
  }

  private defineSystem(p: Params): CimMethodResult {
    const [vssd] = instances(p.SystemSettings);
    if (!vssd)
      return this.failed('Defining Virtual Machine', null, Code.InvalidParameter, 'SystemSettings must hold an embedded Msvm_VirtualSystemSettingData');
    if (p.ReferenceConfiguration)
      return this.failed('Defining Virtual Machine', null, Code.InvalidParameter, 'ReferenceConfiguration (copying a VM) is not offered');
    const change: VmDefinitionChange = systemSettingsChange(vssd);
    // New-VM's devices come in the same call: SCSI controllers and integration-service settings.
    let devices: DeviceRecord[] = [];
    for (const r of instances(p.ResourceSettings)) {
      const c = computeChange(r);
      if (c) {
        Object.assign(change, c);
        continue;
      }
      const ic = integrationChange(devices, r);
      if (ic) {
        devices = ic;
        continue;
      }
      if (r.get('ResourceType') !== 6)
        throw new SettingRefused(
          `${r.className} ResourceType ${String(r.get('ResourceType'))}: DefineSystem takes processor, memory, SCSI controller and integration-service settings; add drives and disks with AddResourceSettings`,
        );
      devices = [{ kind: 'scsi-controller', disks: [] }, ...devices];
    }
    if (devices.length) change.devices = devices;
    if (!change.name) return this.failed('Defining Virtual Machine', null, Code.InvalidParameter, 'SystemSettings.ElementName (the VM name) is required');
    if (!change.imagePath)
      return this.failed('Defining Virtual Machine', null, Code.InvalidParameter, 'SystemSettings.GuestImagePath (the guest image) is required');
    let vm: VmRecord;
    try {
      vm = this.ctx.port.define({ ...change, name: change.name, imagePath: change.imagePath, memoryBytes: change.memoryBytes ?? DEFAULT_MEMORY_BYTES });
    } catch (e) {
      return this.failed('Defining Virtual Machine', null, Code.InvalidParameter, (e as Error).message);
    }
    return { returnValue: Code.Completed, out: { ResultingSystem: this.ctx.systemPath(vm.id) } };
  }

  private destroy(p: Params): PortResult {
    const ref = p.AffectedSystem as CimObjectPath | null | undefined;
    const id = ref ? String(keyValue(ref, 'Name') ?? '') : '';
    if (!this.ctx.port.get(id)) return { returnValue: Code.InvalidParameter, error: `AffectedSystem ${id || '(none)'} is not a VM of this host` };
    return this.ctx.port.remove(id);
  }

  private modifySystemSettings(p: Params): CimMethodResult {
    const [vssd] = instances(p.SystemSettings);
    const vm = vssd ? vmOfInstanceId(this.ctx.port, vssd.get('InstanceID')) : undefined;
    if (!vssd || !vm)
      return this.failed(
        'Modifying System Settings',
        null,
        Code.InvalidParameter,
        'SystemSettings must be a Msvm_VirtualSystemSettingData whose InstanceID names a VM ("Microsoft:<VM id>")',
      );
    return this.outcome('Modifying System Settings', vm.id, this.ctx.port.modify(vm.id, systemSettingsChange(vssd)));
  }

  private changeResources(what: string, p: Params, op: 'add' | 'modify' | 'remove'): CimMethodResult {
    let vm: VmRecord | undefined;
    let devices: DeviceRecord[] | undefined;
    let added: AddedSetting[] = [];
    let userVspIds: string[] = [];
    let networkAdded: { className: string; instanceId: string }[] = [];
    const change: VmDefinitionChange = {};
    const out: CimObjectPath[] = [];
    if (op === 'remove') {
      const refs = (Array.isArray(p.ResourceSettings) ? p.ResourceSettings : []) as CimObjectPath[];
      for (const ref of refs) {
        const id = String(keyValue(ref, 'InstanceID') ?? '');
        vm ??= vmOfInstanceId(this.ctx.port, id);
        if (!vm) break;
        const current = devices ?? [...vm.devices];
        devices = removeUserVsp(vm.id, current, id) ?? removeNetwork(vm.id, current, id) ?? removeStorage(vm.id, current, id);
      }
    } else {
      const settings = instances(p.ResourceSettings);
      if (op === 'add') {
        const target = p.AffectedConfiguration as CimObjectPath | null | undefined;
        vm = target ? vmOfInstanceId(this.ctx.port, keyValue(target, 'InstanceID')) : undefined;
        if (vm) {
          const network = settings.filter(isNetworkSetting);
          ({ devices, added } = addStorage(
            vm.id,
            vm.devices,
            settings.filter((x) => !isNetworkSetting(x) && !isUserVspSetting(x)),
          ));
          const vsps = addUserVsps(vm.id, devices, settings);
          devices = vsps.devices;
          userVspIds = vsps.ids;
          if (network.length) {
            const n = addNetwork(vm.id, devices, network, this.ctx.port.switches?.list() ?? []);
            devices = n.devices;
            networkAdded = n.added;
          }
        }
      } else {
        for (const s of settings) {
          vm ??= vmOfInstanceId(this.ctx.port, s.get('InstanceID'));
          if (!vm) break;
          const compute = computeChange(s);
          if (compute) Object.assign(change, compute);
          else {
            const current = devices ?? [...vm.devices];
            devices = integrationChange(current, s) ?? modifyNetwork(vm.id, current, s) ?? modifyStorage(vm.id, current, s);
          }
          out.push({ className: s.className, keys: [{ name: 'InstanceID', value: String(s.get('InstanceID')) }] });
        }
      }
    }
    if (!vm)
      return this.failed(
        what,
        null,
        Code.InvalidParameter,
        'the settings must belong to a VM of this host (InstanceID or AffectedConfiguration "Microsoft:<VM id>…")',
      );
    if (devices) change.devices = devices;
    const r = this.ctx.port.modify(vm.id, change);
    if (r.returnValue !== Code.Completed || op === 'remove') return this.outcome(what, vm.id, r);
    // Every resulting setting: the controllers, then the drives, then the disks added.
    for (const a of added) {
      const id =
        a.kind === 'controller' ? controllerInstanceId(vm.id, a.bus, a.controller) : a.kind === 'drive' ? driveInstanceId(vm.id, a) : diskInstanceId(vm.id, a);
      out.push({
        className: a.kind === 'disk' ? 'Msvm_StorageAllocationSettingData' : 'Msvm_ResourceAllocationSettingData',
        keys: [{ name: 'InstanceID', value: id }],
      });
    }
    for (const id of userVspIds) out.push({ className: 'Msvm_ResourceAllocationSettingData', keys: [{ name: 'InstanceID', value: id }] });
    for (const a of networkAdded) out.push({ className: a.className, keys: [{ name: 'InstanceID', value: a.instanceId }] });
    return { returnValue: Code.Completed, out: { ResultingResourceSettings: out } };
  }

  private summary(p: Params): CimMethodResult {
    const refs = (Array.isArray(p.SettingData) ? p.SettingData : null) as CimObjectPath[] | null;
    const vms = refs
      ? refs.map((r) => vmOfInstanceId(this.ctx.port, keyValue(r, 'InstanceID'))).filter((v): v is VmRecord => Boolean(v))
      : this.ctx.port.list();
    const wanted = new Set((Array.isArray(p.RequestedInformation) ? p.RequestedInformation : [0, 1, 4, 100, 103, 105, 109]) as number[]);
    const pick = (code: number, v: unknown) => (wanted.has(code) ? v : null);
    const info = vms.map((vm) =>
      this.ctx.schema.createInstance('Msvm_SummaryInformation', {
        Name: pick(0, vm.id),
        ElementName: pick(1, vm.name),
        NumberOfProcessors: pick(4, vm.vpCount),
        EnabledState: pick(100, vm.enabledState),
        // 101: percent of the VM's processors used over the last second; NULL while not running, as Hyper-V.
        ProcessorLoad: pick(101, vm.cpuUsage === null || vm.cpuUsage === undefined ? null : Math.round(vm.cpuUsage)),
        MemoryUsage: pick(103, vm.processId ? BigInt(Math.floor(vm.memoryBytes / (1024 * 1024))) : 0n),
        // 104 Heartbeat: the heartbeat component's OperationalStatus[0] as the worker last pushed it.
        Heartbeat: pick(104, vm.heartbeatStatus ?? null),
        UpTime: pick(105, BigInt(vm.uptimeMs ?? 0)),
        HealthState: pick(109, vm.healthState),
      }),
    );
    return { returnValue: Code.Completed, out: { SummaryInformation: info } };
  }

  private outcome(what: string, vmId: string | null, r: PortResult): CimMethodResult {
    return r.returnValue === Code.Completed ? { returnValue: Code.Completed, out: {} } : this.failed(what, vmId, r.returnValue, r.error ?? 'failed');
  }

  private failed(what: string, vmId: string | null, code: number, description: string): CimMethodResult {
    const job = this.ctx.jobs.start(what, vmId ? this.ctx.systemPath(vmId) : null);
    this.ctx.jobs.finish(job, code, description);
    return { returnValue: Code.JobStarted, out: { Job: job } };
  }
}
