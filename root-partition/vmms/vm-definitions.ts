/**
 * The VM definitions as the service changes them: DefineSystem, ModifySystemSettings,
 * DestroySystem, a definition the service itself replaces (checkpoints), Export-VM and Import-VM.
 * Each change is validated whole, confined to the storage roots and persisted before the table
 * of VMs sees it.
 */
import { existsSync, rmSync } from 'node:fs';
import type { StorageRoots } from '../host/storage-roots.ts';
import type { VmCheckpoints } from './checkpoints.ts';
import { cpuSettingsOf } from './host-cpu-scheduler.ts';
import { EnabledState, ReturnCode, stateName } from './lifecycle.ts';
import { newDefinition, validateDefinition, type NewVmRequest, type VmDefinition } from './vm-definition.ts';
import { definitionFiles } from './vm-device-settings.ts';
import { VmEntry, type VmView } from './vm-entry.ts';
import { exportVm, type ExportResult } from './vm-export.ts';
import { importVm, type ImportOptions, type ImportResult } from './vm-import.ts';
import type { VmmsContext } from './vmms-context.ts';
import { VmmsError, type RequestResult } from './vmms-types.ts';

/** The settings ModifySystemSettings may change. */
export type VmSettingsChange = Partial<
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
>;

/** Refuses a definition naming a host file outside the storage roots (before anything is kept). */
export function confineDefinition(roots: StorageRoots | null, def: VmDefinition): void {
  if (!roots) return;
  for (const f of definitionFiles(def.id, def.imagePath, def.devices)) roots.check(f.path, f.what);
}

/** A definition changed by the service itself (checkpoints): validated and persisted in any state. */
export function replaceDefinition(ctx: VmmsContext, e: VmEntry, next: VmDefinition, reason: string): void {
  const def = validateDefinition({ ...next, id: e.def.id, name: e.def.name, version: e.def.version }, `VM ${e.def.name}`);
  ctx.confine(def);
  ctx.store.save(def);
  e.def = def;
  e.log.info(`definition changed: ${reason}`);
  ctx.events.emit('modified', { vmId: def.id, name: def.name });
}

/** DefineSystem: validates, persists, and returns the new VM (Off). */
export function defineVm(ctx: VmmsContext, request: NewVmRequest): VmView {
  const def = newDefinition(request);
  if (ctx.vms.size >= ctx.limits.maxVms) throw new VmmsError('VMMS_ERR_LIMIT', `the host has ${ctx.vms.size} VMs defined, its limit`);
  if (def.memoryBytes > ctx.limits.memoryBudgetBytes)
    throw new VmmsError('VMMS_ERR_LIMIT', `a VM of ${def.memoryBytes} bytes can never fit the host memory budget of ${ctx.limits.memoryBudgetBytes} bytes`);
  if (ctx.find(def.name)) throw new VmmsError('VMMS_ERR_NAME_IN_USE', `a VM named "${def.name}" exists`);
  ctx.confine(def);
  if (!existsSync(def.imagePath)) throw new VmmsError('VMMS_ERR_NO_IMAGE', `guest image ${def.imagePath} does not exist`);
  ctx.store.save(def);
  ctx.vms.set(def.id, new VmEntry(def, ctx.log));
  ctx.vms.get(def.id)!.log.info(`defined VM ${def.name} (${def.id})`);
  ctx.events.emit('defined', { vmId: def.id, name: def.name });
  return ctx.vms.get(def.id)!.view();
}

/**
 * ModifySystemSettings / Modify-, Add-, RemoveResourceSettings: a changed definition, validated
 * like a new one and persisted. Only while the VM is Off: a running worker holds the old one,
 * and a saved state was taken with it.
 */
export function modifyVm(ctx: VmmsContext, idOrName: string, change: VmSettingsChange): RequestResult {
  const e = ctx.find(idOrName);
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
  const other = change.name === undefined ? undefined : ctx.find(change.name);
  if (other && other !== e) return { returnValue: ReturnCode.InvalidParameter, error: `a VM named "${change.name}" exists` };
  let def: VmDefinition;
  try {
    def = validateDefinition({ ...e.def, ...change, id: e.def.id, version: e.def.version }, `VM ${e.def.name}`);
  } catch (err) {
    return { returnValue: ReturnCode.InvalidParameter, error: (err as Error).message, vm: e.view() };
  }
  if (def.memoryBytes > ctx.limits.memoryBudgetBytes)
    return {
      returnValue: ReturnCode.InvalidParameter,
      error: `${def.memoryBytes} bytes can never fit the host memory budget of ${ctx.limits.memoryBudgetBytes} bytes`,
    };
  try {
    ctx.confine(def);
  } catch (err) {
    return { returnValue: ReturnCode.InvalidParameter, error: (err as Error).message, vm: e.view() };
  }
  const cpuRefusal = ctx.cpu.changeSettings(def.id, cpuSettingsOf(def));
  if (cpuRefusal) return { returnValue: ReturnCode.InvalidParameter, error: `the CPU reserve cannot be raised: ${cpuRefusal}`, vm: e.view() };
  ctx.store.save(def);
  e.def = def;
  e.log.info('definition changed', { change: Object.keys(change) });
  ctx.events.emit('modified', { vmId: def.id, name: def.name });
  return { returnValue: ReturnCode.Completed, vm: e.view() };
}

/** DestroySystem: only a VM that is Off or Saved; its saved state goes with it. */
export function removeVm(ctx: VmmsContext, checkpoints: VmCheckpoints, idOrName: string): RequestResult {
  const e = ctx.find(idOrName);
  if (!e) return { returnValue: ReturnCode.InvalidParameter, error: `no VM named or with id "${idOrName}"` };
  if (e.state !== EnabledState.Off && e.state !== EnabledState.Saved)
    return { returnValue: ReturnCode.InvalidState, error: `cannot remove a VM that is ${stateName(e.state)}; turn it off first` };
  rmSync(ctx.paths.savedState(e.def.id), { force: true });
  checkpoints.forgetVm(e.def.id);
  ctx.store.remove(e.def.id);
  ctx.vms.delete(e.def.id);
  e.log.info(`removed VM ${e.def.name}`);
  ctx.events.emit('removed', { vmId: e.def.id, name: e.def.name });
  return { returnValue: ReturnCode.Completed };
}

/** Export-VM (vm-export.ts): an Off or Saved VM with its disks and checkpoints, to `<dir>/<VM name>/`. */
export function exportDefinedVm(ctx: VmmsContext, checkpoints: VmCheckpoints, idOrName: string, dir: string): ExportResult {
  const e = ctx.entry(idOrName);
  if (e.state !== EnabledState.Off && e.state !== EnabledState.Saved) {
    throw new VmmsError(
      'VMMS_ERR_INVALID_STATE',
      `cannot export VM ${e.def.name} while it is ${stateName(e.state)}: its disks change under the copy; save it (tsvisor vm save ${e.def.name}) or turn it off, then export`,
    );
  }
  ctx.roots?.check(dir, 'export directory');
  const r = exportVm(
    { def: e.def, savedState: e.state === EnabledState.Saved ? ctx.paths.savedState(e.def.id) : null, tree: checkpoints.store.load(e.def.id) },
    dir,
  );
  e.log.info(`exported to ${r.path}`);
  return r;
}

/** Import-VM (vm-import.ts): registers the VM a `vm export` folder holds, in place or copied. */
export function importDefinedVm(ctx: VmmsContext, checkpoints: VmCheckpoints, folder: string, o: ImportOptions): ImportResult {
  const r = importVm(folder, o, {
    idTaken: (id) => ctx.vms.has(id),
    nameTaken: (name) => ctx.find(name) !== undefined,
    savedStatePath: (id) => ctx.paths.savedState(id),
    checkpointDir: (id) => checkpoints.store.dir(id),
    checkRoot: (path, what) => {
      ctx.roots?.check(path, what);
    },
    register: (def, tree, saved) => {
      if (ctx.vms.size >= ctx.limits.maxVms) throw new VmmsError('VMMS_ERR_LIMIT', `the host has ${ctx.vms.size} VMs defined, its limit`);
      if (def.memoryBytes > ctx.limits.memoryBudgetBytes)
        throw new VmmsError('VMMS_ERR_LIMIT', `a VM of ${def.memoryBytes} bytes can never fit the host memory budget of ${ctx.limits.memoryBudgetBytes} bytes`);
      ctx.confine(def);
      if (tree) checkpoints.store.save(tree);
      try {
        ctx.store.save(def);
      } catch (err) {
        if (tree) checkpoints.store.remove(def.id);
        throw err;
      }
      const e = new VmEntry(def, ctx.log);
      e.state = saved ? EnabledState.Saved : EnabledState.Off;
      ctx.vms.set(def.id, e);
      e.log.info(`imported VM ${def.name} (${def.id}) from ${folder}`);
      ctx.events.emit('defined', { vmId: def.id, name: def.name });
    },
  });
  return r;
}
