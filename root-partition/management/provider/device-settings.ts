/**
 * The storage and integration-service entries of a VM definition as Hyper-V resource settings
 * (Msvm_ResourceAllocationSettingData, Microsoft Docs): IDE controllers (ResourceType 5, Address "0"/"1"), synthetic
 * SCSI controllers (6), disk drives (17; Parent = controller, AddressOnParent) and the virtual
 * hard disk in each drive (Msvm_StorageAllocationSettingData, 31, HostResource = [path]).
 *
 * The definition's entries (root-partition/vmms/vm-device-settings.ts) are
 *   { kind: 'ide-disk', controller?: 0|1, position?: 0|1, path, readOnly? }
 *   { kind: 'scsi-controller', instanceId?, disks: [{ location, path, readOnly? }] }
 *   { kind: 'integration-services', heartbeat?, shutdown?, timeSync?, kvp? }   (flags default on)
 * This file is the one place that maps them, in both directions.
 */
import { parseObjectPath, keyValue } from '../cim/object-path.ts';
import type { DeviceRecord } from './vmms-port.ts';

/** Hyper-V's device GUIDs of the emulated IDE and synthetic SCSI controllers, part of InstanceIDs. */
const IDE_CONTROLLER_GUID = '83F8638B-8DCA-4152-9EDA-2CA8B33039B4';
const SCSI_CONTROLLER_GUID = 'D422512D-2BF2-4752-809D-7B82B5FCB1B4';

/** Hyper-V's integration component GUIDs (the DeviceID of each component). */
export const IntegrationServiceGuid = {
  shutdown: '9F8233AC-BE49-4C79-8EE3-E7E1985B2077',
  heartbeat: '84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47',
  kvp: '2A34B1C2-FD73-4043-8A5B-DD2159BC743F',
} as const;
export type IntegrationServiceName = keyof typeof IntegrationServiceGuid;

/**
 * The integration services a VM definition switches on and off (its `integration-services`
 * flags), each with the Msvm_*ComponentSettingData class Enable-/Disable-VMIntegrationService
 * modify (ResourceType 1, EnabledState 2 enabled / 3 disabled) and Hyper-V's name for it.
 */
export const IntegrationServiceSettings = {
  heartbeat: { className: 'Msvm_HeartbeatComponentSettingData', name: 'Heartbeat', guid: IntegrationServiceGuid.heartbeat },
  shutdown: { className: 'Msvm_ShutdownComponentSettingData', name: 'Shutdown', guid: IntegrationServiceGuid.shutdown },
  timeSync: { className: 'Msvm_TimeSyncComponentSettingData', name: 'Time Synchronization', guid: '2497F4DE-E9FA-4204-80E4-4B75C46419C0' },
  kvp: { className: 'Msvm_KvpExchangeComponentSettingData', name: 'Key-Value Pair Exchange', guid: IntegrationServiceGuid.kvp },
} as const;
export type IntegrationSettingName = keyof typeof IntegrationServiceSettings;
export const INTEGRATION_SETTING_NAMES = Object.keys(IntegrationServiceSettings) as IntegrationSettingName[];

export function integrationSettingInstanceId(vmId: string, ic: IntegrationSettingName): string {
  return `Microsoft:${vmId}\\${IntegrationServiceSettings[ic].guid}`;
}

/** Which integration service a Msvm_*ComponentSettingData instance is, by its class. */
export function integrationSettingOf(className: string): IntegrationSettingName | null {
  const lower = className.toLowerCase();
  return INTEGRATION_SETTING_NAMES.find((n) => IntegrationServiceSettings[n].className.toLowerCase() === lower) ?? null;
}

/** Whether each integration service is on: none without an entry; with one, every flag defaults to on. */
export function integrationFlagsOf(devices: readonly DeviceRecord[]): Record<IntegrationSettingName, boolean> {
  const entry = devices.find((d) => d.kind === 'integration-services');
  return Object.fromEntries(INTEGRATION_SETTING_NAMES.map((n) => [n, Boolean(entry) && entry![n] !== false])) as Record<IntegrationSettingName, boolean>;
}

/** The devices with the integration services set to `flags` (the entry goes when every flag is off). */
export function withIntegrationFlags(devices: readonly DeviceRecord[], flags: Record<IntegrationSettingName, boolean>): DeviceRecord[] {
  const others = devices.filter((d) => d.kind !== 'integration-services');
  if (!INTEGRATION_SETTING_NAMES.some((n) => flags[n])) return others;
  return [...others, { kind: 'integration-services', ...flags }];
}

export type Bus = 'ide' | 'scsi';

export interface DiskEntry {
  readonly bus: Bus;
  readonly controller: number;
  readonly location: number;
  /** null: an empty drive (added before its disk, as Add-VMHardDiskDrive does in two steps). */
  readonly path: string | null;
  readonly readOnly: boolean;
}

/** One resource setting as values for schema.createInstance. */
export interface ResourceSetting {
  readonly className: 'Msvm_ResourceAllocationSettingData' | 'Msvm_StorageAllocationSettingData';
  readonly values: Record<string, unknown>;
}

interface ScsiDisk {
  location: number;
  path?: string;
  readOnly?: boolean;
}

export function scsiControllerCount(devices: readonly DeviceRecord[]): number {
  return devices.filter((d) => d.kind === 'scsi-controller').length;
}

export function disksOf(devices: readonly DeviceRecord[]): DiskEntry[] {
  const disks: DiskEntry[] = [];
  let scsi = 0;
  for (const d of devices) {
    if (d.kind === 'ide-disk') {
      disks.push({
        bus: 'ide',
        controller: Number(d.controller ?? 0),
        location: Number(d.position ?? 0),
        path: typeof d.path === 'string' ? d.path : null,
        readOnly: d.readOnly === true,
      });
    } else if (d.kind === 'scsi-controller') {
      for (const disk of (Array.isArray(d.disks) ? d.disks : []) as ScsiDisk[]) {
        disks.push({ bus: 'scsi', controller: scsi, location: disk.location, path: disk.path ?? null, readOnly: disk.readOnly === true });
      }
      scsi++;
    }
  }
  return disks;
}

export function integrationServicesOf(devices: readonly DeviceRecord[]): IntegrationServiceName[] {
  const entry = devices.find((d) => d.kind === 'integration-services');
  if (!entry) return [];
  return (Object.keys(IntegrationServiceGuid) as IntegrationServiceName[]).filter((s) => entry[s] !== false);
}

export function controllerInstanceId(vmId: string, bus: Bus, controller: number): string {
  return `Microsoft:${vmId}\\${bus === 'ide' ? IDE_CONTROLLER_GUID : SCSI_CONTROLLER_GUID}\\${controller}`;
}

export function driveInstanceId(vmId: string, disk: Pick<DiskEntry, 'bus' | 'controller' | 'location'>): string {
  return `${controllerInstanceId(vmId, disk.bus, disk.controller)}\\${disk.location}\\D`;
}

export function diskInstanceId(vmId: string, disk: Pick<DiskEntry, 'bus' | 'controller' | 'location'>): string {
  return `${controllerInstanceId(vmId, disk.bus, disk.controller)}\\${disk.location}\\L`;
}

/** Controllers, drives and disks in Hyper-V's order; a generation 1 VM always has both IDE controllers. */
export function storageSettings(vmId: string, devices: readonly DeviceRecord[]): ResourceSetting[] {
  const rasd = (values: Record<string, unknown>): ResourceSetting => ({ className: 'Msvm_ResourceAllocationSettingData', values });
  const out: ResourceSetting[] = [];
  for (const c of [0, 1]) {
    out.push(
      rasd({
        InstanceID: controllerInstanceId(vmId, 'ide', c),
        ElementName: 'IDE Controller',
        ResourceType: 5,
        ResourceSubType: 'Microsoft:Hyper-V:Emulated IDE Controller',
        Address: String(c),
      }),
    );
  }
  for (let c = 0; c < scsiControllerCount(devices); c++) {
    out.push(
      rasd({
        InstanceID: controllerInstanceId(vmId, 'scsi', c),
        ElementName: 'SCSI Controller',
        ResourceType: 6,
        ResourceSubType: 'Microsoft:Hyper-V:Synthetic SCSI Controller',
        Address: String(c),
      }),
    );
  }
  for (const d of disksOf(devices)) {
    out.push(
      rasd({
        InstanceID: driveInstanceId(vmId, d),
        ElementName: 'Hard Drive',
        ResourceType: 17,
        ResourceSubType: 'Microsoft:Hyper-V:Synthetic Disk Drive',
        Parent: controllerInstanceId(vmId, d.bus, d.controller),
        AddressOnParent: String(d.location),
      }),
    );
    if (d.path === null) continue;
    out.push({
      className: 'Msvm_StorageAllocationSettingData',
      values: {
        InstanceID: diskInstanceId(vmId, d),
        ElementName: 'Hard Disk Image',
        ResourceType: 31,
        ResourceSubType: 'Microsoft:Hyper-V:Virtual Hard Disk',
        Parent: driveInstanceId(vmId, d),
        HostResource: [d.path],
        Limit: null,
      },
    });
  }
  return out;
}

/**
 * The InstanceID a Parent names: Hyper-V clients pass the parent's WMI path
 * (`\\HOST\root\virtualization\v2:Msvm_ResourceAllocationSettingData.InstanceID="Microsoft:…"`),
 * older ones the InstanceID itself.
 */
export function instanceIdOf(text: string): string {
  if (!/InstanceID\s*=/i.test(text)) return text;
  try {
    const path = parseObjectPath(text);
    const id = keyValue(path, 'InstanceID');
    return typeof id === 'string' ? id : text;
  } catch {
    return text;
  }
}

/** The controller an InstanceID or Parent (an InstanceID or a WMI path) names, or null. */
export function parseControllerId(vmId: string, parent: string): { bus: Bus; controller: number } | null {
  const text = instanceIdOf(parent);
  for (const bus of ['ide', 'scsi'] as const) {
    const prefix = controllerInstanceId(vmId, bus, 0).slice(0, -1);
    if (text.toLowerCase().startsWith(prefix.toLowerCase()) && /^\d+$/.test(text.slice(prefix.length)))
      return { bus, controller: Number(text.slice(prefix.length)) };
  }
  return null;
}

/** The drive or disk an InstanceID or Parent names (…\controller\location\D or \L), or null. */
export function parseDriveId(vmId: string, parent: string): { bus: Bus; controller: number; location: number } | null {
  const text = instanceIdOf(parent);
  const m = /^(.*)\\(\d+)\\[DL]$/.exec(text);
  const c = m ? parseControllerId(vmId, m[1]!) : null;
  return c && m ? { ...c, location: Number(m[2]) } : null;
}

/** The definition's devices with `disks` in place of the current ones (IDE entries and SCSI disk lists). */
export function withDisks(devices: readonly DeviceRecord[], disks: readonly DiskEntry[], scsiControllers: number): DeviceRecord[] {
  const others = devices.filter((d) => d.kind !== 'ide-disk' && d.kind !== 'scsi-controller');
  const existingScsi = devices.filter((d) => d.kind === 'scsi-controller');
  const ide = disks
    .filter((d) => d.bus === 'ide')
    .map(
      (d): DeviceRecord => ({
        kind: 'ide-disk',
        controller: d.controller,
        position: d.location,
        ...(d.path !== null ? { path: d.path } : {}),
        ...(d.readOnly ? { readOnly: true } : {}),
      }),
    );
  const scsi = Array.from({ length: scsiControllers }, (_, c): DeviceRecord => {
    const { disks: _old, ...rest } = (existingScsi[c] ?? { kind: 'scsi-controller' }) as DeviceRecord & { disks?: unknown };
    return {
      ...rest,
      kind: 'scsi-controller',
      disks: disks
        .filter((d) => d.bus === 'scsi' && d.controller === c)
        .map((d) => ({ location: d.location, ...(d.path !== null ? { path: d.path } : {}), ...(d.readOnly ? { readOnly: true } : {}) })),
    };
  });
  return [...ide, ...scsi, ...others];
}
