/**
 * The device entries of a VM definition (`devices: [...]`) — what an operator configures, in
 * Hyper-V's terms — their validation, and their mapping to the `VmDeviceConfig` the worker's
 * device thread builds from:
 *
 *   { kind: 'ide-disk', controller: 0|1, position: 0|1, path?: '/abs/disk.raw', readOnly?: bool }
 *   { kind: 'scsi-controller', instanceId?: GUID, disks: [{ location: 0..63, path?, readOnly? }] }
 *   { kind: 'integration-services', heartbeat?: bool, shutdown?: bool, timeSync?: bool, kvp?: bool }
 *   { kind: 'user-vsp', module: '/abs/my-vsp.ts', export?: 'MyVsp' }   (the operator's own VSP)
 *   { kind: 'network-adapter', name?: 'text', legacy?: bool, mac?: '00:15:5d:01:02:03', switch?: 'switch name',
 *     vlanId?: 1..4094, instanceId?: GUID }
 *
 * A network adapter without `mac` gets one derived from the VM id and its instanceId (or its place
 * among the adapters), inside Hyper-V's 00:15:5D prefix, so it is the same at every start (the
 * "dynamic" MAC of Hyper-V, fixed for the adapter's life); one without `switch` is not connected.
 *
 * A drive without `path` is an empty drive (Add-VMHardDiskDrive without -Path): it holds its
 * place on the controller and the guest sees no disk there.
 *
 * Whether a disk file exists is not checked here: a definition may name a disk that is created
 * later. It is checked when the VM starts (`diskProblems`), and again when the worker opens it.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { DiskConfig, VmDeviceConfig } from '../vmwp/device-config.ts';
import { moduleFileProblem, USER_VSP_EXTENSIONS } from '../vmwp/user-vsp-loader.ts';
import { adapterMac } from '../management/provider/network-settings.ts';

/** Two IDE channels of two drives each (Gen1 PIIX4), as Hyper-V's IDE controllers 0 and 1. */
export const IDE_CONTROLLERS = 2;
/** Hyper-V's limits: 4 synthetic SCSI controllers of 64 locations each. */
export const MAX_SCSI_CONTROLLERS = 4;
export const SCSI_LOCATIONS = 64;

export const DEVICE_KINDS = ['ide-disk', 'scsi-controller', 'integration-services', 'network-adapter', 'user-vsp'] as const;
/** VSP modules a VM may load (each one a VMBus channel). */
export const MAX_USER_VSPS = 16;
/** Hyper-V's limits: 8 synthetic adapters (Gen1: 8) and 4 legacy ones. */
export const MAX_SYNTHETIC_NICS = 8;
export const MAX_LEGACY_NICS = 4;
const MAC = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IC_FLAGS = ['heartbeat', 'shutdown', 'timeSync', 'kvp'] as const;

type Fields = Record<string, unknown>;

function unknownFields(o: Fields, allowed: readonly string[], where: string): string[] {
  return Object.keys(o).filter((k) => !allowed.includes(k)).map((k) => `${where}.${k}: unknown field`);
}

function diskFieldProblems(o: Fields, where: string): string[] {
  const p: string[] = [];
  if (o.path !== undefined && (typeof o.path !== 'string' || !/^\/.+/.test(o.path) || o.path.length > 4096)) p.push(`${where}.path: must be an absolute path to a raw disk image`);
  if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean') p.push(`${where}.readOnly: must be true or false`);
  return p;
}

const isSlot = (v: unknown, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < max;

/** Every problem of a `devices` list, each with the entry it concerns (`devices[2].path: …`). */
export function deviceProblems(devices: readonly unknown[]): string[] {
  const problems: string[] = [];
  const ideSlots = new Map<string, number>();
  let scsiControllers = 0;
  let icEntries = 0;
  let userVsps = 0;
  let syntheticNics = 0;
  let legacyNics = 0;
  devices.forEach((d, i) => {
    const where = `devices[${i}]`;
    if (!d || typeof d !== 'object' || Array.isArray(d)) { problems.push(`${where}: must be an object with a kind`); return; }
    const o = d as Fields;
    switch (o.kind) {
      case 'ide-disk': {
        problems.push(...unknownFields(o, ['kind', 'controller', 'position', 'path', 'readOnly'], where), ...diskFieldProblems(o, where));
        const controller = o.controller ?? 0;
        const position = o.position ?? 0;
        if (!isSlot(controller, IDE_CONTROLLERS)) problems.push(`${where}.controller: must be 0 or 1`);
        if (!isSlot(position, 2)) problems.push(`${where}.position: must be 0 (master) or 1 (slave)`);
        const slot = `${String(controller)}:${String(position)}`;
        if (ideSlots.has(slot)) problems.push(`${where}: IDE controller ${String(controller)} position ${String(position)} is already taken by devices[${ideSlots.get(slot)}]`);
        else ideSlots.set(slot, i);
        break;
      }
      case 'scsi-controller': {
        problems.push(...unknownFields(o, ['kind', 'instanceId', 'disks'], where));
        if (++scsiControllers > MAX_SCSI_CONTROLLERS) problems.push(`${where}: at most ${MAX_SCSI_CONTROLLERS} SCSI controllers`);
        if (o.instanceId !== undefined && (typeof o.instanceId !== 'string' || !GUID.test(o.instanceId))) problems.push(`${where}.instanceId: must be a lower-case GUID`);
        if (!Array.isArray(o.disks)) { problems.push(`${where}.disks: must be an array`); break; }
        const locations = new Set<number>();
        o.disks.forEach((disk: unknown, j: number) => {
          const dw = `${where}.disks[${j}]`;
          if (!disk || typeof disk !== 'object') { problems.push(`${dw}: must be an object`); return; }
          const dd = disk as Fields;
          problems.push(...unknownFields(dd, ['location', 'path', 'readOnly'], dw), ...diskFieldProblems(dd, dw));
          if (!isSlot(dd.location, SCSI_LOCATIONS)) problems.push(`${dw}.location: must be an integer from 0 to ${SCSI_LOCATIONS - 1}`);
          else if (locations.has(dd.location as number)) problems.push(`${dw}.location: ${String(dd.location)} is already taken on this controller`);
          else locations.add(dd.location as number);
        });
        break;
      }
      case 'integration-services':
        problems.push(...unknownFields(o, ['kind', ...IC_FLAGS], where));
        if (++icEntries > 1) problems.push(`${where}: only one integration-services entry`);
        for (const f of IC_FLAGS) if (o[f] !== undefined && typeof o[f] !== 'boolean') problems.push(`${where}.${f}: must be true or false`);
        break;
      case 'user-vsp':
        problems.push(...unknownFields(o, ['kind', 'module', 'export'], where));
        if (++userVsps > MAX_USER_VSPS) problems.push(`${where}: at most ${MAX_USER_VSPS} user VSPs`);
        if (typeof o.module !== 'string' || !o.module.startsWith('/') || o.module.length > 4096 || !USER_VSP_EXTENSIONS.test(o.module)) problems.push(`${where}.module: must be the absolute path of a .ts, .mts, .js or .mjs module`);
        if (o.export !== undefined && (typeof o.export !== 'string' || !/^[A-Za-z_$][\w$]{0,127}$/.test(o.export))) problems.push(`${where}.export: must be the name of an exported class`);
        break;
      case 'network-adapter': {
        problems.push(...unknownFields(o, ['kind', 'name', 'legacy', 'mac', 'switch', 'vlanId', 'instanceId'], where));
        if (o.legacy !== undefined && typeof o.legacy !== 'boolean') problems.push(`${where}.legacy: must be true or false`);
        if (o.legacy === true ? ++legacyNics > MAX_LEGACY_NICS : ++syntheticNics > MAX_SYNTHETIC_NICS) {
          problems.push(`${where}: at most ${o.legacy === true ? `${MAX_LEGACY_NICS} legacy` : `${MAX_SYNTHETIC_NICS} synthetic`} network adapters`);
        }
        if (o.name !== undefined && (typeof o.name !== 'string' || !/^[^\u0000-\u001f/\\]{1,64}$/.test(o.name))) problems.push(`${where}.name: must be 1 to 64 characters without control characters or slashes`);
        if (o.mac !== undefined) {
          if (typeof o.mac !== 'string' || !MAC.test(o.mac)) problems.push(`${where}.mac: must be six hex bytes like 00:15:5d:01:02:03`);
          else if ((parseInt(o.mac.slice(0, 2), 16) & 1) !== 0) problems.push(`${where}.mac: must be a unicast address (${o.mac} is a group address)`);
        }
        if (o.switch !== undefined && (typeof o.switch !== 'string' || o.switch.length === 0 || o.switch.length > 100)) problems.push(`${where}.switch: must be a switch name`);
        if (o.vlanId !== undefined && !(typeof o.vlanId === 'number' && Number.isInteger(o.vlanId) && o.vlanId >= 1 && o.vlanId <= 4094)) problems.push(`${where}.vlanId: must be an integer from 1 to 4094`);
        if (o.instanceId !== undefined && (typeof o.instanceId !== 'string' || !GUID.test(o.instanceId))) problems.push(`${where}.instanceId: must be a lower-case GUID`);
        break;
      }
      default:
        problems.push(`${where}.kind: must be one of ${DEVICE_KINDS.join(', ')}`);
    }
  });
  return problems;
}

interface IdeDiskEntry { kind: 'ide-disk'; controller?: number; position?: number; path?: string; readOnly?: boolean }
interface ScsiControllerEntry { kind: 'scsi-controller'; instanceId?: string; disks: { location: number; path?: string; readOnly?: boolean }[] }
interface IcEntry { kind: 'integration-services'; heartbeat?: boolean; shutdown?: boolean; timeSync?: boolean; kvp?: boolean }
interface UserVspEntry { kind: 'user-vsp'; module: string; export?: string }
interface NicEntry { kind: 'network-adapter'; name?: string; legacy?: boolean; mac?: string; switch?: string; vlanId?: number; instanceId?: string }
type ValidEntry = IdeDiskEntry | ScsiControllerEntry | IcEntry | NicEntry | UserVspEntry;

/**
 * A controller without an instanceId gets one derived from the VM and its place in the list, so
 * the guest sees the same controller identity at every start (a guest may key on it).
 */
function derivedInstanceId(vmId: string, index: number, what = 'scsi'): string {
  const h = createHash('sha256').update(what === 'scsi' ? `${vmId}/scsi/${index}` : `${vmId}/${what}/${index}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The device thread's configuration for a validated definition's `devices`. `switchSocket`
 * resolves an adapter's switch name (VMMS's switches); a name it does not know leaves
 * `switchSocket` unset on an adapter that names a switch (see `nicProblems`).
 */
export function deviceConfig(vmId: string, devices: readonly { kind: string }[], switchSocket?: (name: string) => string | undefined): VmDeviceConfig {
  const entries = devices as readonly ValidEntry[];
  const ide: (DiskConfig | null)[] = [null, null, null, null];
  const config: VmDeviceConfig = {};
  let scsiIndex = 0;
  let nicIndex = 0;
  for (const e of entries) {
    if (e.kind === 'network-adapter') {
      const name = e.name ?? (e.legacy ? 'Legacy Network Adapter' : 'Network Adapter');
      const socket = e.switch !== undefined ? switchSocket?.(e.switch) : undefined;
      (config.nics ??= []).push({
        kind: e.legacy ? 'emulated' : 'synthetic',
        mac: adapterMac(vmId, e, nicIndex),
        name,
        ...(e.legacy ? {} : { instanceId: e.instanceId ?? derivedInstanceId(vmId, nicIndex, 'nic') }),
        ...(socket !== undefined ? { switchSocket: socket } : {}),
        ...(e.vlanId !== undefined ? { vlanId: e.vlanId } : {}),
      });
      nicIndex++;
      continue;
    }
    if (e.kind === 'ide-disk') {
      if (e.path !== undefined) ide[(e.controller ?? 0) * 2 + (e.position ?? 0)] = { path: e.path, readOnly: e.readOnly ?? false };
    } else if (e.kind === 'scsi-controller') {
      (config.scsi ??= []).push({
        instanceId: e.instanceId ?? derivedInstanceId(vmId, scsiIndex),
        disks: e.disks.filter((d): d is typeof d & { path: string } => d.path !== undefined).sort((a, b) => a.location - b.location)
          .map((d) => ({ path: d.path, readOnly: d.readOnly ?? false, location: d.location })),
      });
      scsiIndex++;
    } else if (e.kind === 'integration-services') {
      config.integrationServices = { heartbeat: e.heartbeat ?? true, shutdown: e.shutdown ?? true, timeSync: e.timeSync ?? true, kvp: e.kvp ?? true };
    } else if (e.kind === 'user-vsp') {
      (config.userVsps ??= []).push({ module: e.module, ...(e.export !== undefined ? { export: e.export } : {}) });
    }
  }
  if (ide.some((d) => d !== null)) config.ide = ide;
  return config;
}

/** Adapters that name a switch this host does not have (a VM with one does not start, as on Hyper-V). */
export function nicProblems(devices: readonly { kind: string }[], switchSocket: (name: string) => string | undefined): string[] {
  return (devices as readonly ValidEntry[]).filter((e): e is NicEntry => e.kind === 'network-adapter' && e.switch !== undefined && switchSocket(e.switch) === undefined)
    .map((e) => `network adapter "${e.name ?? 'Network Adapter'}" is connected to switch "${e.switch}", which does not exist`);
}

/** Every disk of a configuration, with where it is attached (for messages). */
export function configDisks(config: VmDeviceConfig): { where: string; disk: DiskConfig }[] {
  const out: { where: string; disk: DiskConfig }[] = [];
  (config.ide ?? []).forEach((d, i) => { if (d) out.push({ where: `IDE controller ${i >> 1} position ${i & 1}`, disk: d }); });
  (config.scsi ?? []).forEach((c, i) => c.disks.forEach((d, j) => out.push({ where: `SCSI controller ${i} location ${d.location ?? j}`, disk: d })));
  return out;
}

/** Every host file a definition names, with what it is for (messages): the image, each disk, each VSP module. */
export function definitionFiles(vmId: string, imagePath: string, devices: readonly { kind: string }[]): { what: string; path: string }[] {
  const config = deviceConfig(vmId, devices);
  return [
    { what: 'guest image', path: imagePath },
    ...configDisks(config).map(({ where, disk }) => ({ what: `disk image (${where})`, path: disk.path })),
    ...(config.userVsps ?? []).map((v) => ({ what: 'VSP module', path: v.module })),
  ];
}

/**
 * What makes the VM's disks unusable right now: a missing file, not a regular file, or a size
 * that is not whole 512-byte sectors. Checked before a worker is started, so the VM stays Off
 * with a message naming the file; the worker checks again as it opens them.
 */
export function diskProblems(config: VmDeviceConfig): string[] {
  const problems: string[] = [];
  for (const { where, disk } of configDisks(config)) {
    try {
      const st = statSync(disk.path);
      if (!st.isFile()) problems.push(`disk image ${disk.path} (${where}) is not a regular file`);
      else if (st.size === 0 || st.size % 512 !== 0) problems.push(`disk image ${disk.path} (${where}) is ${st.size} bytes, not a positive multiple of 512`);
    } catch (e) {
      problems.push(`disk image ${disk.path} (${where}) cannot be used: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  // A VSP module is code the worker will run: its owner and mode are checked as well as its place.
  for (const v of config.userVsps ?? []) {
    const p = moduleFileProblem(v.module);
    if (p) problems.push(`VSP module ${p}`);
  }
  return problems;
}
