/**
 * What the service's parts (definitions, state requests, worker attachment, live migration,
 * automatic actions) share of `Vmms`: the table of VMs, the definitions on disk, the events and
 * the one place a VM's state changes. `Vmms` builds it once; each part reads it, none owns it.
 */
import type { EventEmitter } from 'node:events';
import type { DataDir } from '../host/data-dir.ts';
import type { Logger } from '../host/log.ts';
import type { StorageRoots } from '../host/storage-roots.ts';
import type { DefinitionStore } from './definition-store.ts';
import type { HostCpuScheduler } from './host-cpu-scheduler.ts';
import type { HostLimits } from './host-resources.ts';
import type { EnabledStateValue, HealthStateValue } from './lifecycle.ts';
import type { VmDefinition } from './vm-definition.ts';
import type { VmEntry } from './vm-entry.ts';
import type { WorkerOperations } from './worker-operations.ts';

export interface VmmsContext {
  readonly paths: DataDir;
  readonly log: Logger;
  readonly limits: HostLimits;
  readonly roots: StorageRoots | null;
  readonly events: EventEmitter;
  readonly store: DefinitionStore;
  readonly vms: Map<string, VmEntry>;
  readonly ops: WorkerOperations;
  readonly cpu: HostCpuScheduler;
  /** The service is stopping: no new request starts. */
  closing(): boolean;
  find(idOrName: string): VmEntry | undefined;
  /** The VM, or VMMS_ERR_NO_SUCH_VM. */
  entry(idOrName: string): VmEntry;
  /** Refuses a definition naming a host file outside the storage roots. */
  confine(def: VmDefinition): void;
  /** Why a VM of `memoryBytes` cannot start now (null: it can), besides `self`. */
  admission(self: VmEntry | null, memoryBytes: number): string | null;
  setState(e: VmEntry, state: EnabledStateValue, reason: string, health?: HealthStateValue): void;
}
