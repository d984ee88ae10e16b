/**
 * Msvm_VirtualSystemMigrationService over the VMMS's live migration (Move-VM): the service
 * instance, and MigrateVirtualSystemToHost(ComputerSystem, DestinationHost,
 * MigrationSettingData) as a job whose PercentComplete follows the migration and whose JobStatus
 * names its phase (pre-copy, switch-over, committing). The job can be cancelled
 * (RequestStateChange 4 or 5 on it) until the commit point; it then ends Terminated and the VM
 * runs on here. A failed move ends the job in Exception with the reason in ErrorDescription.
 *
 * DestinationHost is the destination's migration port, "host:port" (tsvisor has no fixed
 * migration port). MigrationType 32768 (VirtualSystem: the disks stay where they are, both hosts
 * reach them) and 32771 (VirtualSystemAndStorage: the drives are copied to the destination while
 * the VM runs) are built; 32769 Storage and 32770 Staged answer 32770 Not Supported. With 32771,
 * NewResourceSettingData holds a Msvm_StorageAllocationSettingData per drive whose HostResource
 * is its new path, as Move-VM -IncludeStorage -DestinationStoragePath builds them: the copies
 * keep their file names, so every new path must lie in one directory (it must be one of the
 * destination's storage roots).
 */
import { dirname, posix } from 'node:path';
import { CimInstance } from '../cim/instance.ts';
import { keyValue, type CimObjectPath } from '../cim/object-path.ts';
import type { CimMethodResult } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import type { JobTable } from './job-table.ts';
import { SERVICE_NAME } from './vm-instances.ts';
import type { MigrationPort, VmmsPort } from './vmms-port.ts';

export const MIGRATION_SERVICE_CLASS = 'Msvm_VirtualSystemMigrationService';
/** The classes this file serves, lower-cased. */
export const MIGRATION_CLASSES = new Set(['msvm_virtualsystemmigrationservice']);

const Code = { Failed: 32768, NotSupported: 32770, InvalidParameter: 32773, InvalidState: 32775, JobStarted: 4096 } as const;
const MigrationType = { VirtualSystem: 32768, VirtualSystemAndStorage: 32771 } as const;
/** EnabledState 2: only a running VM is moved live. */
const RUNNING = 2;

const PHASE_STATUS: Record<string, string> = {
  'pre-copy': 'Copying memory while the VM runs (pre-copy)',
  'switch-over': 'VM paused: sending the last memory and its state (switch-over)',
  committing: 'The destination restored the VM: committing',
  completed: 'The VM runs on the destination',
};

type Params = Readonly<Record<string, CimValue>>;

/**
 * The one directory the new drive paths of a storage move lie in (NewResourceSettingData:
 * Msvm_StorageAllocationSettingData with HostResource = [new path]); null when there are none,
 * another class, a relative path, or paths in several directories.
 */
function storageDirectory(resources: CimValue | undefined): string | null {
  const list = Array.isArray(resources) ? resources : resources === undefined || resources === null ? [] : [resources];
  const dirs = new Set<string>();
  for (const r of list) {
    if (!(r instanceof CimInstance) || r.className.toLowerCase() !== 'msvm_storageallocationsettingdata') return null;
    const host = r.get('HostResource');
    const path = Array.isArray(host) ? host[0] : host;
    if (typeof path !== 'string' || !path.startsWith('/') || posix.normalize(path) !== path) return null;
    dirs.add(dirname(path));
  }
  return dirs.size === 1 ? [...dirs][0]! : null;
}

export interface MigrationContext {
  readonly schema: CimSchema;
  readonly port: VmmsPort;
  readonly jobs: JobTable;
  systemPath(vmId: string): CimObjectPath;
}

export class MigrationService {
  constructor(private readonly ctx: MigrationContext) {}

  private get migration(): MigrationPort | null {
    return this.ctx.port.migration ?? null;
  }

  enumerate(lowerClass: string): CimInstance[] {
    if (lowerClass !== 'msvm_virtualsystemmigrationservice' || !this.migration) return [];
    return [
      this.ctx.schema.createInstance(MIGRATION_SERVICE_CLASS, {
        CreationClassName: MIGRATION_SERVICE_CLASS,
        Name: SERVICE_NAME,
        SystemCreationClassName: 'Msvm_ComputerSystem',
        SystemName: this.ctx.port.hostName,
        ElementName: 'Virtual System Migration Service',
        Caption: 'Hyper-V Virtual System Migration Service',
        EnabledState: 2,
        HealthState: 5,
        OperationalStatus: [2],
      }),
    ];
  }

  invoke(method: string, p: Params): CimMethodResult {
    const migration = this.migration;
    if (!migration || method.toLowerCase() !== 'migratevirtualsystemtohost') return { returnValue: Code.NotSupported, out: {} };
    const ref = p.ComputerSystem;
    const vmId =
      ref && typeof ref === 'object' && !Array.isArray(ref) && 'className' in ref ? String(keyValue(ref as CimObjectPath, 'Name') ?? '').toLowerCase() : '';
    const vm = vmId ? this.ctx.port.get(vmId) : undefined;
    if (!vm) return { returnValue: Code.InvalidParameter, out: {} };
    const destination = typeof p.DestinationHost === 'string' ? p.DestinationHost.trim() : '';
    if (!destination) return { returnValue: Code.InvalidParameter, out: {} };
    const settings = p.MigrationSettingData;
    if (settings !== undefined && settings !== null && !(settings instanceof CimInstance)) return { returnValue: Code.InvalidParameter, out: {} };
    const type = settings?.get('MigrationType') ?? MigrationType.VirtualSystem;
    if (type !== MigrationType.VirtualSystem && type !== MigrationType.VirtualSystemAndStorage) return { returnValue: Code.NotSupported, out: {} };
    const resources = p.NewResourceSettingData;
    const hasResources = Array.isArray(resources) ? resources.length > 0 : resources !== undefined && resources !== null;
    let storage: string | undefined;
    if (type === MigrationType.VirtualSystem && hasResources) return { returnValue: Code.NotSupported, out: {} };
    if (type === MigrationType.VirtualSystemAndStorage) {
      const dir = storageDirectory(resources);
      if (dir === null) return { returnValue: Code.InvalidParameter, out: {} };
      storage = dir;
    }
    if (vm.enabledState !== RUNNING) return { returnValue: Code.InvalidState, out: {} };

    let cancelled = false;
    const job = this.ctx.jobs.start('Migrating Virtual Machine', this.ctx.systemPath(vm.id), () => {
      cancelled = true;
      migration.cancel(vm.id);
    });
    void migration
      .move(vm.id, destination, (progress) => this.ctx.jobs.progress(job, progress.percentComplete, PHASE_STATUS[progress.phase] ?? progress.phase), storage)
      .then(
        (r) => {
          if (r.returnValue !== 0 && (r.cancelled || cancelled)) this.ctx.jobs.terminated(job, r.error ?? 'the migration was cancelled; the VM runs on here');
          else this.ctx.jobs.finish(job, r.returnValue, r.error);
        },
        (e: Error) => this.ctx.jobs.finish(job, Code.Failed, e.message),
      );
    return { returnValue: Code.JobStarted, out: { Job: job } };
  }
}
