import { describe, expect, it } from 'vitest';
import { CimError } from '../../root-partition/management/cim/errors.ts';
import { MemoryProvider } from '../../root-partition/management/cim/memory-provider.ts';
import { formatObjectPath, parseObjectPath, sameObjectPath } from '../../root-partition/management/cim/object-path.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import type { CimInstanceEvent } from '../../root-partition/management/cim/provider.ts';
import { createFixture, JOB_ID, SERVICE_PATH, VM2_NAME, VM_NAME, VM_PATH, VSSD_ID, VSSD_PATH } from './fixtures.ts';

async function cimCode(work: () => unknown): Promise<number> {
  try {
    await work();
    return 0;
  } catch (e) {
    if (e instanceof CimError) return e.code;
    throw e;
  }
}

describe('the root/virtualization/v2 schema', () => {
  const schema = createVirtualizationSchema();

  it('has every class the host needs, with the keys Hyper-V uses', () => {
    const keys = (c: string) => schema.requireClass(c).keys.map((k) => k.name);
    expect(keys('Msvm_ComputerSystem')).toEqual(['CreationClassName', 'Name']);
    expect(keys('Msvm_VirtualSystemManagementService')).toEqual(['CreationClassName', 'Name', 'SystemCreationClassName', 'SystemName']);
    for (const c of [
      'Msvm_VirtualSystemSettingData',
      'Msvm_ProcessorSettingData',
      'Msvm_MemorySettingData',
      'Msvm_ResourceAllocationSettingData',
      'Msvm_StorageAllocationSettingData',
      'Msvm_SyntheticEthernetPortSettingData',
      'Msvm_EthernetPortAllocationSettingData',
      'Msvm_ConcreteJob',
    ]) {
      expect(keys(c)).toEqual(['InstanceID']);
    }
    for (const c of ['Msvm_ShutdownComponent', 'Msvm_HeartbeatComponent', 'Msvm_KvpExchangeComponent']) {
      expect(keys(c)).toEqual(['SystemCreationClassName', 'SystemName', 'CreationClassName', 'DeviceID']);
    }
    expect(keys('Msvm_SummaryInformation')).toEqual([]);
    expect(keys('Msvm_SettingsDefineState')).toEqual(['ManagedElement', 'SettingData']);
    expect(keys('Msvm_VirtualSystemSettingDataComponent')).toEqual(['GroupComponent', 'PartComponent']);
    expect(keys('Msvm_SystemDevice')).toEqual(['GroupComponent', 'PartComponent']);
    expect(keys('Msvm_ElementSettingData')).toEqual(['ManagedElement', 'SettingData']);
    expect(keys('Msvm_AffectedJobElement')).toEqual(['AffectedElement', 'AffectingElement']);
  });

  it('resolves inheritance with CLASSORIGIN as wbemcli reads it', () => {
    const cs = schema.requireClass('Msvm_ComputerSystem');
    const origin = (n: string) => cs.properties.find((p) => p.name === n)?.classOrigin;
    expect([origin('CreationClassName'), origin('Name'), origin('EnabledState'), origin('OperationalStatus')]).toEqual([
      'CIM_System',
      'CIM_ManagedSystemElement',
      'CIM_EnabledLogicalElement',
      'CIM_ManagedSystemElement',
    ]);
    expect(cs.methods.find((m) => m.name === 'RequestStateChange')?.classOrigin).toBe('CIM_EnabledLogicalElement');
    expect(schema.isa('Msvm_ComputerSystem', 'cim_system')).toBe(true);
    expect(schema.isa('Msvm_ComputerSystem', 'CIM_SettingData')).toBe(false);
    expect(schema.requireClass('Msvm_SettingsDefineState').association).toBe(true);
    expect(schema.subclassesOf('CIM_ComputerSystem', false)).toEqual(['Msvm_ComputerSystem', 'Msvm_VirtualEthernetSwitch']);
    expect(schema.subclassesOf('CIM_ResourceAllocationSettingData', true)).toContain('Msvm_StorageAllocationSettingData');
  });

  it('publishes the value maps and return codes Hyper-V documents', () => {
    const cs = schema.requireClass('Msvm_ComputerSystem');
    const rsc = cs.methods.find((m) => m.name === 'RequestStateChange')!;
    expect(Object.keys(rsc.returnCodes).map(Number)).toEqual([0, 4096, 4097, 4098, 4099, 32768, 32769, 32773, 32774, 32775]);
    expect(Object.keys(rsc.parameters[0]!.valueMap!).map(Number)).toEqual([2, 3, 4, 6, 9, 10, 11]);
    expect(Object.keys(cs.properties.find((p) => p.name === 'EnabledState')!.valueMap!).map(Number)).toEqual([0, 2, 3, 4, 6, 9, 10, 32773, 32776, 32777]);
    const job = schema.requireClass('Msvm_ConcreteJob');
    expect(Object.keys(job.properties.find((p) => p.name === 'JobState')!.valueMap!).map(Number)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const vsms = schema.requireClass('Msvm_VirtualSystemManagementService');
    expect(vsms.methods.map((m) => m.name)).toEqual(
      expect.arrayContaining([
        'RequestStateChange',
        'DefineSystem',
        'DestroySystem',
        'ModifySystemSettings',
        'AddResourceSettings',
        'ModifyResourceSettings',
        'RemoveResourceSettings',
        'GetSummaryInformation',
      ]),
    );
    const summary = vsms.methods.find((m) => m.name === 'GetSummaryInformation')!;
    expect(Object.keys(summary.parameters.find((p) => p.name === 'RequestedInformation')!.valueMap!).map(Number)).toEqual([
      0, 1, 4, 100, 101, 103, 104, 105, 109,
    ]);
    expect(
      vsms.methods.find((m) => m.name === 'DefineSystem')!.parameters.map((p) => [p.name, p.type, p.isArray ?? false, p.embeddedInstance ?? null]),
    ).toEqual([
      ['SystemSettings', 'string', false, 'CIM_VirtualSystemSettingData'],
      ['ResourceSettings', 'string', true, 'CIM_ResourceAllocationSettingData'],
      ['ReferenceConfiguration', 'reference', false, null],
      ['ResultingSystem', 'reference', false, null],
      ['Job', 'reference', false, null],
    ]);
    const hb = schema.requireClass('Msvm_HeartbeatComponent');
    expect(Object.keys(hb.properties.find((p) => p.name === 'OperationalStatus')!.valueMap!).map(Number)).toEqual([2, 3, 12, 13, 15]);
  });

  it('types instance values from the declarations and rejects bad ones', async () => {
    const i = schema.createInstance('Msvm_MemorySettingData', { InstanceID: 'm', VirtualQuantity: '1024', DynamicMemoryEnabled: 'true', Weight: 5 });
    expect([i.get('VirtualQuantity'), i.get('DynamicMemoryEnabled'), i.get('Weight'), i.get('Limit')]).toEqual([1024n, true, 5, null]);
    expect(await cimCode(() => schema.createInstance('Msvm_MemorySettingData', { Weight: -1 }))).toBe(13);
    expect(await cimCode(() => schema.createInstance('Msvm_MemorySettingData', { Weight: 'abc' }))).toBe(13);
    expect(await cimCode(() => schema.createInstance('Msvm_MemorySettingData', { Bogus: 1 }))).toBe(12);
    expect(await cimCode(() => schema.createInstance('Msvm_ComputerSystem', { TimeOfLastStateChange: '2024-01-01T00:00:00Z' }))).toBe(13);
    expect(await cimCode(() => schema.createInstance('Msvm_Nope', {}))).toBe(5);
  });
});

describe('object paths', () => {
  it('parses and formats the WMI text form with namespace, host and quoting', () => {
    const p = parseObjectPath(`//HOST1/root/virtualization/v2:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name='a\\'b:c'`);
    expect(p).toEqual({
      host: 'HOST1',
      namespace: 'root/virtualization/v2',
      className: 'Msvm_ComputerSystem',
      keys: [
        { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
        { name: 'Name', value: "a'b:c" },
      ],
    });
    expect(formatObjectPath(p)).toBe(`//HOST1/root/virtualization/v2:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="a'b:c"`);
    expect(parseObjectPath('C.N=12,B=true')).toEqual({
      className: 'C',
      keys: [
        { name: 'N', value: 12 },
        { name: 'B', value: true },
      ],
    });
    expect(() => parseObjectPath('C.N=')).toThrow(CimError);
    expect(() => parseObjectPath('C.N="open')).toThrow(CimError);
    expect(() => parseObjectPath('1C')).toThrow(CimError);
  });

  it('compares class and key names case-insensitively and values by text', () => {
    expect(
      sameObjectPath(
        parseObjectPath('msvm_computersystem.name="x",CREATIONCLASSNAME="C"'),
        parseObjectPath('Msvm_ComputerSystem.CreationClassName="C",Name="x"'),
      ),
    ).toBe(true);
    expect(sameObjectPath(parseObjectPath('C.Name=123'), parseObjectPath('C.Name="123"'))).toBe(true);
    expect(sameObjectPath(parseObjectPath('C.Name="X"'), parseObjectPath('C.Name="x"'))).toBe(false);
  });
});

describe('the object manager over the in-memory provider', () => {
  it('enumerates with subclasses, and DeepInheritance=FALSE drops subclass properties', () => {
    const { manager } = createFixture();
    expect(manager.enumerateInstanceNames('CIM_ComputerSystem').map((p) => p.keys[1]!.value)).toEqual(['HOST1', VM_NAME, VM2_NAME]);
    const shallow = manager.enumerateInstances('CIM_ResourceAllocationSettingData', { deepInheritance: false });
    expect(shallow.every((i) => i.property('DynamicMemoryEnabled') === undefined)).toBe(true);
    expect(manager.enumerateInstances('CIM_ResourceAllocationSettingData').some((i) => i.property('DynamicMemoryEnabled') !== undefined)).toBe(true);
  });

  it('gets instances with typed keys and reports the documented errors', async () => {
    const { manager } = createFixture();
    expect(manager.getInstance(VM_PATH).get('ElementName')).toBe('web & db');
    expect(await cimCode(() => manager.getInstance({ ...VM_PATH, keys: [VM_PATH.keys[0]!, { name: 'Name', value: 'nope' }] }))).toBe(6);
    expect(await cimCode(() => manager.getInstance({ ...VM_PATH, keys: [VM_PATH.keys[0]!] }))).toBe(4);
    expect(await cimCode(() => manager.getInstance({ className: 'Msvm_Nope', keys: [] }))).toBe(5);
    expect(await cimCode(() => manager.associators(VM_PATH, { assocClass: 'Msvm_Nope' }))).toBe(5);
  });

  it('computes associations generically from association instances', () => {
    const { manager } = createFixture();
    expect(manager.associators(VM_PATH, { assocClass: 'CIM_ElementSettingData' })).toEqual([]);
    expect(manager.associators(VM_PATH, { assocClass: 'Msvm_SettingsDefineState' }).map((i) => i.get('InstanceID'))).toEqual([VSSD_ID]);
    expect(manager.associators(VSSD_PATH, { resultClass: 'CIM_ComputerSystem' }).map((i) => i.get('Name'))).toEqual([VM_NAME]);
    expect(manager.associators(VSSD_PATH, { resultClass: 'Msvm_MemorySettingData' }).map((i) => i.get('VirtualQuantity'))).toEqual([1024n]);
    expect(manager.references(VSSD_PATH, { role: 'GroupComponent' }).map((i) => i.className)).toEqual([
      'Msvm_VirtualSystemSettingDataComponent',
      'Msvm_VirtualSystemSettingDataComponent',
    ]);
  });

  it('validates method calls: unknown method 17, bad parameter 4, missing target 6, class path 4', async () => {
    const { manager, calls } = createFixture();
    expect(await cimCode(() => manager.invokeMethod(VM_PATH, 'Explode', {}))).toBe(17);
    expect(await cimCode(() => manager.invokeMethod(VM_PATH, 'RequestStateChange', { Bogus: 1 }))).toBe(4);
    expect(await cimCode(() => manager.invokeMethod(VM_PATH, 'RequestStateChange', { RequestedState: 'two' }))).toBe(4);
    expect(await cimCode(() => manager.invokeMethod(VM_PATH, 'RequestStateChange', { RequestedState: 70000 }))).toBe(4);
    expect(await cimCode(() => manager.invokeMethod(VM_PATH, 'RequestStateChange', { Job: 'x' }))).toBe(4);
    expect(await cimCode(() => manager.invokeMethod({ ...VM_PATH, keys: [VM_PATH.keys[0]!, { name: 'Name', value: 'gone' }] }, 'RequestStateChange', {}))).toBe(
      6,
    );
    expect(await cimCode(() => manager.invokeMethod({ className: 'Msvm_ComputerSystem', keys: [] }, 'RequestStateChange', {}))).toBe(4);
    expect(await cimCode(() => manager.invokeMethod(SERVICE_PATH, 'AddResourceSettings', {}))).toBe(16);
    const r = await manager.invokeMethod(VM_PATH, 'requeststatechange', { requestedstate: '2', TimeoutPeriod: '00000000000100.000000:000' });
    expect(r.returnValue).toBe(4096);
    expect(r.out.Job).toEqual({ className: 'Msvm_ConcreteJob', keys: [{ name: 'InstanceID', value: JOB_ID }] });
    expect(calls.get('RequestStateChange')).toEqual({ RequestedState: 2, TimeoutPeriod: '00000000000100.000000:000' });
    expect((await manager.invokeMethod(VM_PATH, 'RequestStateChange', { RequestedState: 2 })).returnValue).toBe(32775);
  });
});

describe('the in-memory provider', () => {
  it('emits creation, modification (with previous) and deletion events and refuses duplicate keys', async () => {
    const schema = createVirtualizationSchema();
    const provider = new MemoryProvider(schema);
    const events: CimInstanceEvent[] = [];
    const stop = provider.subscribe((e) => events.push(e));
    const job = schema.createInstance('Msvm_ConcreteJob', { InstanceID: 'j1', JobState: 4 });
    const path = provider.add(job);
    provider.update(job.with({ JobState: 7 }));
    expect(await cimCode(() => provider.add(job))).toBe(11);
    expect(provider.remove(path)).toBe(true);
    expect(provider.remove(path)).toBe(false);
    stop();
    provider.add(job);
    expect(events.map((e) => [e.kind, e.target.get('JobState'), e.previous?.get('JobState') ?? null])).toEqual([
      ['creation', 4, null],
      ['modification', 7, 4],
      ['deletion', 7, null],
    ]);
  });
});
