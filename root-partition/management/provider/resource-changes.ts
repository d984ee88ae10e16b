/**
 * Embedded setting-data instances (DefineSystem, ModifySystemSettings, Add/Modify/Remove-
 * ResourceSettings) turned into changes of a VM definition. A setting the definition cannot hold
 * is refused with a sentence saying so; the caller reports it as 32773 Invalid parameter.
 */
import type { CimInstance } from '../cim/instance.ts';
import { disksOf, parseControllerId, parseDriveId, scsiControllerCount, withDisks, type DiskEntry } from './device-settings.ts';
import type { DeviceRecord, VmDefinitionChange } from './vmms-port.ts';

export class SettingRefused extends Error {}

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
  return change;
}

/** Processor and memory settings → vpCount and memoryBytes; null for any other setting. */
export function computeChange(setting: CimInstance): VmDefinitionChange | null {
  const cls = setting.className.toLowerCase();
  const type = setting.get('ResourceType');
  if (cls === 'msvm_processorsettingdata' || type === 3) return { vpCount: quantity(setting, 'processor') };
  if (cls === 'msvm_memorysettingdata' || type === 4) {
    if (setting.get('DynamicMemoryEnabled') === true) throw new SettingRefused('memory: dynamic memory is not offered');
    return { memoryBytes: quantity(setting, 'memory') * MiB };
  }
  return null;
}

const same = (a: Pick<DiskEntry, 'bus' | 'controller' | 'location'>, b: Pick<DiskEntry, 'bus' | 'controller' | 'location'>) =>
  a.bus === b.bus && a.controller === b.controller && a.location === b.location;

/**
 * SCSI controllers (6), drives (17) and virtual hard disks (31) added to `devices`. A disk names
 * its drive in Parent; a drive names its controller in Parent and its place in AddressOnParent.
 * The definition holds a drive only with a disk in it (the disk is where its path lives), so a
 * drive without a disk in the same call is refused; DVD drives (16) are not offered.
 */
export function addStorage(vmId: string, devices: readonly DeviceRecord[], settings: readonly CimInstance[]): DeviceRecord[] {
  let scsi = scsiControllerCount(devices);
  const disks = disksOf(devices);
  const drives: Pick<DiskEntry, 'bus' | 'controller' | 'location'>[] = [];
  for (const s of settings) {
    const type = s.get('ResourceType');
    if (type === 6) { scsi++; continue; }
    if (type !== 17) continue;
    const parent = parseControllerId(vmId, String(s.get('Parent') ?? ''));
    const location = Number(s.get('AddressOnParent'));
    if (!parent) throw new SettingRefused(`drive: Parent must name an IDE or SCSI controller of this VM (got ${String(s.get('Parent'))})`);
    if (!Number.isInteger(location) || location < 0 || location > (parent.bus === 'ide' ? 1 : 63)) throw new SettingRefused(`drive: AddressOnParent ${String(s.get('AddressOnParent'))} is not a place on the controller`);
    drives.push({ ...parent, location });
  }
  for (const s of settings) {
    const type = s.get('ResourceType');
    if (type === 6 || type === 17) continue;
    if (type !== 31) throw new SettingRefused(`ResourceType ${String(type)} (${s.className}) cannot be added: the definition holds SCSI controllers, and drives with their virtual hard disks`);
    const drive = parseDriveId(vmId, String(s.get('Parent') ?? ''));
    const host = s.get('HostResource');
    const path = Array.isArray(host) ? host[0] : null;
    if (!drive) throw new SettingRefused(`virtual hard disk: Parent must name a drive of this VM (got ${String(s.get('Parent'))})`);
    if (typeof path !== 'string' || !path.startsWith('/')) throw new SettingRefused('virtual hard disk: HostResource must hold the absolute path of a raw disk image');
    if (drive.bus === 'scsi' && drive.controller >= scsi) throw new SettingRefused(`virtual hard disk: the VM has no SCSI controller ${drive.controller}`);
    if (disks.some((d) => same(d, drive))) throw new SettingRefused(`${drive.bus.toUpperCase()} ${drive.controller}:${drive.location} already holds a disk`);
    disks.push({ ...drive, path, readOnly: false });
    const at = drives.findIndex((d) => same(d, drive));
    if (at >= 0) drives.splice(at, 1);
  }
  if (drives.length) throw new SettingRefused('a drive is held only with its disk: add the Virtual Hard Disk (ResourceType 31, Parent = the drive) in the same call');
  return withDisks(devices, disks, scsi);
}

/** A disk's new path (ModifyResourceSettings on Msvm_StorageAllocationSettingData). */
export function modifyStorage(vmId: string, devices: readonly DeviceRecord[], setting: CimInstance): DeviceRecord[] {
  const at = parseDriveId(vmId, String(setting.get('InstanceID') ?? ''));
  const host = setting.get('HostResource');
  if (!at || !Array.isArray(host) || typeof host[0] !== 'string') throw new SettingRefused(`${String(setting.get('InstanceID'))}: only processor, memory and virtual hard disk settings (InstanceID and HostResource) can be modified`);
  const disks = disksOf(devices);
  const disk = disks.find((d) => same(d, at));
  if (!disk) throw new SettingRefused(`no disk at ${at.bus.toUpperCase()} ${at.controller}:${at.location}`);
  return withDisks(devices, disks.map((d) => (d === disk ? { ...d, path: host[0] as string } : d)), scsiControllerCount(devices));
}

/** Removing a drive or its disk removes the disk; removing the last SCSI controller, the controller. */
export function removeStorage(vmId: string, devices: readonly DeviceRecord[], instanceId: string): DeviceRecord[] {
  const disks = disksOf(devices);
  const at = parseDriveId(vmId, instanceId);
  if (at) {
    if (!disks.some((d) => same(d, at))) throw new SettingRefused(`no disk at ${at.bus.toUpperCase()} ${at.controller}:${at.location}`);
    return withDisks(devices, disks.filter((d) => !same(d, at)), scsiControllerCount(devices));
  }
  const controller = parseControllerId(vmId, instanceId);
  const count = scsiControllerCount(devices);
  if (controller?.bus === 'scsi' && controller.controller === count - 1) {
    if (disks.some((d) => d.bus === 'scsi' && d.controller === controller.controller)) throw new SettingRefused(`SCSI controller ${controller.controller} still holds disks; remove them first`);
    return withDisks(devices, disks, count - 1);
  }
  throw new SettingRefused(`${instanceId}: only drives, disks and the last SCSI controller can be removed`);
}
