/**
 * Msvm_VirtualSystemSnapshotService over the VMMS's checkpoints (Microsoft Docs): the
 * service instance, each checkpoint as a VSSD of VirtualSystemType
 * "Microsoft:Hyper-V:Snapshot:Realized" (InstanceID "Microsoft:<checkpoint id>"), the tree as
 * associations — Msvm_SnapshotOfVirtualSystem (VM → each snapshot), Msvm_ParentChildSettingData
 * (parent snapshot → child), Msvm_MostCurrentSnapshotInBranch (VM → the snapshot it runs on
 * from) — and CreateSnapshot / ApplySnapshot / DestroySnapshot / DestroySnapshotTree as jobs.
 * A reference that names nothing answers 32773 at once; a change that fails ends its job in
 * Exception with the Hyper-V code and the reason.
 */
import { randomUUID } from 'node:crypto';
import { CimInstance } from '../cim/instance.ts';
import { keyValue, type CimObjectPath } from '../cim/object-path.ts';
import type { CimMethodResult } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import type { JobTable } from './job-table.ts';
import { dmtfDatetime, SERVICE_NAME } from './vm-instances.ts';
import type { SnapshotPort, SnapshotRecord, VmmsPort, VmRecord } from './vmms-port.ts';

export const SNAPSHOT_SERVICE_CLASS = 'Msvm_VirtualSystemSnapshotService';
export const SNAPSHOT_SYSTEM_TYPE = 'Microsoft:Hyper-V:Snapshot:Realized';
const Code = { JobStarted: 4096, NotSupported: 32770, InvalidParameter: 32773 } as const;
/** The classes this file serves, lower-cased. */
export const SNAPSHOT_CLASSES = new Set([
  'msvm_virtualsystemsnapshotservice',
  'msvm_snapshotofvirtualsystem',
  'msvm_parentchildsettingdata',
  'msvm_mostcurrentsnapshotinbranch',
]);

type Params = Readonly<Record<string, CimValue>>;

export interface SnapshotContext {
  readonly schema: CimSchema;
  readonly port: VmmsPort;
  readonly jobs: JobTable;
  systemPath(vmId: string): CimObjectPath;
}

const vssdPath = (instanceId: string): CimObjectPath => ({ className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: instanceId }] });
const snapshotInstanceId = (id: string) => `Microsoft:${id}`;

export class SnapshotService {
  constructor(private readonly ctx: SnapshotContext) {}

  private get snapshots(): SnapshotPort | null {
    return this.ctx.port.snapshots ?? null;
  }

  serviceInstance(): CimInstance {
    return this.ctx.schema.createInstance(SNAPSHOT_SERVICE_CLASS, {
      CreationClassName: SNAPSHOT_SERVICE_CLASS,
      Name: SERVICE_NAME,
      SystemCreationClassName: 'Msvm_ComputerSystem',
      SystemName: this.ctx.port.hostName,
      ElementName: 'Virtual System Snapshot Service',
      Caption: 'Hyper-V Virtual System Snapshot Service',
      EnabledState: 2,
      HealthState: 5,
      OperationalStatus: [2],
    });
  }

  /** Every snapshot of every VM, with its VM. */
  private all(): { vm: VmRecord; s: SnapshotRecord }[] {
    const port = this.snapshots;
    if (!port) return [];
    return this.ctx.port.list().flatMap((vm) => port.list(vm.id).map((s) => ({ vm, s })));
  }

  /** The snapshot VSSDs (served with the VMs' own under Msvm_VirtualSystemSettingData). */
  settings(): CimInstance[] {
    return this.all().map(({ vm, s }) =>
      this.ctx.schema.createInstance('Msvm_VirtualSystemSettingData', {
        InstanceID: snapshotInstanceId(s.id),
        ElementName: s.name,
        Caption: 'Virtual Machine Snapshot Settings',
        VirtualSystemIdentifier: vm.id,
        ConfigurationID: vm.id,
        VirtualSystemType: SNAPSHOT_SYSTEM_TYPE,
        VirtualSystemSubType: 'Microsoft:Hyper-V:SubType:1',
        Version: '1',
        CreationTime: dmtfDatetime(new Date(s.createdAt)),
        IsSaved: s.hasSavedState,
        Parent: s.parentId ? `Msvm_VirtualSystemSettingData.InstanceID="${snapshotInstanceId(s.parentId)}"` : null,
        GuestImagePath: s.imagePath,
        GuestCommandLine: s.cmdline,
      }),
    );
  }

  /** Instances of one of SNAPSHOT_CLASSES. */
  enumerate(lowerClass: string): CimInstance[] {
    const { schema } = this.ctx;
    switch (lowerClass) {
      case 'msvm_virtualsystemsnapshotservice':
        return this.snapshots ? [this.serviceInstance()] : [];
      case 'msvm_snapshotofvirtualsystem':
        return this.all().map(({ vm, s }) =>
          schema.createInstance('Msvm_SnapshotOfVirtualSystem', {
            ManagedElement: this.ctx.systemPath(vm.id),
            SameElement: vssdPath(snapshotInstanceId(s.id)),
          }),
        );
      case 'msvm_parentchildsettingdata':
        return this.all()
          .filter(({ s }) => s.parentId)
          .map(({ s }) =>
            schema.createInstance('Msvm_ParentChildSettingData', {
              Parent: vssdPath(snapshotInstanceId(s.parentId!)),
              Child: vssdPath(snapshotInstanceId(s.id)),
            }),
          );
      case 'msvm_mostcurrentsnapshotinbranch':
        return this.all()
          .filter(({ s }) => s.current)
          .map(({ vm, s }) =>
            schema.createInstance('Msvm_MostCurrentSnapshotInBranch', {
              Antecedent: this.ctx.systemPath(vm.id),
              Dependent: vssdPath(snapshotInstanceId(s.id)),
            }),
          );
    }
    return [];
  }

  async invoke(method: string, p: Params): Promise<CimMethodResult> {
    if (!this.snapshots) return { returnValue: Code.NotSupported, out: {} };
    switch (method.toLowerCase()) {
      case 'createsnapshot':
        return this.create(p);
      case 'applysnapshot':
        return this.run('Applying Snapshot', p.Snapshot, (s, port) => port.apply(s.vmId, s.id));
      case 'destroysnapshot':
        return this.run('Deleting Snapshot', p.AffectedSnapshot, (s, port) => port.destroy(s.vmId, s.id, false));
      case 'destroysnapshottree':
        return this.run('Deleting Snapshot Subtree', p.SnapshotSettingData, (s, port) => port.destroy(s.vmId, s.id, true));
    }
    return { returnValue: Code.NotSupported, out: {} };
  }

  private create(p: Params): CimMethodResult {
    const vmId = String(keyValue(p.AffectedSystem as CimObjectPath, 'Name') ?? '').toLowerCase();
    const vm = p.AffectedSystem && typeof p.AffectedSystem === 'object' ? this.ctx.port.get(vmId) : undefined;
    if (!vm) return { returnValue: Code.InvalidParameter, out: {} };
    // 2 Full (with saved state when running), 3 Disk: a disk-only snapshot of a running VM is not offered.
    const type = p.SnapshotType ?? 2;
    if (type !== 2 && type !== 3) return { returnValue: Code.InvalidParameter, out: {} };
    if (type === 3 && vm.enabledState !== 3) return { returnValue: Code.NotSupported, out: {} };
    const settings =
      p.SnapshotSettings instanceof CimInstance
        ? p.SnapshotSettings
        : Array.isArray(p.SnapshotSettings)
          ? p.SnapshotSettings.find((x): x is CimInstance => x instanceof CimInstance)
          : undefined;
    const name = settings?.get('ElementName');
    const id = randomUUID();
    const job = this.ctx.jobs.start('Creating Snapshot', this.ctx.systemPath(vm.id));
    void this.snapshots!.create(vm.id, id, typeof name === 'string' && name !== '' ? name : undefined).then(
      (r) => this.ctx.jobs.finish(job, r.returnValue, r.error),
      (e: Error) => this.ctx.jobs.finish(job, 32768, e.message),
    );
    return { returnValue: Code.JobStarted, out: { Job: job, ResultingSnapshot: vssdPath(snapshotInstanceId(id)) } };
  }

  private run(
    what: string,
    ref: CimValue | undefined,
    op: (s: SnapshotRecord, port: SnapshotPort) => Promise<{ returnValue: number; error?: string }>,
  ): CimMethodResult {
    const instanceId =
      ref && typeof ref === 'object' && !Array.isArray(ref) && 'className' in ref ? String(keyValue(ref as CimObjectPath, 'InstanceID') ?? '') : '';
    const found = this.all().find(({ s }) => snapshotInstanceId(s.id).toLowerCase() === instanceId.toLowerCase());
    if (!found) return { returnValue: Code.InvalidParameter, out: {} };
    const job = this.ctx.jobs.start(what, this.ctx.systemPath(found.vm.id));
    void op(found.s, this.snapshots!).then(
      (r) => this.ctx.jobs.finish(job, r.returnValue, r.error),
      (e: Error) => this.ctx.jobs.finish(job, 32768, e.message),
    );
    return { returnValue: Code.JobStarted, out: { Job: job } };
  }
}
