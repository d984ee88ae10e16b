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
 *     vlanId?: 1..4094, instanceId?: GUID, maxChannels?: 1..64 }
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
import * as v from 'valibot';
import type { DiskConfig, VmDeviceConfig } from '../vmwp/device-config.ts';
import { moduleFileProblem, USER_VSP_EXTENSIONS } from '../vmwp/user-vsp-loader.ts';
import { adapterMac } from '../management/provider/network-settings.ts';
import { absolutePath, acrossEntries, entryPath, exactObject, flag, guid, text, type ListIssue } from './schema-problems.ts';

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
/** VMBus channels a synthetic adapter may run, the primary included (Linux VRSS_CHANNEL_MAX). */
export const MAX_NIC_CHANNELS = 64;
const MAC = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;

const diskPath = () => v.optional(absolutePath('an absolute path to a raw disk image'));
const slot = (max: number, message: string) => v.pipe(v.number(message), v.integer(message), v.minValue(0, message), v.maxValue(max - 1, message));
const instanceId = () => v.optional(guid());

const ideDisk = exactObject({
  kind: v.literal('ide-disk'),
  controller: v.optional(slot(IDE_CONTROLLERS, 'must be 0 or 1')),
  position: v.optional(slot(2, 'must be 0 (master) or 1 (slave)')),
  path: diskPath(),
  readOnly: v.optional(flag()),
});

const scsiDisk = exactObject({
  location: slot(SCSI_LOCATIONS, `must be an integer from 0 to ${SCSI_LOCATIONS - 1}`),
  path: diskPath(),
  readOnly: v.optional(flag()),
});

const scsiController = exactObject({
  kind: v.literal('scsi-controller'),
  instanceId: instanceId(),
  disks: v.pipe(
    v.array(scsiDisk, 'must be an array'),
    acrossEntries((disks, addIssue) => {
      const taken = new Set<number>();
      disks.forEach((d, j) => {
        const location = (d as { location?: unknown } | null)?.location;
        if (!isSlotNumber(location)) return;
        if (taken.has(location)) addIssue({ message: `${location} is already taken on this controller`, path: entryPath(disks, j, 'location') });
        taken.add(location);
      });
    }),
  ),
});

const integrationServices = exactObject({
  kind: v.literal('integration-services'),
  heartbeat: v.optional(flag()),
  shutdown: v.optional(flag()),
  timeSync: v.optional(flag()),
  kvp: v.optional(flag()),
});

const userVsp = exactObject({
  kind: v.literal('user-vsp'),
  module: v.pipe(
    absolutePath('the absolute path of a .ts, .mts, .js or .mjs module'),
    v.regex(USER_VSP_EXTENSIONS, 'must be the absolute path of a .ts, .mts, .js or .mjs module'),
  ),
  export: v.optional(v.pipe(v.string('must be the name of an exported class'), v.regex(/^[A-Za-z_$][\w$]{0,127}$/, 'must be the name of an exported class'))),
});

const networkAdapter = exactObject({
  kind: v.literal('network-adapter'),
  name: v.optional(text(64, /^[^\u0000-\u001f/\\]{1,64}$/, '1 to 64 characters without control characters or slashes')),
  legacy: v.optional(flag()),
  mac: v.optional(
    v.pipe(
      v.string('must be six hex bytes like 00:15:5d:01:02:03'),
      v.regex(MAC, 'must be six hex bytes like 00:15:5d:01:02:03'),
      v.check(
        (mac) => (parseInt(mac.slice(0, 2), 16) & 1) === 0,
        (issue) => `must be a unicast address (${String(issue.input)} is a group address)`,
      ),
    ),
  ),
  switch: v.optional(v.pipe(v.string('must be a switch name'), v.minLength(1, 'must be a switch name'), v.maxLength(100, 'must be a switch name'))),
  vlanId: v.optional(
    v.pipe(
      v.number('must be an integer from 1 to 4094'),
      v.integer('must be an integer from 1 to 4094'),
      v.minValue(1, 'must be an integer from 1 to 4094'),
      v.maxValue(4094, 'must be an integer from 1 to 4094'),
    ),
  ),
  instanceId: instanceId(),
  maxChannels: v.optional(
    v.pipe(
      v.number(`must be an integer from 1 to ${MAX_NIC_CHANNELS}`),
      v.integer(`must be an integer from 1 to ${MAX_NIC_CHANNELS}`),
      v.minValue(1, `must be an integer from 1 to ${MAX_NIC_CHANNELS}`),
      v.maxValue(MAX_NIC_CHANNELS, `must be an integer from 1 to ${MAX_NIC_CHANNELS}`),
    ),
  ),
});

type Fields = Record<string, unknown>;
const isSlotNumber = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

/**
 * The rules across entries: an IDE slot holds one drive; at most MAX_SCSI_CONTROLLERS SCSI
 * controllers, one integration-services entry, MAX_USER_VSPS VSP modules, MAX_SYNTHETIC_NICS and
 * MAX_LEGACY_NICS adapters. Each problem names the entry that breaks the rule.
 */
function deviceRules(devices: readonly unknown[], addIssue: ListIssue): void {
  const ideSlots = new Map<string, number>();
  let scsiControllers = 0,
    icEntries = 0,
    userVsps = 0,
    syntheticNics = 0,
    legacyNics = 0;
  devices.forEach((d, i) => {
    const o = (d && typeof d === 'object' ? d : {}) as Fields;
    const where = entryPath(devices, i);
    switch (o.kind) {
      case 'ide-disk': {
        const controller = o.controller ?? 0,
          position = o.position ?? 0;
        if (!isSlotNumber(controller) || !isSlotNumber(position)) return;
        const key = `${controller}:${position}`;
        const first = ideSlots.get(key);
        if (first !== undefined) addIssue({ message: `IDE controller ${controller} position ${position} is already taken by devices[${first}]`, path: where });
        else ideSlots.set(key, i);
        return;
      }
      case 'scsi-controller':
        if (++scsiControllers > MAX_SCSI_CONTROLLERS) addIssue({ message: `at most ${MAX_SCSI_CONTROLLERS} SCSI controllers`, path: where });
        return;
      case 'integration-services':
        if (++icEntries > 1) addIssue({ message: 'only one integration-services entry', path: where });
        return;
      case 'user-vsp':
        if (++userVsps > MAX_USER_VSPS) addIssue({ message: `at most ${MAX_USER_VSPS} user VSPs`, path: where });
        return;
      case 'network-adapter':
        // Channels are VMBus sub-channels: an NE2000 has one receive ring and no VMBus.
        if (o.legacy === true && o.maxChannels !== undefined)
          addIssue({ message: 'maxChannels is for synthetic adapters (a legacy NE2000 has no VMBus channels)', path: entryPath(devices, i, 'maxChannels') });
        if (o.legacy === true ? ++legacyNics > MAX_LEGACY_NICS : ++syntheticNics > MAX_SYNTHETIC_NICS) {
          addIssue({ message: `at most ${o.legacy === true ? `${MAX_LEGACY_NICS} legacy` : `${MAX_SYNTHETIC_NICS} synthetic`} network adapters`, path: where });
        }
    }
  });
}

/** A VM definition's `devices`: each entry by its kind, then the rules across entries. */
export const DEVICES_SCHEMA = v.pipe(
  v.array(
    v.variant('kind', [ideDisk, scsiController, integrationServices, userVsp, networkAdapter], (issue) =>
      issue.path ? `must be one of ${DEVICE_KINDS.join(', ')}` : 'must be an object with a kind',
    ),
    'must be an array',
  ),
  acrossEntries(deviceRules),
);

interface IdeDiskEntry {
  kind: 'ide-disk';
  controller?: number;
  position?: number;
  path?: string;
  readOnly?: boolean;
}
interface ScsiControllerEntry {
  kind: 'scsi-controller';
  instanceId?: string;
  disks: { location: number; path?: string; readOnly?: boolean }[];
}
interface IcEntry {
  kind: 'integration-services';
  heartbeat?: boolean;
  shutdown?: boolean;
  timeSync?: boolean;
  kvp?: boolean;
}
interface UserVspEntry {
  kind: 'user-vsp';
  module: string;
  export?: string;
}
interface NicEntry {
  kind: 'network-adapter';
  name?: string;
  legacy?: boolean;
  mac?: string;
  switch?: string;
  vlanId?: number;
  instanceId?: string;
  maxChannels?: number;
}
type ValidEntry = IdeDiskEntry | ScsiControllerEntry | IcEntry | NicEntry | UserVspEntry;

/**
 * A controller without an instanceId gets one derived from the VM and its place in the list, so
 * the guest sees the same controller identity at every start (a guest may key on it).
 */
function derivedInstanceId(vmId: string, index: number, what = 'scsi'): string {
  const h = createHash('sha256')
    .update(what === 'scsi' ? `${vmId}/scsi/${index}` : `${vmId}/${what}/${index}`)
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The device thread's configuration for a validated definition's `devices`. `switchSocket`
 * resolves an adapter's switch name (VMMS's switches); a name it does not know leaves
 * `switchSocket` unset on an adapter that names a switch (see `nicProblems`). Each SCSI controller
 * offers a guest that asks one sub-channel per VP beyond the first (storvsc's multi-queue, as
 * Linux asks for it), served on queue threads when the host has the cores (storvsp's 'auto').
 */
export function deviceConfig(
  vmId: string,
  devices: readonly { kind: string }[],
  switchSocket?: (name: string) => string | undefined,
  vpCount = 1,
): VmDeviceConfig {
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
        ...(e.maxChannels !== undefined && !e.legacy ? { maxChannels: e.maxChannels } : {}),
      });
      nicIndex++;
      continue;
    }
    if (e.kind === 'ide-disk') {
      if (e.path !== undefined) ide[(e.controller ?? 0) * 2 + (e.position ?? 0)] = { path: e.path, readOnly: e.readOnly ?? false };
    } else if (e.kind === 'scsi-controller') {
      (config.scsi ??= []).push({
        instanceId: e.instanceId ?? derivedInstanceId(vmId, scsiIndex),
        disks: e.disks
          .filter((d): d is typeof d & { path: string } => d.path !== undefined)
          .sort((a, b) => a.location - b.location)
          .map((d) => ({ path: d.path, readOnly: d.readOnly ?? false, location: d.location })),
        ...(vpCount > 1 ? { maxSubChannels: vpCount - 1 } : {}),
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
  return (devices as readonly ValidEntry[])
    .filter((e): e is NicEntry => e.kind === 'network-adapter' && e.switch !== undefined && switchSocket(e.switch) === undefined)
    .map((e) => `network adapter "${e.name ?? 'Network Adapter'}" is connected to switch "${e.switch}", which does not exist`);
}

/** Every disk of a configuration, with where it is attached (for messages). */
export function configDisks(config: VmDeviceConfig): { where: string; disk: DiskConfig }[] {
  const out: { where: string; disk: DiskConfig }[] = [];
  (config.ide ?? []).forEach((d, i) => {
    if (d) out.push({ where: `IDE controller ${i >> 1} position ${i & 1}`, disk: d });
  });
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
      problems.push(
        `disk image ${disk.path} (${where}) cannot be used: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      );
    }
  }
  // A VSP module is code the worker will run: its owner and mode are checked as well as its place.
  for (const v of config.userVsps ?? []) {
    const p = moduleFileProblem(v.module);
    if (p) problems.push(`VSP module ${p}`);
  }
  return problems;
}
