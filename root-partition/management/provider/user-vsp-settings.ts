/**
 * The operator's own VSPs in the management model. Hyper-V has no such device, so they appear as
 * what CIM provides for a resource it has no type for: a Msvm_ResourceAllocationSettingData with
 * ResourceType 1 (Other), OtherResourceType "tsvisor User VSP" and ResourceSubType
 * "tsvisor:User VSP"; HostResource[0] is the module's path and Address the exported class (empty:
 * the module's default). Added and removed with AddResourceSettings / RemoveResourceSettings like
 * any other resource.
 */
import type { CimInstance } from '../cim/instance.ts';
import type { DeviceRecord } from './vmms-port.ts';
import type { ResourceSetting } from './device-settings.ts';
import { SettingRefused } from './resource-changes.ts';

export const USER_VSP_SUBTYPE = 'tsvisor:User VSP';

export function userVspInstanceId(vmId: string, index: number): string {
  return `Microsoft:${vmId}\\UserVsp\\${index}`;
}

const userVsps = (devices: readonly DeviceRecord[]) => devices.filter((d) => d.kind === 'user-vsp');

export function userVspSettings(vmId: string, devices: readonly DeviceRecord[]): ResourceSetting[] {
  return userVsps(devices).map((d, i) => ({
    className: 'Msvm_ResourceAllocationSettingData',
    values: {
      InstanceID: userVspInstanceId(vmId, i),
      ElementName: 'User VSP',
      ResourceType: 1,
      OtherResourceType: 'tsvisor User VSP',
      ResourceSubType: USER_VSP_SUBTYPE,
      HostResource: [String(d.module)],
      Address: typeof d.export === 'string' ? d.export : '',
    },
  }));
}

export const isUserVspSetting = (s: CimInstance) => s.get('ResourceType') === 1 && s.get('ResourceSubType') === USER_VSP_SUBTYPE;

/** The user VSP settings of an AddResourceSettings call appended to `devices`, with the InstanceIDs they get. */
export function addUserVsps(vmId: string, devices: readonly DeviceRecord[], settings: readonly CimInstance[]): { devices: DeviceRecord[]; ids: string[] } {
  const out = [...devices];
  const ids: string[] = [];
  for (const s of settings.filter(isUserVspSetting)) {
    const host = s.get('HostResource');
    const module = Array.isArray(host) ? host[0] : null;
    if (typeof module !== 'string' || !module.startsWith('/')) throw new SettingRefused('user VSP: HostResource must hold the absolute path of the VSP module');
    const exported = s.get('Address');
    ids.push(userVspInstanceId(vmId, userVsps(out).length));
    out.push({ kind: 'user-vsp', module, ...(typeof exported === 'string' && exported !== '' ? { export: exported } : {}) });
  }
  return { devices: out, ids };
}

/** `devices` without the user VSP an InstanceID names; null when the InstanceID is not a user VSP's. */
export function removeUserVsp(vmId: string, devices: readonly DeviceRecord[], instanceId: string): DeviceRecord[] | null {
  const prefix = userVspInstanceId(vmId, 0).slice(0, -1);
  if (!instanceId.toLowerCase().startsWith(prefix.toLowerCase()) || !/^\d+$/.test(instanceId.slice(prefix.length))) return null;
  const target = userVsps(devices)[Number(instanceId.slice(prefix.length))];
  if (!target) throw new SettingRefused(`${instanceId}: the VM has no such user VSP`);
  return devices.filter((d) => d !== target);
}
