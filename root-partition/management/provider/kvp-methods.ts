/**
 * Msvm_VirtualSystemManagementService.AddKvpItems, ModifyKvpItems and RemoveKvpItems: host items
 * for a running guest (KVP pool External). As on Hyper-V each takes TargetSystem (the VM's
 * Msvm_ComputerSystem REF) and DataItems (embedded Msvm_KvpExchangeDataItem instances: Name,
 * Data), answers 4096 with a job, and the job ends Completed or with the error code and why.
 */
import { CimInstance } from '../cim/instance.ts';
import { keyValue, isObjectPath, type CimObjectPath } from '../cim/object-path.ts';
import type { CimMethodResult } from '../cim/provider.ts';
import type { CimValue } from '../cim/types.ts';
import type { JobTable } from './job-table.ts';
import type { KvpItemChange, VmmsPort } from './vmms-port.ts';

/** Method name (lower case) → the change it makes. */
export const KVP_METHODS: Readonly<Record<string, KvpItemChange>> = { addkvpitems: 'add', modifykvpitems: 'modify', removekvpitems: 'remove' };

const JOB_DESCRIPTION: Record<KvpItemChange, string> = { add: 'Adding KVP Items', modify: 'Modifying KVP Items', remove: 'Removing KVP Items' };

export interface KvpMethodContext {
  readonly port: VmmsPort;
  readonly jobs: JobTable;
  systemPath(vmId: string): CimObjectPath;
}

export async function changeKvpItems(ctx: KvpMethodContext, change: KvpItemChange, p: Readonly<Record<string, CimValue>>): Promise<CimMethodResult> {
  // 32770 Not Supported: this VMMS has no path to the guest's KVP service.
  if (!ctx.port.changeKvpItems) return { returnValue: 32770, out: {} };
  const target = p.TargetSystem;
  const vmId = isObjectPath(target) ? String(keyValue(target, 'Name') ?? '').toLowerCase() : '';
  const vm = vmId ? ctx.port.get(vmId) : undefined;
  if (!vm) return { returnValue: 32773, out: {} };
  const raw = Array.isArray(p.DataItems) ? p.DataItems : p.DataItems ? [p.DataItems] : [];
  const items = raw.filter((x): x is CimInstance => x instanceof CimInstance && x.className.toLowerCase() === 'msvm_kvpexchangedataitem');
  if (items.length === 0 || items.length !== raw.length) return { returnValue: 32773, out: {} };
  const job = ctx.jobs.start(JOB_DESCRIPTION[change], ctx.systemPath(vm.id));
  const pairs = items.map((i) => ({ name: String(i.get('Name') ?? ''), data: String(i.get('Data') ?? '') }));
  void ctx.port.changeKvpItems(vm.id, change, pairs).then(
    (r) => ctx.jobs.finish(job, r.returnValue, r.error),
    (e: Error) => ctx.jobs.finish(job, 32768, e.message),
  );
  return { returnValue: 4096, out: { Job: job } };
}
