/**
 * The network adapters of a VM definition as Hyper-V resource settings (Microsoft
 * Docs): each adapter is a port setting — Msvm_SyntheticEthernetPortSettingData or, legacy,
 * Msvm_EmulatedEthernetPortSettingData (ResourceType 10, Address = the MAC as 12 hex digits) — and,
 * when it is connected, an Msvm_EthernetPortAllocationSettingData (ResourceType 33, "Ethernet
 * Connection") whose Parent is the port and HostResource the switch. Add-VMNetworkAdapter adds
 * the port, then the connection; Remove-VMNetworkAdapter removes the port (and its connection).
 *
 * The definition's entry (root-partition/vmms/vm-device-settings.ts) is
 *   { kind: 'network-adapter', name?, legacy?, mac?, switch?, vlanId?, instanceId?, maxChannels? }
 * A synthetic adapter's maxChannels is the tsvisor extension property MaxChannels of its port
 * setting, set when it is added or later with ModifyResourceSettings.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { CimInstance } from '../cim/instance.ts';
import { instanceIdOf } from './device-settings.ts';
import { SettingRefused } from './resource-changes.ts';
import type { DeviceRecord } from './vmms-port.ts';

export const SYNTHETIC_PORT_CLASS = 'Msvm_SyntheticEthernetPortSettingData';
export const EMULATED_PORT_CLASS = 'Msvm_EmulatedEthernetPortSettingData';
export const CONNECTION_CLASS = 'Msvm_EthernetPortAllocationSettingData';
/** Hyper-V's limits: 8 synthetic and 4 legacy adapters. */
const MAX_SYNTHETIC = 8;
const MAX_LEGACY = 4;

export interface NetworkAdapterEntry {
  kind: 'network-adapter';
  name?: string;
  legacy?: boolean;
  mac?: string;
  switch?: string;
  vlanId?: number;
  instanceId?: string;
  maxChannels?: number;
}

/** The most VMBus channels a synthetic adapter runs (vm-device-settings.ts MAX_NIC_CHANNELS). */
const MAX_CHANNELS = 64;

/** A port setting's MaxChannels: undefined when NULL, else 1..64 on a synthetic adapter (SettingRefused otherwise). */
function maxChannelsOf(s: CimInstance, legacy: boolean): number | undefined {
  const raw = s.get('MaxChannels');
  if (raw === null || raw === undefined) return undefined;
  const n = typeof raw === 'bigint' ? Number(raw) : raw;
  if (legacy) throw new SettingRefused('network adapter: MaxChannels is for synthetic adapters (a legacy NE2000 has no VMBus channels)');
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CHANNELS)
    throw new SettingRefused(`network adapter: MaxChannels must be an integer from 1 to ${MAX_CHANNELS}, not ${String(raw)}`);
  return n;
}

/** A switch as settings refer to it: its GUID (Msvm_VirtualEthernetSwitch.Name) and name. */
export interface SwitchRef {
  id: string;
  name: string;
}

export function adaptersOf(devices: readonly DeviceRecord[]): NetworkAdapterEntry[] {
  return devices.filter((d) => d.kind === 'network-adapter') as unknown as NetworkAdapterEntry[];
}

/**
 * The adapter's MAC: its static one, else one derived from the VM id and the adapter's identity
 * (its instance GUID, or its place among the adapters) inside Hyper-V's 00:15:5D prefix — the
 * same at every start, like the dynamic MAC Hyper-V assigns once and keeps.
 */
export function adapterMac(vmId: string, a: Pick<NetworkAdapterEntry, 'mac' | 'instanceId'>, index: number): string {
  if (a.mac) return a.mac.toLowerCase().replaceAll('-', ':');
  const h = createHash('sha256')
    .update(`${vmId}/nic/${a.instanceId ?? index}`)
    .digest();
  return ['00', '15', '5d', ...[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export function adapterName(a: NetworkAdapterEntry): string {
  return a.name ?? (a.legacy ? 'Legacy Network Adapter' : 'Network Adapter');
}

export function portInstanceId(vmId: string, a: NetworkAdapterEntry, index: number): string {
  return `Microsoft:${vmId}\\${(a.instanceId ?? `nic-${index}`).toUpperCase()}`;
}

export function connectionInstanceId(vmId: string, a: NetworkAdapterEntry, index: number): string {
  return `${portInstanceId(vmId, a, index)}\\C`;
}

/** The MAC as Hyper-V writes Address: 12 upper-case hex digits. */
const wmiMac = (mac: string) => mac.replaceAll(':', '').toUpperCase();

export function switchPath(hostName: string, id: string): string {
  return `\\\\${hostName}\\root\\virtualization\\v2:Msvm_VirtualEthernetSwitch.CreationClassName="Msvm_VirtualEthernetSwitch",Name="${id}"`;
}

/** The port and connection settings of every adapter, in definition order. */
export function networkSettings(
  vmId: string,
  hostName: string,
  devices: readonly DeviceRecord[],
  switches: readonly SwitchRef[],
): { className: string; values: Record<string, unknown> }[] {
  const out: { className: string; values: Record<string, unknown> }[] = [];
  adaptersOf(devices).forEach((a, i) => {
    const port = portInstanceId(vmId, a, i);
    out.push({
      className: a.legacy ? EMULATED_PORT_CLASS : SYNTHETIC_PORT_CLASS,
      values: {
        InstanceID: port,
        ElementName: adapterName(a),
        ResourceType: 10,
        ResourceSubType: a.legacy ? 'Microsoft:Hyper-V:Emulated Ethernet Port' : 'Microsoft:Hyper-V:Synthetic Ethernet Port',
        Address: wmiMac(adapterMac(vmId, a, i)),
        StaticMacAddress: a.mac !== undefined,
        ...(a.legacy ? {} : { MaxChannels: a.maxChannels ?? null }),
      },
    });
    if (a.switch === undefined) return;
    const sw = switches.find((s) => s.name === a.switch);
    out.push({
      className: CONNECTION_CLASS,
      values: {
        InstanceID: connectionInstanceId(vmId, a, i),
        ElementName: 'Ethernet Connection',
        ResourceType: 33,
        ResourceSubType: 'Microsoft:Hyper-V:Ethernet Connection',
        Parent: port,
        // A switch that no longer exists: the connection names it, and the VM does not start.
        HostResource: [sw ? switchPath(hostName, sw.id) : a.switch],
        EnabledState: sw ? 2 : 3,
        ...(a.vlanId !== undefined ? { Address: String(a.vlanId) } : {}),
      },
    });
  });
  return out;
}

const isPortSetting = (s: CimInstance) => {
  const c = s.className.toLowerCase();
  return c === SYNTHETIC_PORT_CLASS.toLowerCase() || c === EMULATED_PORT_CLASS.toLowerCase();
};
const isConnection = (s: CimInstance) => s.className.toLowerCase() === CONNECTION_CLASS.toLowerCase() || s.get('ResourceType') === 33;

export function isNetworkSetting(s: CimInstance): boolean {
  return isPortSetting(s) || isConnection(s) || s.get('ResourceType') === 10;
}

/** The switch a connection's HostResource names: a Msvm_VirtualEthernetSwitch path (by GUID) or a switch name. */
function switchOf(host: unknown, switches: readonly SwitchRef[]): SwitchRef {
  const text = Array.isArray(host) && typeof host[0] === 'string' ? host[0] : '';
  const id = /Name\s*=\s*"([0-9a-fA-F-]{36})"/.exec(text)?.[1]?.toLowerCase();
  const sw = id ? switches.find((s) => s.id === id) : switches.find((s) => s.name === text);
  if (!sw) throw new SettingRefused(`Ethernet connection: HostResource must name a virtual switch of this host (got ${text || 'nothing'})`);
  return sw;
}

/**
 * Adapters (port settings) and connections added to `devices`. A connection names its port in
 * Parent (an InstanceID or WMI path), added before or in the same call. Returns the InstanceIDs
 * of what was added, in order.
 */
export function addNetwork(
  vmId: string,
  devices: readonly DeviceRecord[],
  settings: readonly CimInstance[],
  switches: readonly SwitchRef[],
): { devices: DeviceRecord[]; added: { className: string; instanceId: string }[] } {
  const list = [...devices];
  const added: { className: string; instanceId: string }[] = [];
  const adapters = () => adaptersOf(list);
  for (const s of settings.filter(isPortSetting)) {
    const legacy = s.className.toLowerCase() === EMULATED_PORT_CLASS.toLowerCase();
    const count = adapters().filter((a) => Boolean(a.legacy) === legacy).length;
    if (count >= (legacy ? MAX_LEGACY : MAX_SYNTHETIC))
      throw new SettingRefused(`network adapter: the VM already has ${count} ${legacy ? 'legacy' : 'synthetic'} adapters, the most it can have`);
    const entry: NetworkAdapterEntry = { kind: 'network-adapter', instanceId: randomUUID() };
    if (legacy) entry.legacy = true;
    const name = s.get('ElementName');
    if (typeof name === 'string' && name) entry.name = name;
    const address = s.get('Address');
    if (s.get('StaticMacAddress') === true) {
      if (typeof address !== 'string' || !/^[0-9a-fA-F]{12}$/.test(address.replaceAll(/[:-]/g, '')))
        throw new SettingRefused('network adapter: StaticMacAddress needs Address, 12 hex digits');
      entry.mac = address.replaceAll(/[:-]/g, '').toLowerCase().match(/../g)!.join(':');
    }
    const channels = maxChannelsOf(s, legacy);
    if (channels !== undefined) entry.maxChannels = channels;
    list.push(entry as unknown as DeviceRecord);
    added.push({ className: s.className, instanceId: portInstanceId(vmId, entry, adapters().length - 1) });
  }
  for (const s of settings.filter(isConnection)) {
    const parent = instanceIdOf(String(s.get('Parent') ?? '')).toUpperCase();
    const all = adapters();
    const i = all.findIndex((a, k) => portInstanceId(vmId, a, k).toUpperCase() === parent);
    if (i < 0) throw new SettingRefused(`Ethernet connection: Parent must name a network adapter of this VM (got ${String(s.get('Parent'))})`);
    const sw = switchOf(s.get('HostResource'), switches);
    const at = list.indexOf(all[i] as unknown as DeviceRecord);
    const vlan = s.get('Address');
    list[at] = { ...list[at]!, switch: sw.name, ...(typeof vlan === 'string' && /^\d+$/.test(vlan) ? { vlanId: Number(vlan) } : {}) };
    added.push({ className: CONNECTION_CLASS, instanceId: connectionInstanceId(vmId, all[i]!, i) });
  }
  return { devices: list, added };
}

/**
 * ModifyResourceSettings on an adapter's port setting (Set-VMNetworkAdapter): its MaxChannels
 * (NULL: back to the default) and its ElementName. Null: not a port setting of this VM.
 */
export function modifyNetwork(vmId: string, devices: readonly DeviceRecord[], setting: CimInstance): DeviceRecord[] | null {
  if (!isPortSetting(setting)) return null;
  const id = String(setting.get('InstanceID') ?? '').toUpperCase();
  const adapters = adaptersOf(devices);
  const i = adapters.findIndex((a, k) => portInstanceId(vmId, a, k).toUpperCase() === id);
  if (i < 0) throw new SettingRefused(`network adapter: ${String(setting.get('InstanceID'))} is not an adapter of this VM`);
  const a = adapters[i]!;
  const { maxChannels: _old, ...rest } = a;
  const channels = maxChannelsOf(setting, Boolean(a.legacy));
  const name = setting.get('ElementName');
  const changed: NetworkAdapterEntry = { ...rest, ...(channels !== undefined ? { maxChannels: channels } : {}) };
  if (typeof name === 'string' && name && name !== adapterName(a)) changed.name = name;
  const at = devices.indexOf(a as unknown as DeviceRecord);
  return devices.map((d, k) => (k === at ? (changed as unknown as DeviceRecord) : d));
}

/** Removing a port setting removes the adapter; removing its connection disconnects it. Null: not a network setting of this VM. */
export function removeNetwork(vmId: string, devices: readonly DeviceRecord[], instanceId: string): DeviceRecord[] | null {
  const adapters = adaptersOf(devices);
  const id = instanceId.toUpperCase();
  for (let i = 0; i < adapters.length; i++) {
    const a = adapters[i]!;
    const at = devices.indexOf(a as unknown as DeviceRecord);
    if (portInstanceId(vmId, a, i).toUpperCase() === id) return devices.filter((_, k) => k !== at);
    if (connectionInstanceId(vmId, a, i).toUpperCase() === id) {
      const { switch: _gone, vlanId: _vlan, ...rest } = a;
      return devices.map((d, k) => (k === at ? (rest as unknown as DeviceRecord) : d));
    }
  }
  return null;
}
