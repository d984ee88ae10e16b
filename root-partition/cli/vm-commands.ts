/**
 * `tsvisor vm …` through the management API, the verbs of the Hyper-V cmdlets: list (Get-VM),
 * show, new (New-VM: DefineSystem with a SCSI controller and the integration services); the state
 * changes come from vm-state-commands.ts, stop, rm and set from vm-edit-commands.ts, devices
 * (scsi, drive, ic) from vm-device-commands.ts, wait and kvp from vm-wait-commands.ts.
 * The `vm` group and its socket-only verbs (console, heartbeat…) come from vmms/cli-commands.ts;
 * the verbs here replace those of the same name.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { LINUX_GUEST_MANIFEST } from '../x86/linux-guest-files.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { CimInstance } from '../management/cim/instance.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import { MAX_VPS } from '../../hypervisor/partition-control.ts';
import { INTEGRATION_SETTING_NAMES, IntegrationServiceSettings } from '../management/provider/device-settings.ts';
import {
  callMethod,
  CommandFailure,
  findVm,
  healthText,
  parseSize,
  servicePath,
  stateText,
  verb,
  VM_FILTER,
  wholeNumber,
  withManagement,
} from './management-session.ts';
import { registerStateChanges } from './vm-state-commands.ts';
import { instanceJson, printJson, printTable, valueText } from './table.ts';
import { registerStopAndEdit } from './vm-edit-commands.ts';
import { registerDeviceCommands } from './vm-device-commands.ts';
import { registerVspCommands } from './vm-vsp-commands.ts';
import { registerNicCommands } from './network-commands.ts';
import { registerWaitAndKvp } from './vm-wait-commands.ts';
import { registerCheckpointCommands } from './checkpoint-commands.ts';

const schema = createVirtualizationSchema();
const MiB = 1024 * 1024;

function uptime(ms: bigint | number | null | undefined): string {
  const s = Math.floor(Number(ms ?? 0) / 1000);
  return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

async function settingsOf(c: ManagementClient, vm: CimInstance): Promise<{ vssd: CimInstance; resources: CimInstance[]; components: CimInstance[] }> {
  const path = `Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${String(vm.get('Name'))}"`;
  const [vssd] = await c.query(`ASSOCIATORS OF {${path}} WHERE AssocClass = Msvm_SettingsDefineState ResultClass = Msvm_VirtualSystemSettingData`);
  if (!vssd) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `VM ${String(vm.get('ElementName'))} has no settings`);
  const resources = await c.query(
    `ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="${String(vssd.get('InstanceID')).replace(/\\/g, '\\\\')}"} WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent`,
  );
  const components = await c.query(`ASSOCIATORS OF {${path}} WHERE AssocClass = Msvm_SystemDevice`);
  return { vssd, resources, components };
}

/** Set-VMProcessor's settings (Msvm_ProcessorSettingData, thousandths of a percent) and each running VP's load (Msvm_Processor). */
function cpuRows(resources: CimInstance[], components: CimInstance[]): [string, string][] {
  const p = resources.find((r) => r.className === 'Msvm_ProcessorSettingData');
  const rows: [string, string][] = p
    ? [
        [
          'CPU',
          `reserve ${Number(p.get('Reservation') ?? 0) / 1000}%, maximum ${Number(p.get('Limit') ?? 100000) / 1000}%, weight ${valueText(p.get('Weight'))}`,
        ],
      ]
    : [];
  const loads = components.filter((c) => c.className === 'Msvm_Processor').map((c) => `${valueText(c.get('LoadPercentage'))}%`);
  if (loads.length) rows.push(['CPU usage', loads.join(' ')]);
  return rows;
}

function lastError(v: CimInstance): [string, string][] {
  const d = (v.get('StatusDescriptions') as string[] | null)?.[0];
  return d && d !== 'Operating normally' && d !== 'Degraded' ? [['Last error', d]] : [];
}

export function registerVmCommands(program: Command): void {
  const vm = program.commands.find((c) => c.name() === 'vm') ?? program.command('vm').option('--data-dir <dir>', "the service's data directory");
  const dir = () => (vm.opts() as { dataDir?: string }).dataDir;
  const json = (o: { json?: boolean }) => Boolean(o.json);

  verb(vm, 'list')
    .description('Get-VM: every VM with its state, processors, memory and uptime')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const vms = await c.query(`SELECT * FROM Msvm_ComputerSystem WHERE ${VM_FILTER}`);
        const summary = await c.invoke(await servicePath(c), 'GetSummaryInformation', { RequestedInformation: [0, 4, 101, 103] });
        const byId = new Map(((summary.out.SummaryInformation ?? []) as CimInstance[]).map((s) => [String(s.get('Name')), s]));
        if (json(o))
          return printJson(
            vms.map((v) => ({ ...instanceJson(v), Summary: byId.has(String(v.get('Name'))) ? instanceJson(byId.get(String(v.get('Name')))!) : null })),
          );
        printTable(
          ['NAME', 'STATE', 'CPUS', 'CPU(%)', 'MEMORY(M)', 'UPTIME', 'STATUS', 'ID'],
          vms.map((v) => {
            const s = byId.get(String(v.get('Name')));
            return [
              String(v.get('ElementName')),
              stateText(Number(v.get('EnabledState'))),
              valueText(s?.get('NumberOfProcessors')),
              valueText(s?.get('ProcessorLoad')),
              valueText(s?.get('MemoryUsage')),
              uptime(v.get('OnTimeInMilliseconds') as bigint),
              healthText(Number(v.get('HealthState'))),
              String(v.get('Name')),
            ];
          }),
        );
      }),
    );

  verb(vm, 'show <vm>')
    .description('one VM: its state, settings, resources and integration services')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const v = await findVm(c, name);
        const { vssd, resources, components } = await settingsOf(c, v);
        if (json(o))
          return printJson({
            system: instanceJson(v),
            settings: instanceJson(vssd),
            resources: resources.map(instanceJson),
            components: components.map(instanceJson),
          });
        const rows: [string, string][] = [
          ['Name', String(v.get('ElementName'))],
          ['Id', String(v.get('Name'))],
          ['State', `${stateText(Number(v.get('EnabledState')))} (${String(v.get('EnabledState'))})`],
          ['Status', `${healthText(Number(v.get('HealthState')))} (${String(v.get('HealthState'))})`],
          // StatusDescriptions carries the VM's last error (a failed start, a crash, a guest fault).
          ...lastError(v),
          ['Uptime', uptime(v.get('OnTimeInMilliseconds') as bigint)],
          ...cpuRows(resources, components),
          ['Process', valueText(v.get('ProcessID'))],
          ['Accepts', valueText(v.get('AvailableRequestedStates'))],
          ['Image', valueText(vssd.get('GuestImagePath'))],
          ['Command line', valueText(vssd.get('GuestCommandLine'))],
          [
            'Start action',
            ({ 2: 'nothing', 3: 'start-if-running', 4: 'start' } as Record<number, string>)[Number(vssd.get('AutomaticStartupAction'))] ?? 'nothing',
          ],
          ['Stop action', vssd.get('AutomaticShutdownAction') === 3 ? 'save' : 'turn-off'],
          ...((vssd.get('Notes') as string[] | null)?.length ? [['Notes', (vssd.get('Notes') as string[]).join(' ')] as [string, string]] : []),
        ];
        for (const [k, val] of rows) console.log(`${k.padEnd(13)} ${val}`);
        console.log('');
        printTable(
          ['RESOURCE', 'TYPE', 'QUANTITY', 'PARENT/ADDRESS', 'HOST RESOURCE'],
          resources
            .filter((r) => r.get('ResourceType') !== 1)
            .map((r) => [
              String(r.get('ElementName')),
              String(r.get('ResourceSubType') ?? '').replace('Microsoft:Hyper-V:', ''),
              valueText(r.get('VirtualQuantity')),
              [r.get('Parent') ? String(r.get('Parent')).split('\\').slice(-2).join('\\') : '', valueText(r.get('AddressOnParent') ?? r.get('Address'))]
                .filter(Boolean)
                .join(' @ '),
              valueText(r.get('HostResource')),
            ]),
        );
        const ics = components.filter((i) => i.className !== 'Msvm_Processor');
        if (ics.length) {
          console.log('');
          printTable(
            ['INTEGRATION SERVICE', 'STATUS'],
            ics.map((i) => [
              String(i.get('ElementName')),
              Number(v.get('EnabledState')) === 2 ? String((i.get('StatusDescriptions') as string[] | null)?.[0] ?? '') : '',
            ]),
          );
        }
      }),
    );

  verb(vm, 'new <name>')
    .description('New-VM: a generation 1 VM (DefineSystem): both IDE controllers, one SCSI controller, the integration services on')
    .option('--image <path>', 'guest image (.wasm)')
    .option('--linux', 'the built-in Linux guest (npm run build:linux) on the x86 VP kind instead of an image (docs/linux-guest.md)')
    .option('-m, --memory <size>', 'guest memory (default 64M; 128M with --linux)')
    .option('--vps <count>', 'virtual processors', '1')
    .option('--cmdline <text>', "kernel command line (with --linux: appended to the Linux guest's)", '')
    .option('--stop-action <action>', "what the service does with the VM when it stops: 'save' or 'turn-off' (default 'save'; 'turn-off' with --linux)")
    .option('--no-scsi', 'no SCSI controller (add one later with: tsvisor vm scsi add)')
    .option('--no-integration-services', 'the integration services off (enable them later with: tsvisor vm ic enable)')
    .option('--json', 'machine-readable output')
    .action(
      (
        name: string,
        o: {
          image?: string;
          linux?: boolean;
          memory?: string;
          vps: string;
          cmdline: string;
          stopAction?: string;
          scsi: boolean;
          integrationServices: boolean;
          json?: boolean;
        },
      ) =>
        withManagement(dir(), async (c) => {
          if (Boolean(o.image) === Boolean(o.linux)) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, 'give either --image <path> or --linux');
          const stopAction = o.stopAction ?? (o.linux ? 'turn-off' : 'save');
          if (stopAction !== 'save' && stopAction !== 'turn-off')
            throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--stop-action must be 'save' or 'turn-off', not "${stopAction}"`);
          const vps = wholeNumber('--vps', o.vps, 1, MAX_VPS);
          const bytes = parseSize(o.memory ?? (o.linux ? '128M' : '64M'));
          const vssd = schema.createInstance('Msvm_VirtualSystemSettingData', {
            ElementName: name,
            GuestImagePath: o.linux ? LINUX_GUEST_MANIFEST : resolve(o.image!),
            GuestCommandLine: o.cmdline,
            AutomaticShutdownAction: stopAction === 'save' ? 3 : 2,
            ...(o.linux ? { GuestKind: 'linux' } : {}),
          });
          const memory = schema.createInstance('Msvm_MemorySettingData', { ResourceType: 4, VirtualQuantity: BigInt(Math.ceil(bytes / MiB)) });
          const cpu = schema.createInstance('Msvm_ProcessorSettingData', { ResourceType: 3, VirtualQuantity: BigInt(vps) });
          // New-VM's devices: the IDE controllers come with every generation 1 VM; the rest is asked for.
          const scsi = o.scsi
            ? [schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 6, ResourceSubType: 'Microsoft:Hyper-V:Synthetic SCSI Controller' })]
            : [];
          const ics = o.integrationServices
            ? INTEGRATION_SETTING_NAMES.map((ic) => schema.createInstance(IntegrationServiceSettings[ic].className, { ResourceType: 1, EnabledState: 2 }))
            : [];
          const { outcome } = await callMethod(
            c,
            await servicePath(c),
            'DefineSystem',
            { SystemSettings: vssd, ResourceSettings: [memory, cpu, ...scsi, ...ics] },
            { progress: !o.json, label: 'Defining' },
          );
          const created = await c.get(outcome.out.ResultingSystem as never);
          if (o.json) printJson(instanceJson(created));
          else console.log(`${name}: defined, id ${String(created.get('Name'))}`);
        }),
    );

  registerStateChanges(vm, dir);
  registerStopAndEdit(vm, dir);
  registerDeviceCommands(vm, dir);
  registerVspCommands(vm, dir);
  registerNicCommands(vm, dir);
  registerWaitAndKvp(vm, dir);
  registerCheckpointCommands(vm, dir);
}
