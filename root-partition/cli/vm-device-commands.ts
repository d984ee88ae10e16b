/**
 * A VM's devices through the management API, as the Hyper-V cmdlets reach them:
 *   vm scsi list | add | rm      Get-/Add-/Remove-VMScsiController
 *   vm drive list | add | rm     Get-/Add-/Remove-VMHardDiskDrive (IDE and SCSI)
 *   vm ic list | enable | disable Get-/Enable-/Disable-VMIntegrationService
 * Drives are added the way Hyper-V's own tools do it: AddResourceSettings of the drive with
 * Parent = the controller's WMI path, then of the disk with Parent = the drive's.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { CimInstance } from '../management/cim/instance.ts';
import { formatObjectPath, type CimObjectPath } from '../management/cim/object-path.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import { INTEGRATION_SETTING_NAMES, IntegrationServiceSettings, type IntegrationSettingName } from '../management/provider/device-settings.ts';
import { callMethod, CommandFailure, findVm, servicePath, stateText, wholeNumber, withManagement } from './management-session.ts';
import { printJson, printTable } from './table.ts';

const schema = createVirtualizationSchema();

export interface Resources {
  vm: CimInstance;
  vssd: CimInstance;
  settings: CimInstance[];
}

export async function resourcesOf(c: ManagementClient, name: string): Promise<Resources> {
  const vm = await findVm(c, name);
  const id = String(vm.get('Name'));
  const [vssd] = await c.query(
    `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${id}"} WHERE AssocClass = Msvm_SettingsDefineState ResultClass = Msvm_VirtualSystemSettingData`,
  );
  if (!vssd) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `VM '${name}' has no settings`);
  const settings = await c.query(
    `ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="Microsoft:${id}"} WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent`,
  );
  return { vm, vssd, settings };
}

export const pathOf = (i: CimInstance): CimObjectPath => ({ className: i.className, keys: [{ name: 'InstanceID', value: String(i.get('InstanceID')) }] });
/** A WMI path as Hyper-V clients put it into Parent. */
const wmiPath = (p: CimObjectPath) => formatObjectPath(p);

interface Controller {
  type: 'ide' | 'scsi';
  number: number;
  setting: CimInstance;
}
interface Drive {
  type: 'ide' | 'scsi';
  number: number;
  location: number;
  path: string | null;
  drive: CimInstance;
  disk: CimInstance | null;
}

function controllersOf(r: Resources): Controller[] {
  return r.settings
    .filter((s) => s.get('ResourceType') === 5 || s.get('ResourceType') === 6)
    .map((s) => ({ type: s.get('ResourceType') === 5 ? ('ide' as const) : ('scsi' as const), number: Number(s.get('Address')), setting: s }));
}

function drivesOf(r: Resources): Drive[] {
  const controllers = controllersOf(r);
  return r.settings
    .filter((s) => s.get('ResourceType') === 17)
    .map((d) => {
      const c = controllers.find((x) => String(x.setting.get('InstanceID')) === String(d.get('Parent')));
      const disk = r.settings.find((s) => s.get('ResourceType') === 31 && String(s.get('Parent')) === String(d.get('InstanceID'))) ?? null;
      const host = disk?.get('HostResource') as string[] | null | undefined;
      return { type: c?.type ?? 'ide', number: c?.number ?? 0, location: Number(d.get('AddressOnParent')), path: host?.[0] ?? null, drive: d, disk };
    });
}

function controllerType(text: string): 'ide' | 'scsi' {
  const t = text.toLowerCase();
  if (t !== 'ide' && t !== 'scsi') throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--controller-type must be IDE or SCSI, not "${text}"`);
  return t;
}

const vssdRef = (r: Resources) => ({ className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: String(r.vssd.get('InstanceID')) }] });

export async function addSettings(c: ManagementClient, r: Resources, settings: CimInstance[], json: boolean): Promise<CimObjectPath[]> {
  const { outcome } = await callMethod(
    c,
    await servicePath(c),
    'AddResourceSettings',
    { AffectedConfiguration: vssdRef(r), ResourceSettings: settings },
    { progress: !json, label: 'Adding' },
  );
  return (outcome.out.ResultingResourceSettings ?? []) as CimObjectPath[];
}

export async function removeSettings(c: ManagementClient, refs: CimObjectPath[], json: boolean): Promise<void> {
  await callMethod(c, await servicePath(c), 'RemoveResourceSettings', { ResourceSettings: refs }, { progress: !json, label: 'Removing' });
}

/** Hyper-V's and the short names of each integration service, lower case. */
function integrationService(text: string): IntegrationSettingName {
  const t = text.toLowerCase().replace(/[\s_-]+/g, '');
  const found = INTEGRATION_SETTING_NAMES.find(
    (n) =>
      n.toLowerCase() === t || IntegrationServiceSettings[n].name.toLowerCase().replace(/[\s-]+/g, '') === t || (n === 'kvp' && t === 'keyvaluepairexchange'),
  );
  if (!found)
    throw new CommandFailure(
      'CIM_ERR_INVALID_PARAMETER',
      4,
      `there is no integration service "${text}"; the services are ${INTEGRATION_SETTING_NAMES.map((n) => `${n} (${IntegrationServiceSettings[n].name})`).join(', ')}`,
    );
  return found;
}

const COMPONENT_CLASS: Partial<Record<IntegrationSettingName, string>> = {
  heartbeat: 'Msvm_HeartbeatComponent',
  shutdown: 'Msvm_ShutdownComponent',
  kvp: 'Msvm_KvpExchangeComponent',
};

export function registerDeviceCommands(vm: Command, dir: () => string | undefined): void {
  const json = (o: { json?: boolean }) => Boolean(o.json);

  const scsi = vm.command('scsi').description('SCSI controllers (Get-/Add-/Remove-VMScsiController); the VM must be Off to change them');
  scsi
    .command('list <vm>')
    .description('Get-VMScsiController')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const r = await resourcesOf(c, name);
        const drives = drivesOf(r);
        const rows = controllersOf(r)
          .filter((x) => x.type === 'scsi')
          .map((x) => ({ controllerNumber: x.number, drives: drives.filter((d) => d.type === 'scsi' && d.number === x.number).length }));
        if (json(o)) return printJson(rows);
        printTable(
          ['CONTROLLER', 'DRIVES'],
          rows.map((x) => [String(x.controllerNumber), String(x.drives)]),
        );
      }),
    );
  scsi
    .command('add <vm>')
    .description('Add-VMScsiController: one more synthetic SCSI controller (at most 4)')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const r = await resourcesOf(c, name);
        const [added] = await addSettings(
          c,
          r,
          [schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 6, ResourceSubType: 'Microsoft:Hyper-V:Synthetic SCSI Controller' })],
          json(o),
        );
        const number = Number(/\\(\d+)$/.exec(String(added?.keys[0]?.value ?? ''))?.[1] ?? -1);
        if (json(o)) return printJson({ vm: name, controllerNumber: number, instanceId: added?.keys[0]?.value ?? null });
        console.log(`${name}: SCSI controller ${number} added`);
      }),
    );
  scsi
    .command('rm <vm>')
    .description('Remove-VMScsiController: the last SCSI controller, once it holds no drive')
    .option('--controller-number <n>', 'which controller (only the last can go)')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { controllerNumber?: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const r = await resourcesOf(c, name);
        const controllers = controllersOf(r).filter((x) => x.type === 'scsi');
        if (!controllers.length) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `VM '${name}' has no SCSI controller`);
        const number = o.controllerNumber === undefined ? controllers.length - 1 : wholeNumber('--controller-number', o.controllerNumber, 0, 3);
        const target = controllers.find((x) => x.number === number);
        if (!target)
          throw new CommandFailure(
            'CIM_ERR_NOT_FOUND',
            6,
            `VM '${name}' has no SCSI controller ${number} (it has ${controllers.map((x) => x.number).join(', ')})`,
          );
        await removeSettings(c, [pathOf(target.setting)], json(o));
        if (json(o)) return printJson({ vm: name, removedControllerNumber: number });
        console.log(`${name}: SCSI controller ${number} removed`);
      }),
    );

  const drive = vm.command('drive').description('hard disk drives (Get-/Add-/Remove-VMHardDiskDrive); the VM must be Off to change them');
  drive
    .command('list <vm>')
    .description('Get-VMHardDiskDrive: every drive, IDE and SCSI, with its disk')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const drives = drivesOf(await resourcesOf(c, name));
        if (json(o))
          return printJson(
            drives.map((d) => ({ controllerType: d.type.toUpperCase(), controllerNumber: d.number, controllerLocation: d.location, path: d.path })),
          );
        printTable(
          ['CONTROLLER TYPE', 'NUMBER', 'LOCATION', 'PATH'],
          drives.map((d) => [d.type.toUpperCase(), String(d.number), String(d.location), d.path ?? '(empty)']),
        );
      }),
    );
  drive
    .command('add <vm>')
    .description('Add-VMHardDiskDrive: a drive on a controller, with a disk image in it (--path) or empty')
    .option('--path <file>', 'the disk image (raw, whole 512-byte sectors)')
    .option('--controller-type <type>', 'IDE or SCSI', 'IDE')
    .option('--controller-number <n>', 'which controller (default: the first with a free location)')
    .option('--controller-location <n>', 'the place on it (default: the first free)')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { path?: string; controllerType: string; controllerNumber?: string; controllerLocation?: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const type = controllerType(o.controllerType);
        const r = await resourcesOf(c, name);
        const controllers = controllersOf(r).filter((x) => x.type === type);
        if (!controllers.length)
          throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `VM '${name}' has no ${type.toUpperCase()} controller; add one with: tsvisor vm scsi add ${name}`);
        const places = type === 'ide' ? 2 : 64;
        const taken = new Set(
          drivesOf(r)
            .filter((d) => d.type === type)
            .map((d) => `${d.number}:${d.location}`),
        );
        const number =
          o.controllerNumber !== undefined
            ? wholeNumber('--controller-number', o.controllerNumber, 0, type === 'ide' ? 1 : 3)
            : controllers.find((x) => [...Array(places).keys()].some((l) => !taken.has(`${x.number}:${l}`)))?.number;
        const controller = controllers.find((x) => x.number === number);
        if (!controller)
          throw new CommandFailure(
            'CIM_ERR_NOT_FOUND',
            6,
            number === undefined
              ? `every ${type.toUpperCase()} controller of VM '${name}' is full`
              : `VM '${name}' has no ${type.toUpperCase()} controller ${number}`,
          );
        const location =
          o.controllerLocation !== undefined
            ? wholeNumber('--controller-location', o.controllerLocation, 0, places - 1)
            : [...Array(places).keys()].find((l) => !taken.has(`${controller.number}:${l}`));
        if (location === undefined)
          throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 32773, `${type.toUpperCase()} controller ${controller.number} of VM '${name}' is full`);
        const [drivePath] = await addSettings(
          c,
          r,
          [
            schema.createInstance('Msvm_ResourceAllocationSettingData', {
              ResourceType: 17,
              ResourceSubType: 'Microsoft:Hyper-V:Synthetic Disk Drive',
              Parent: wmiPath(pathOf(controller.setting)),
              AddressOnParent: String(location),
            }),
          ],
          json(o),
        );
        if (o.path !== undefined) {
          try {
            await addSettings(
              c,
              r,
              [
                schema.createInstance('Msvm_StorageAllocationSettingData', {
                  ResourceType: 31,
                  ResourceSubType: 'Microsoft:Hyper-V:Virtual Hard Disk',
                  Parent: wmiPath(drivePath!),
                  HostResource: [resolve(o.path)],
                }),
              ],
              json(o),
            );
          } catch (e) {
            await removeSettings(c, [drivePath!], true).catch(() => {});
            throw e;
          }
        }
        const where = `${type.toUpperCase()} ${controller.number}:${location}`;
        if (json(o))
          return printJson({
            vm: name,
            controllerType: type.toUpperCase(),
            controllerNumber: controller.number,
            controllerLocation: location,
            path: o.path !== undefined ? resolve(o.path) : null,
          });
        console.log(`${name}: drive added at ${where}${o.path !== undefined ? ` with ${resolve(o.path)}` : ' (empty)'}`);
      }),
    );
  drive
    .command('rm <vm>')
    .description('Remove-VMHardDiskDrive: the drive at a controller location, with its disk')
    .option('--controller-type <type>', 'IDE or SCSI', 'IDE')
    .requiredOption('--controller-number <n>', 'which controller')
    .requiredOption('--controller-location <n>', 'the place on it')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { controllerType: string; controllerNumber: string; controllerLocation: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const type = controllerType(o.controllerType);
        const number = wholeNumber('--controller-number', o.controllerNumber, 0, type === 'ide' ? 1 : 3);
        const location = wholeNumber('--controller-location', o.controllerLocation, 0, type === 'ide' ? 1 : 63);
        const found = drivesOf(await resourcesOf(c, name)).find((d) => d.type === type && d.number === number && d.location === location);
        if (!found)
          throw new CommandFailure(
            'CIM_ERR_NOT_FOUND',
            6,
            `VM '${name}' has no drive at ${type.toUpperCase()} ${number}:${location}; see its drives with: tsvisor vm drive list ${name}`,
          );
        await removeSettings(c, [pathOf(found.drive)], json(o));
        if (json(o)) return printJson({ vm: name, controllerType: type.toUpperCase(), controllerNumber: number, controllerLocation: location, removed: true });
        console.log(`${name}: drive at ${type.toUpperCase()} ${number}:${location} removed`);
      }),
    );

  const ic = vm.command('ic').description('integration services (Get-/Enable-/Disable-VMIntegrationService); the VM must be Off to change them');
  ic.command('list <vm>')
    .description('Get-VMIntegrationService: each service, whether it is on, and its status while the VM runs')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const r = await resourcesOf(c, name);
        const running = Number(r.vm.get('EnabledState')) === 2;
        const components = await c.query(
          `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${String(r.vm.get('Name'))}"} WHERE AssocClass = Msvm_SystemDevice`,
        );
        const rows = INTEGRATION_SETTING_NAMES.map((n) => {
          const setting = r.settings.find((s) => s.className === IntegrationServiceSettings[n].className);
          const enabled = setting?.get('EnabledState') === 2;
          const component = components.find((x) => x.className === COMPONENT_CLASS[n]);
          // Hyper-V shows a status only for a service that is on in a running VM.
          const status = enabled && running && component ? String((component.get('StatusDescriptions') as string[] | null)?.[0] ?? '') : '';
          return { name: IntegrationServiceSettings[n].name, id: n, enabled, primaryStatusDescription: status };
        });
        if (json(o)) return printJson(rows);
        printTable(
          ['NAME', 'ENABLED', 'STATUS'],
          rows.map((x) => [x.name, x.enabled ? 'True' : 'False', x.primaryStatusDescription]),
        );
        if (!running) console.log(`(VM '${name}' is ${stateText(Number(r.vm.get('EnabledState')))}: statuses show while it runs)`);
      }),
    );
  for (const [verbName, enabled, cmdlet] of [
    ['enable', true, 'Enable-VMIntegrationService'],
    ['disable', false, 'Disable-VMIntegrationService'],
  ] as const) {
    ic.command(`${verbName} <vm> <service...>`)
      .description(`${cmdlet}: heartbeat, shutdown, time-sync, kvp (or Hyper-V's names)`)
      .option('--json', 'machine-readable output')
      .action((name: string, services: string[], o: { json?: boolean }) =>
        withManagement(dir(), async (c) => {
          const wanted = [...new Set(services.map(integrationService))];
          const r = await resourcesOf(c, name);
          const settings = wanted.map((n) => {
            const s = r.settings.find((x) => x.className === IntegrationServiceSettings[n].className);
            if (!s) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `VM '${name}' publishes no ${IntegrationServiceSettings[n].name} setting`);
            return schema.createInstance(s.className, { InstanceID: s.get('InstanceID'), EnabledState: enabled ? 2 : 3 });
          });
          await callMethod(c, await servicePath(c), 'ModifyResourceSettings', { ResourceSettings: settings }, { progress: !o.json, label: verbName });
          const names = wanted.map((n) => IntegrationServiceSettings[n].name);
          if (json(o)) return printJson({ vm: name, services: wanted, enabled });
          console.log(`${name}: ${names.join(', ')} ${enabled ? 'enabled' : 'disabled'}`);
        }),
      );
  }
}
