/**
 * Embedded setting-data instances (DefineSystem, ModifySystemSettings, Add/Modify/Remove-
 * ResourceSettings) turned into changes of a VM definition. A setting the definition cannot hold
 * is refused with a sentence saying so; the caller reports it as 32773 Invalid parameter.
 */
import type { CimInstance } from '../cim/instance.ts';
import {
  disksOf,
  integrationFlagsOf,
  integrationSettingOf,
  parseControllerId,
  parseDriveId,
  scsiControllerCount,
  withDisks,
  withIntegrationFlags,
  type DiskEntry,
} from './device-settings.ts';
import type { DeviceRecord, VmDefinitionChange } from './vmms-port.ts';

export class SettingRefused extends Error {}

/** Hyper-V's limit of synthetic SCSI controllers per VM. */
const MAX_SCSI_CONTROLLERS = 4;

const MiB = 1024 * 1024;

function quantity(i: CimInstance, what: string): number {
  const v = i.get('VirtualQuantity');
  if (v === null || v === undefined) throw new SettingRefused(`${what}: VirtualQuantity is required`);
  const n = Number(v as bigint);
  if (!Number.isSafeInteger(n) || n <= 0) throw new SettingRefused(`${what}: VirtualQuantity ${String(v)} is not a positive count`);
  return n;
}

/** Msvm_VirtualSystemSettingData → the definition fields it carries. */
export function systemSettingsChange(vssd: CimInstance): VmDefinitionChange {
  const change: VmDefinitionChange = {};
  const name = vssd.get('ElementName');
  if (typeof name === 'string') change.name = name;
  const image = vssd.get('GuestImagePath');
  if (typeof image === 'string') change.imagePath = image;
  const cmdline = vssd.get('GuestCommandLine');
  if (typeof cmdline === 'string') change.cmdline = cmdline;
  const stop = vssd.get('AutomaticShutdownAction');
  if (stop !== null && stop !== undefined) {
    // Hyper-V: 2 Turn Off, 3 Save State, 4 Shut Down (not a stop action this host offers).
    if (stop !== 2 && stop !== 3) throw new SettingRefused(`AutomaticShutdownAction ${String(stop)}: only 2 (turn off) and 3 (save state) are offered`);
    change.automaticStopAction = stop === 3 ? 'save' : 'turn-off';
  }
  const start = vssd.get('AutomaticStartupAction');
  if (start !== null && start !== undefined) {
    const action = ({ 2: 'nothing', 3: 'start-if-running', 4: 'start' } as const)[start as 2 | 3 | 4];
    if (!action) throw new SettingRefused(`AutomaticStartupAction ${String(start)}: must be 2 (nothing), 3 (start if it was running) or 4 (always start)`);
    change.automaticStartAction = action;
  }
  const kind = vssd.get('GuestKind');
  if (kind === 'linux') change.guest = 'linux';
  else if (kind !== null && kind !== undefined && kind !== '')
    throw new SettingRefused(`GuestKind "${String(kind)}": must be 'linux' (the built-in Linux guest) or empty (a WebAssembly guest image)`);
  const notes = vssd.get('Notes');
  if (Array.isArray(notes)) change.notes = notes.map(String).join('\n');
  else if (typeof notes === 'string') change.notes = notes;
  return change;
}

/** Reservation or Limit of Msvm_ProcessorSettingData (thousandths of a percent, 0..100000) as a percentage. */
function perMille(i: CimInstance, name: 'Reservation' | 'Limit'): number | undefined {
  const v = i.get(name);
  if (v === null || v === undefined) return undefined;
  const n = Number(v as bigint);
  if (!Number.isSafeInteger(n) || n < 0 || n > 100_000)
    throw new SettingRefused(`processor: ${name} ${String(v)} must be 0..100000 (thousandths of a percent of the VM's processors)`);
  return n / 1000;
}

/**
 * Processor and memory settings → vpCount, the CPU reserve/maximum/weight, memoryBytes; null for
 * any other setting. The processor's VirtualQuantity may be left out to change only the others.
 */
export function computeChange(setting: CimInstance): VmDefinitionChange | null {
  const cls = setting.className.toLowerCase();
  const type = setting.get('ResourceType');
  if (cls === 'msvm_processorsettingdata' || type === 3) {
    const change: VmDefinitionChange = {};
    const q = setting.get('VirtualQuantity');
    if (q !== null && q !== undefined) change.vpCount = quantity(setting, 'processor');
    const reserve = perMille(setting, 'Reservation');
    const limit = perMille(setting, 'Limit');
    if (reserve !== undefined) change.cpuReserve = reserve;
    if (limit !== undefined) {
      if (limit === 0) throw new SettingRefused('processor: Limit 0 would never let the VM run; the least is 1 (0.001%)');
      change.cpuMaximum = limit;
    }
    const w = setting.get('Weight');
    if (w !== null && w !== undefined) {
      const n = Number(w as number);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new SettingRefused(`processor: Weight ${String(w)} must be 1..10000`);
      change.cpuWeight = n;
    }
    return change;
  }
  if (cls === 'msvm_memorysettingdata' || type === 4) {
    if (setting.get('DynamicMemoryEnabled') === true) throw new SettingRefused('memory: dynamic memory is not offered');
    return { memoryBytes: quantity(setting, 'memory') * MiB };
  }
  return null;
}

const same = (a: Pick<DiskEntry, 'bus' | 'controller' | 'location'>, b: Pick<DiskEntry, 'bus' | 'controller' | 'location'>) =>
  a.bus === b.bus && a.controller === b.controller && a.location === b.location;

/** What an AddResourceSettings call added, in the order given: the paths it answers with. */
export interface AddedSetting {
  readonly kind: 'controller' | 'drive' | 'disk';
  readonly bus: 'ide' | 'scsi';
  readonly controller: number;
  readonly location: number;
}

/**
 * SCSI controllers (6), drives (17) and virtual hard disks (31) added to `devices`. A disk names
 * its drive in Parent; a drive names its controller in Parent and its place in AddressOnParent;
 * Parent is an InstanceID or the parent's WMI path. Hyper-V's sequence works one call at a time
 * (controller, then a drive naming it, then a disk naming the drive) or all in one call: a drive
 * added without a disk stays empty until one is added. DVD drives (16) are not offered.
 */
export function addStorage(
  vmId: string,
  devices: readonly DeviceRecord[],
  settings: readonly CimInstance[],
): { devices: DeviceRecord[]; added: AddedSetting[] } {
  let scsi = scsiControllerCount(devices);
  const disks = disksOf(devices);
  const added: AddedSetting[] = [];
  for (const s of settings) {
    if (s.get('ResourceType') !== 6) continue;
    if (scsi >= MAX_SCSI_CONTROLLERS) throw new SettingRefused(`SCSI controller: the VM already has ${MAX_SCSI_CONTROLLERS}, the most it can have`);
    added.push({ kind: 'controller', bus: 'scsi', controller: scsi++, location: 0 });
  }
  for (const s of settings) {
    if (s.get('ResourceType') !== 17) continue;
    const parent = parseControllerId(vmId, String(s.get('Parent') ?? ''));
    const location = Number(s.get('AddressOnParent'));
    if (!parent) throw new SettingRefused(`drive: Parent must name an IDE or SCSI controller of this VM (got ${String(s.get('Parent'))})`);
    if (parent.bus === 'ide' ? parent.controller > 1 : parent.controller >= scsi)
      throw new SettingRefused(`drive: the VM has no ${parent.bus.toUpperCase()} controller ${parent.controller}`);
    if (!Number.isInteger(location) || location < 0 || location > (parent.bus === 'ide' ? 1 : 63))
      throw new SettingRefused(
        `drive: AddressOnParent ${String(s.get('AddressOnParent'))} is not a place on the controller (${parent.bus === 'ide' ? '0 or 1' : '0 to 63'})`,
      );
    const drive = { ...parent, location };
    if (disks.some((d) => same(d, drive))) throw new SettingRefused(`drive: ${drive.bus.toUpperCase()} ${drive.controller}:${drive.location} is already taken`);
    disks.push({ ...drive, path: null, readOnly: false });
    added.push({ kind: 'drive', ...drive });
  }
  for (const s of settings) {
    const type = s.get('ResourceType');
    if (type === 6 || type === 17) continue;
    if (type !== 31)
      throw new SettingRefused(
        `ResourceType ${String(type)} (${s.className}) cannot be added: the definition holds SCSI controllers, and drives with their virtual hard disks`,
      );
    const at = parseDriveId(vmId, String(s.get('Parent') ?? ''));
    const host = s.get('HostResource');
    const path = Array.isArray(host) ? host[0] : null;
    if (!at) throw new SettingRefused(`virtual hard disk: Parent must name a drive of this VM (got ${String(s.get('Parent'))})`);
    if (typeof path !== 'string' || !path.startsWith('/'))
      throw new SettingRefused('virtual hard disk: HostResource must hold the absolute path of a disk image');
    const i = disks.findIndex((d) => same(d, at));
    if (i < 0)
      throw new SettingRefused(
        `virtual hard disk: there is no drive at ${at.bus.toUpperCase()} ${at.controller}:${at.location}; add the drive (ResourceType 17) first or in the same call`,
      );
    if (disks[i]!.path !== null) throw new SettingRefused(`${at.bus.toUpperCase()} ${at.controller}:${at.location} already holds a disk`);
    disks[i] = { ...disks[i]!, path };
    added.push({ kind: 'disk', ...at });
  }
  return { devices: withDisks(devices, disks, scsi), added };
}

/**
 * Enable-/Disable-VMIntegrationService: a Msvm_*ComponentSettingData with EnabledState 2 or 3
 * sets that service's flag; null for a setting of any other class.
 */
export function integrationChange(devices: readonly DeviceRecord[], setting: CimInstance): DeviceRecord[] | null {
  const ic = integrationSettingOf(setting.className);
  if (!ic) return null;
  const state = setting.get('EnabledState');
  if (state !== 2 && state !== 3) throw new SettingRefused(`${setting.className}: EnabledState must be 2 (enabled) or 3 (disabled), not ${String(state)}`);
  return withIntegrationFlags(devices, { ...integrationFlagsOf(devices), [ic]: state === 2 });
}

/** A disk's new path (ModifyResourceSettings on Msvm_StorageAllocationSettingData). */
export function modifyStorage(vmId: string, devices: readonly DeviceRecord[], setting: CimInstance): DeviceRecord[] {
  const at = parseDriveId(vmId, String(setting.get('InstanceID') ?? ''));
  const host = setting.get('HostResource');
  if (!at || !Array.isArray(host) || typeof host[0] !== 'string')
    throw new SettingRefused(
      `${String(setting.get('InstanceID'))}: only processor, memory and virtual hard disk settings (InstanceID and HostResource) can be modified`,
    );
  const disks = disksOf(devices);
  const disk = disks.find((d) => same(d, at));
  if (!disk || disk.path === null) throw new SettingRefused(`no disk at ${at.bus.toUpperCase()} ${at.controller}:${at.location}`);
  return withDisks(
    devices,
    disks.map((d) => (d === disk ? { ...d, path: host[0] as string } : d)),
    scsiControllerCount(devices),
  );
}

/**
 * Removing a disk (…\L) leaves its drive empty; removing a drive (…\D) removes it with its
 * disk (Remove-VMHardDiskDrive); removing the last SCSI controller, once it holds no drive, the controller.
 */
export function removeStorage(vmId: string, devices: readonly DeviceRecord[], instanceId: string): DeviceRecord[] {
  const disks = disksOf(devices);
  const at = parseDriveId(vmId, instanceId);
  if (at) {
    const found = disks.find((d) => same(d, at));
    const where = `${at.bus.toUpperCase()} ${at.controller}:${at.location}`;
    if (/\\L$/.test(instanceId)) {
      if (!found || found.path === null) throw new SettingRefused(`no disk at ${where}`);
      return withDisks(
        devices,
        disks.map((d) => (d === found ? { ...d, path: null } : d)),
        scsiControllerCount(devices),
      );
    }
    if (!found) throw new SettingRefused(`no drive at ${where}`);
    return withDisks(
      devices,
      disks.filter((d) => d !== found),
      scsiControllerCount(devices),
    );
  }
  const controller = parseControllerId(vmId, instanceId);
  const count = scsiControllerCount(devices);
  if (controller?.bus === 'scsi' && controller.controller === count - 1) {
    if (disks.some((d) => d.bus === 'scsi' && d.controller === controller.controller))
      throw new SettingRefused(`SCSI controller ${controller.controller} still holds drives; remove them first`);
    return withDisks(devices, disks, count - 1);
  }
  if (controller?.bus === 'scsi' && controller.controller < count)
    throw new SettingRefused(`SCSI controller ${controller.controller}: only the last SCSI controller (${count - 1}) can be removed`);
  throw new SettingRefused(`${instanceId}: only drives, disks and the last SCSI controller can be removed`);
}
