/**
 * The live provider over an embedded VMMS (no workers started): definitions through DefineSystem,
 * Modify/Add/RemoveResourceSettings as the definition holds them and refusals with reasons,
 * GetSummaryInformation, creation/modification/deletion events, and job retention.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CimInstance } from '../../root-partition/management/cim/instance.ts';
import type { CimObjectPath } from '../../root-partition/management/cim/object-path.ts';
import type { CimInstanceEvent } from '../../root-partition/management/cim/provider.ts';
import type { CimObjectManager } from '../../root-partition/management/cim/object-manager.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import { VmmsProvider } from '../../root-partition/management/provider/vmms-provider.ts';
import { startCimService, vmmsPort, type CimService } from '../../root-partition/vmms/cim-binding.ts';
import { Vmms } from '../../root-partition/vmms/vmms.ts';
import { executeWql } from '../../root-partition/management/wql/query-executor.ts';

const schema = createVirtualizationSchema();
let dir: string;
let vmms: Vmms;
let cim: CimService;
let m: CimObjectManager;
let svc: CimObjectPath;
let image: string;
const events: CimInstanceEvent[] = [];

const IDE = '83F8638B-8DCA-4152-9EDA-2CA8B33039B4';
const SCSI = 'D422512D-2BF2-4752-809D-7B82B5FCB1B4';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsv-p-'));
  image = join(dir, 'guest.wasm');
  writeFileSync(image, 'not run here');
  vmms = await Vmms.open({ dataDir: join(dir, 'data') });
  cim = await startCimService(vmms, { cimPort: null, httpsPort: null });
  m = cim.manager;
  m.subscribe((e) => events.push(e));
  svc = m.enumerateInstanceNames('Msvm_VirtualSystemManagementService')[0]!;
});

afterAll(async () => {
  await cim.close();
  await vmms.close();
  rmSync(dir, { recursive: true, force: true });
});

async function jobOf(r: { returnValue: number; out: Record<string, unknown> }): Promise<CimInstance | null> {
  return r.returnValue === 4096 ? m.getInstance(r.out.Job as CimObjectPath) : null;
}

async function define(name: string): Promise<string> {
  const r = await m.invokeMethod(svc, 'DefineSystem', {
    SystemSettings: schema.createInstance('Msvm_VirtualSystemSettingData', { ElementName: name, GuestImagePath: image, AutomaticShutdownAction: 3 }),
    ResourceSettings: [
      schema.createInstance('Msvm_MemorySettingData', { VirtualQuantity: 32n }),
      schema.createInstance('Msvm_ProcessorSettingData', { VirtualQuantity: 2n }),
    ],
  });
  expect(r.returnValue).toBe(0);
  return String((r.out.ResultingSystem as CimObjectPath).keys[1]!.value);
}

describe('VmmsProvider over an embedded VMMS', () => {
  it('DefineSystem makes the VM, its settings and associations, and pushes creations', async () => {
    const id = await define('alpha');
    expect(vmms.get(id)).toMatchObject({ name: 'alpha', memoryBytes: 32 * 1024 * 1024, vpCount: 2, automaticStopAction: 'save' });
    expect(events.filter((e) => e.kind === 'creation').map((e) => e.target.className)).toEqual(['Msvm_ComputerSystem', 'Msvm_VirtualSystemSettingData']);
    const r = executeWql(
      m,
      `ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="Microsoft:${id}"} WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent`,
    );
    // Processor, memory, both IDE controllers, and the four integration-service settings (off: none asked for).
    expect(r.kind === 'instances' && r.rows.map((x) => [x.instance.get('ResourceType'), x.instance.get('EnabledState') ?? null])).toEqual([
      [3, null],
      [4, null],
      [5, null],
      [5, null],
      [1, 3],
      [1, 3],
      [1, 3],
      [1, 3],
    ]);
    const host = executeWql(m, "SELECT * FROM Msvm_ComputerSystem WHERE Description = 'Microsoft Hosting Computer System'");
    expect(r.kind === 'instances' && host.kind === 'instances' && host.rows.length).toBe(1);
  });

  it('adds a SCSI controller, a drive with its disk, changes and removes them; refuses what the definition cannot hold', async () => {
    const id = await define('beta');
    const vssd = { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}` }] };
    const controller = `Microsoft:${id}\\${SCSI}\\0`;
    const add = await m.invokeMethod(svc, 'AddResourceSettings', {
      AffectedConfiguration: vssd,
      ResourceSettings: [
        schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 6 }),
        schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 17, Parent: controller, AddressOnParent: '3' }),
        schema.createInstance('Msvm_StorageAllocationSettingData', { ResourceType: 31, Parent: `${controller}\\3\\D`, HostResource: ['/disks/a.raw'] }),
      ],
    });
    expect(add.returnValue).toBe(0);
    expect((add.out.ResultingResourceSettings as CimObjectPath[]).map((p) => p.keys[0]!.value)).toEqual([
      controller,
      `${controller}\\3\\D`,
      `${controller}\\3\\L`,
    ]);
    expect(vmms.get(id)!.devices).toEqual([{ kind: 'scsi-controller', disks: [{ location: 3, path: '/disks/a.raw' }] }]);

    const modify = await m.invokeMethod(svc, 'ModifyResourceSettings', {
      ResourceSettings: [
        schema.createInstance('Msvm_StorageAllocationSettingData', { InstanceID: `${controller}\\3\\L`, HostResource: ['/disks/b.raw'] }),
        schema.createInstance('Msvm_MemorySettingData', { InstanceID: `Microsoft:${id}\\4764334D-E001-4176-82EE-5594EC9B530E`, VirtualQuantity: 48n }),
      ],
    });
    expect(modify.returnValue).toBe(0);
    expect(vmms.get(id)).toMatchObject({
      memoryBytes: 48 * 1024 * 1024,
      devices: [{ kind: 'scsi-controller', disks: [{ location: 3, path: '/disks/b.raw' }] }],
    });
    const sasd = m.getInstance({ className: 'Msvm_StorageAllocationSettingData', keys: [{ name: 'InstanceID', value: `${controller}\\3\\L` }] });
    expect(sasd.get('HostResource')).toEqual(['/disks/b.raw']);

    const taken = await m.invokeMethod(svc, 'AddResourceSettings', {
      AffectedConfiguration: vssd,
      ResourceSettings: [schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 17, Parent: controller, AddressOnParent: '3' })],
    });
    const refused = await jobOf(taken as never);
    expect([taken.returnValue, refused!.get('JobState'), refused!.get('ErrorCode')]).toEqual([4096, 10, 32773]);
    expect(String(refused!.get('ErrorDescription'))).toBe('drive: SCSI 0:3 is already taken');
    const fifth = await m.invokeMethod(svc, 'AddResourceSettings', {
      AffectedConfiguration: vssd,
      ResourceSettings: [0, 1, 2, 3].map(() => schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 6 })),
    });
    expect(String((await jobOf(fifth as never))!.get('ErrorDescription'))).toBe('SCSI controller: the VM already has 4, the most it can have');

    // Removing the disk leaves the drive empty; removing the drive takes it away.
    const remove = await m.invokeMethod(svc, 'RemoveResourceSettings', {
      ResourceSettings: [{ className: 'Msvm_StorageAllocationSettingData', keys: [{ name: 'InstanceID', value: `${controller}\\3\\L` }] }],
    });
    expect(remove.returnValue).toBe(0);
    expect(vmms.get(id)!.devices).toEqual([{ kind: 'scsi-controller', disks: [{ location: 3 }] }]);
    const drive = await m.invokeMethod(svc, 'RemoveResourceSettings', {
      ResourceSettings: [{ className: 'Msvm_ResourceAllocationSettingData', keys: [{ name: 'InstanceID', value: `${controller}\\3\\D` }] }],
    });
    expect(drive.returnValue).toBe(0);
    expect(vmms.get(id)!.devices).toEqual([{ kind: 'scsi-controller', disks: [] }]);
  });

  it('the Hyper-V sequence: a controller, then a drive whose Parent is its WMI path, then a disk in that drive, each call answering its setting', async () => {
    const id = await define('seq');
    const vssd = { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}` }] };
    const add = async (setting: CimInstance) => {
      const r = await m.invokeMethod(svc, 'AddResourceSettings', { AffectedConfiguration: vssd, ResourceSettings: [setting] });
      if (r.returnValue !== 0) throw new Error(String((await jobOf(r as never))?.get('ErrorDescription')));
      return r.out.ResultingResourceSettings as CimObjectPath[];
    };
    const [controller] = await add(
      schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 6, ResourceSubType: 'Microsoft:Hyper-V:Synthetic SCSI Controller' }),
    );
    expect(controller).toMatchObject({ className: 'Msvm_ResourceAllocationSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}\\${SCSI}\\0` }] });
    // As a WMI client passes it: the parent's full path, with the backslashes of its InstanceID escaped.
    const wmiPath = (p: CimObjectPath) => `\\\\HOST\\root\\virtualization\\v2:${p.className}.InstanceID="${String(p.keys[0]!.value).replace(/\\/g, '\\\\')}"`;
    const [drive] = await add(
      schema.createInstance('Msvm_ResourceAllocationSettingData', {
        ResourceType: 17,
        ResourceSubType: 'Microsoft:Hyper-V:Synthetic Disk Drive',
        Parent: wmiPath(controller!),
        AddressOnParent: '5',
      }),
    );
    expect(drive!.keys[0]!.value).toBe(`Microsoft:${id}\\${SCSI}\\0\\5\\D`);
    expect(vmms.get(id)!.devices).toEqual([{ kind: 'scsi-controller', disks: [{ location: 5 }] }]);
    const drives = executeWql(m, `SELECT * FROM Msvm_ResourceAllocationSettingData WHERE ResourceType = 17`);
    expect(drives.kind === 'instances' && drives.rows.map((x) => x.instance.get('InstanceID'))).toEqual([drive!.keys[0]!.value]);
    const [disk] = await add(
      schema.createInstance('Msvm_StorageAllocationSettingData', { ResourceType: 31, Parent: wmiPath(drive!), HostResource: ['/disks/seq.raw'] }),
    );
    expect(disk).toMatchObject({ className: 'Msvm_StorageAllocationSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}\\${SCSI}\\0\\5\\L` }] });
    expect(vmms.get(id)!.devices).toEqual([{ kind: 'scsi-controller', disks: [{ location: 5, path: '/disks/seq.raw' }] }]);
    await expect(
      add(schema.createInstance('Msvm_StorageAllocationSettingData', { ResourceType: 31, Parent: wmiPath(drive!), HostResource: ['/disks/other.raw'] })),
    ).rejects.toThrow('SCSI 0:5 already holds a disk');
    await expect(
      add(
        schema.createInstance('Msvm_StorageAllocationSettingData', {
          ResourceType: 31,
          Parent: `Microsoft:${id}\\${IDE}\\0\\1\\D`,
          HostResource: ['/disks/x.raw'],
        }),
      ),
    ).rejects.toThrow('there is no drive at IDE 0:1; add the drive (ResourceType 17) first or in the same call');
    await expect(
      add(schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 17, Parent: `Microsoft:${id}\\${SCSI}\\1`, AddressOnParent: '0' })),
    ).rejects.toThrow('the VM has no SCSI controller 1');
  });

  it("integration services: New-VM's settings in DefineSystem, then Disable-/Enable-VMIntegrationService through ModifyResourceSettings", async () => {
    const ic = (cls: string, state: number) => schema.createInstance(cls, { EnabledState: state });
    const r = await m.invokeMethod(svc, 'DefineSystem', {
      SystemSettings: schema.createInstance('Msvm_VirtualSystemSettingData', { ElementName: 'ics', GuestImagePath: image }),
      ResourceSettings: [
        schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 6 }),
        ...['Heartbeat', 'Shutdown', 'TimeSync', 'KvpExchange'].map((n) => ic(`Msvm_${n}ComponentSettingData`, 2)),
      ],
    });
    expect(r.returnValue).toBe(0);
    const id = String((r.out.ResultingSystem as CimObjectPath).keys[1]!.value);
    expect(vmms.get(id)!.devices).toEqual([
      { kind: 'scsi-controller', disks: [] },
      { kind: 'integration-services', heartbeat: true, shutdown: true, timeSync: true, kvp: true },
    ]);
    const settings = executeWql(m, `SELECT * FROM Msvm_ShutdownComponentSettingData`);
    const shutdown = settings.kind === 'instances' ? settings.rows.map((x) => x.instance).find((i) => String(i.get('InstanceID')).includes(id)) : undefined;
    expect([shutdown?.get('InstanceID'), shutdown?.get('EnabledState')]).toEqual([`Microsoft:${id}\\9F8233AC-BE49-4C79-8EE3-E7E1985B2077`, 2]);
    const off = schema.createInstance('Msvm_ShutdownComponentSettingData', { InstanceID: shutdown!.get('InstanceID'), EnabledState: 3 });
    expect((await m.invokeMethod(svc, 'ModifyResourceSettings', { ResourceSettings: [off] })).returnValue).toBe(0);
    expect(vmms.get(id)!.devices[1]).toEqual({ kind: 'integration-services', heartbeat: true, shutdown: false, timeSync: true, kvp: true });
    const bad = await m.invokeMethod(svc, 'ModifyResourceSettings', {
      ResourceSettings: [schema.createInstance('Msvm_ShutdownComponentSettingData', { InstanceID: shutdown!.get('InstanceID'), EnabledState: 9 })],
    });
    expect(String((await jobOf(bad as never))!.get('ErrorDescription'))).toBe(
      'Msvm_ShutdownComponentSettingData: EnabledState must be 2 (enabled) or 3 (disabled), not 9',
    );
  });

  it('ModifySystemSettings renames and pushes modifications; a running-only change is refused with a reason', async () => {
    const id = await define('gamma');
    events.length = 0;
    const r = await m.invokeMethod(svc, 'ModifySystemSettings', {
      SystemSettings: schema.createInstance('Msvm_VirtualSystemSettingData', {
        InstanceID: `Microsoft:${id}`,
        ElementName: 'gamma2',
        AutomaticShutdownAction: 2,
      }),
    });
    expect(r.returnValue).toBe(0);
    expect(vmms.get(id)).toMatchObject({ name: 'gamma2', automaticStopAction: 'turn-off' });
    const cs = events.find((e) => e.kind === 'modification' && e.target.className === 'Msvm_ComputerSystem');
    expect([cs?.previous?.get('ElementName'), cs?.target.get('ElementName')]).toEqual(['gamma', 'gamma2']);
    const dup = await m.invokeMethod(svc, 'ModifySystemSettings', {
      SystemSettings: schema.createInstance('Msvm_VirtualSystemSettingData', { InstanceID: `Microsoft:${id}`, ElementName: 'alpha' }),
    });
    const job = await jobOf(dup as never);
    expect([job!.get('ErrorCode'), job!.get('ErrorDescription')]).toEqual([32773, 'a VM named "alpha" exists']);
  });

  it('GetSummaryInformation answers the requested fields; a job RequestStateChange is 4097; DestroySystem pushes a deletion', async () => {
    const id = await define('delta');
    const s = await m.invokeMethod(svc, 'GetSummaryInformation', {
      SettingData: [{ className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}` }] }],
      RequestedInformation: [0, 1, 4, 100],
    });
    const [info] = s.out.SummaryInformation as CimInstance[];
    expect([info!.get('Name'), info!.get('ElementName'), info!.get('NumberOfProcessors'), info!.get('EnabledState'), info!.get('HealthState')]).toEqual([
      id,
      'delta',
      2,
      3,
      null,
    ]);
    const vm = {
      className: 'Msvm_ComputerSystem',
      keys: [
        { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
        { name: 'Name', value: id },
      ],
    };
    expect((await m.invokeMethod(vm, 'RequestStateChange', { RequestedState: 4 })).returnValue).toBe(4097);
    expect((await m.invokeMethod(vm, 'RequestStateChange', { RequestedState: 3 })).returnValue).toBe(32775);
    events.length = 0;
    expect((await m.invokeMethod(svc, 'DestroySystem', { AffectedSystem: vm })).returnValue).toBe(0);
    expect(events.map((e) => [e.kind, e.target.className, e.target.get('Name')])).toEqual([['deletion', 'Msvm_ComputerSystem', id]]);
  });

  it('keeps a finished job for the retention window, then deletes it with an event', async () => {
    const provider = new VmmsProvider(schema, vmmsPort(vmms), { jobRetentionMs: 50 });
    const seen: CimInstanceEvent[] = [];
    provider.subscribe((e) => seen.push(e));
    const job = provider.jobs.start('Testing', null);
    provider.jobs.finish(job, 32768, 'why it failed');
    expect(provider.getInstance(job)!.get('JobState')).toBe(10);
    await new Promise((r) => setTimeout(r, 120));
    expect(provider.getInstance(job)).toBeNull();
    expect(seen.map((e) => e.kind)).toEqual(['creation', 'modification', 'deletion']);
    provider.dispose();
  });
});
