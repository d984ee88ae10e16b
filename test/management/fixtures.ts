/**
 * A small Hyper-V-like object set over the in-memory provider, with the names and keys used in
 * the captured wbemcli exchanges: VM 6D1F3A2B-…, host HOST1, service "vmms", one VSSD.
 */
import type { CimInstance } from '../../root-partition/management/cim/instance.ts';
import { MemoryProvider } from '../../root-partition/management/cim/memory-provider.ts';
import { CimObjectManager } from '../../root-partition/management/cim/object-manager.ts';
import type { CimObjectPath } from '../../root-partition/management/cim/object-path.ts';
import { createVirtualizationSchema, type CimSchema } from '../../root-partition/management/cim/schema.ts';

export const VM_NAME = '6D1F3A2B-0000-4C5E-9A11-2B3C4D5E6F70';
export const VM2_NAME = '0A0B0C0D-1111-2222-3333-444455556666';
export const VSSD_ID = `Microsoft:${VM_NAME}`;
export const JOB_ID = '7F2A0C11-1111-4222-8333-944455566677';

export const VM_PATH: CimObjectPath = {
  className: 'Msvm_ComputerSystem',
  keys: [
    { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
    { name: 'Name', value: VM_NAME },
  ],
};
export const VSSD_PATH: CimObjectPath = { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: VSSD_ID }] };
export const SERVICE_PATH: CimObjectPath = {
  className: 'Msvm_VirtualSystemManagementService',
  keys: [
    { name: 'SystemCreationClassName', value: 'Msvm_ComputerSystem' },
    { name: 'SystemName', value: 'HOST1' },
    { name: 'CreationClassName', value: 'Msvm_VirtualSystemManagementService' },
    { name: 'Name', value: 'vmms' },
  ],
};

export interface Fixture {
  readonly schema: CimSchema;
  readonly provider: MemoryProvider;
  readonly manager: CimObjectManager;
  /** The instance arguments the last method call received, by method name. */
  readonly calls: Map<string, Readonly<Record<string, unknown>>>;
}

export function createFixture(): Fixture {
  const schema = createVirtualizationSchema();
  const provider = new MemoryProvider(schema);
  const manager = new CimObjectManager(schema, provider);
  const calls = new Map<string, Readonly<Record<string, unknown>>>();
  const add = (cls: string, values: Record<string, unknown>): CimInstance => {
    const i = schema.createInstance(cls, values);
    provider.add(i);
    return i;
  };
  add('Msvm_ComputerSystem', {
    CreationClassName: 'Msvm_ComputerSystem',
    Name: 'HOST1',
    ElementName: 'HOST1',
    Description: 'Microsoft Hosting Computer System',
    EnabledState: 2,
    OperationalStatus: [2],
  });
  add('Msvm_ComputerSystem', {
    CreationClassName: 'Msvm_ComputerSystem',
    Name: VM_NAME,
    ElementName: 'web & db',
    Description: 'Microsoft Virtual Machine',
    EnabledState: 3,
    OperationalStatus: [2],
    HealthState: 5,
    TimeOfLastStateChange: '20240101120000.000000+000',
    OnTimeInMilliseconds: 0n,
  });
  add('Msvm_ComputerSystem', {
    CreationClassName: 'Msvm_ComputerSystem',
    Name: VM2_NAME,
    ElementName: 'build',
    Description: 'Microsoft Virtual Machine',
    EnabledState: 2,
    OperationalStatus: [2, 32768],
    ProcessID: 4242,
  });
  add('Msvm_VirtualSystemManagementService', {
    SystemCreationClassName: 'Msvm_ComputerSystem',
    SystemName: 'HOST1',
    CreationClassName: 'Msvm_VirtualSystemManagementService',
    Name: 'vmms',
    ElementName: 'Virtual System Management Service',
  });
  add('Msvm_VirtualSystemSettingData', {
    InstanceID: VSSD_ID,
    ElementName: 'web',
    VirtualSystemType: 'Microsoft:Hyper-V:System:Realized',
    VirtualSystemIdentifier: VM_NAME,
    AutomaticStartupAction: 2,
  });
  const proc = add('Msvm_ProcessorSettingData', {
    InstanceID: `Microsoft:${VM_NAME}\\B637F346-6A0E-4DEC-AF52-BD70CB80A21D\\0`,
    ElementName: 'Processor',
    ResourceType: 3,
    ResourceSubType: 'Microsoft:Hyper-V:Processor',
    VirtualQuantity: 2n,
    Reservation: 0n,
    Limit: 100000n,
    Weight: 100,
  });
  const mem = add('Msvm_MemorySettingData', {
    InstanceID: `Microsoft:${VM_NAME}\\4764334D-E001-4176-82EE-5594EC9B530E`,
    ElementName: 'Memory',
    ResourceType: 4,
    ResourceSubType: 'Microsoft:Hyper-V:Memory',
    VirtualQuantity: 1024n,
    DynamicMemoryEnabled: false,
  });
  add('Msvm_ProcessorSettingData', {
    InstanceID: 'Microsoft:Definition\\B637F346-6A0E-4DEC-AF52-BD70CB80A21D\\Maximum',
    ResourceType: 3,
    VirtualQuantity: 64n,
  });
  add('Msvm_SettingsDefineState', { ManagedElement: VM_PATH, SettingData: VSSD_PATH });
  for (const part of [proc, mem]) {
    add('Msvm_VirtualSystemSettingDataComponent', { GroupComponent: VSSD_PATH, PartComponent: schema.pathOf(part) });
  }
  const heartbeat = add('Msvm_HeartbeatComponent', {
    SystemCreationClassName: 'Msvm_ComputerSystem',
    SystemName: VM_NAME,
    CreationClassName: 'Msvm_HeartbeatComponent',
    DeviceID: 'Microsoft:6D1F3A2B\\Heartbeat',
    OperationalStatus: [12],
    EnabledState: 2,
  });
  add('Msvm_SystemDevice', { GroupComponent: VM_PATH, PartComponent: schema.pathOf(heartbeat) });

  const jobIds = [JOB_ID, '8A3B1D22-2222-4333-9444-A55566677788'];
  provider.onMethod('Msvm_ComputerSystem', 'RequestStateChange', (path, params) => {
    calls.set('RequestStateChange', params);
    const vm = provider.getInstance(path)!;
    const requested = params.RequestedState as number;
    // Msvm_ComputerSystem.RequestStateChange: 32775 invalid state; a VM already in the state cannot go there.
    if (vm.get('EnabledState') === requested) return { returnValue: 32775, out: {} as Record<string, CimObjectPath> };
    provider.update(vm.with({ EnabledState: requested === 2 ? 2 : requested === 6 ? 6 : requested === 9 ? 9 : 3 }));
    const job = schema.createInstance('Msvm_ConcreteJob', { InstanceID: jobIds.shift() ?? 'job', JobState: 7, PercentComplete: 100, ErrorCode: 0 });
    provider.add(job);
    add('Msvm_AffectedJobElement', { AffectedElement: path, AffectingElement: schema.pathOf(job) });
    return { returnValue: 4096, out: { Job: schema.pathOf(job) } };
  });
  provider.onMethod('Msvm_VirtualSystemManagementService', 'DestroySystem', (_path, params) => {
    calls.set('DestroySystem', params);
    const target = params.AffectedSystem as CimObjectPath;
    return { returnValue: provider.remove(schema.normalizePath(target)) ? 0 : 32773, out: {} };
  });
  provider.onMethod('Msvm_VirtualSystemManagementService', 'DefineSystem', (_path, params) => {
    calls.set('DefineSystem', params);
    const settings = params.SystemSettings as CimInstance | null;
    const vm = add('Msvm_ComputerSystem', {
      CreationClassName: 'Msvm_ComputerSystem',
      Name: 'B0B0B0B0-0000-0000-0000-000000000001',
      ElementName: settings?.get('ElementName') ?? 'New Virtual Machine',
      EnabledState: 3,
    });
    return { returnValue: 0, out: { ResultingSystem: schema.pathOf(vm) } };
  });
  provider.onMethod('Msvm_VirtualSystemManagementService', 'GetSummaryInformation', (_path, params) => {
    calls.set('GetSummaryInformation', params);
    const summary = schema.createInstance('Msvm_SummaryInformation', { Name: VM_NAME });
    return { returnValue: 0, out: { SummaryInformation: [summary] } };
  });
  return { schema, provider, manager, calls };
}
