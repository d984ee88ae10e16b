/**
 * Virtual switches and network adapters through the management API, as the Hyper-V cmdlets reach them:
 *   switch new <name> [--type private|internal] [--passt] [--forward udp|tcp:H:G ...] [--guest-address A/N] [--gateway G]
 *                                                New-VMSwitch -SwitchType   (switch service DefineSystem)
 *   switch list                                   Get-VMSwitch
 *   switch rm <name>                              Remove-VMSwitch            (DestroySystem)
 *   vm nic list <vm>                              Get-VMNetworkAdapter
 *   vm nic add <vm> [--switch S] [--legacy] [--mac M] [--name N] [--vlan V] [--max-channels C]
 *                                                 Add-VMNetworkAdapter (port, then connection)
 *   vm nic set <vm> <name|mac> --max-channels C|default
 *                                                 Set-VMNetworkAdapter (ModifyResourceSettings of the port;
 *                                                 MaxChannels is a tsvisor extension property)
 *   vm nic rm <vm> <name|mac>                     Remove-VMNetworkAdapter
 * Every verb takes --json.
 */
import type { Command } from 'commander';
import type { CimInstance } from '../management/cim/instance.ts';
import { formatObjectPath, type CimObjectPath } from '../management/cim/object-path.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import { callMethod, CommandFailure, findVm, servicePath, withManagement } from './management-session.ts';
import { printJson, printTable } from './table.ts';

const schema = createVirtualizationSchema();
const PORT_CLASSES = ['Msvm_SyntheticEthernetPortSettingData', 'Msvm_EmulatedEthernetPortSettingData'];
/** VMBus channels a synthetic adapter may run at most (Linux VRSS_CHANNEL_MAX). */
const MAX_CHANNELS = 64;

async function switchServicePath(c: ManagementClient): Promise<CimObjectPath> {
  const rows = await c.queryRows('SELECT * FROM Msvm_VirtualEthernetSwitchManagementService');
  if (!rows[0]) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, 'the host publishes no Msvm_VirtualEthernetSwitchManagementService');
  return rows[0].path;
}

async function findSwitch(c: ManagementClient, name: string): Promise<{ path: CimObjectPath; instance: CimInstance }> {
  const rows = await c.queryRows('SELECT * FROM Msvm_VirtualEthernetSwitch');
  const found = rows.find((r) => r.instance.get('ElementName') === name || r.instance.get('Name') === name.toLowerCase());
  if (!found) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `there is no switch named "${name}"; tsvisor switch list shows them`);
  return found;
}

const switchRow = (s: CimInstance) => ({
  name: String(s.get('ElementName')),
  id: String(s.get('Name')),
  type: String(s.get('SwitchType')),
  connectedPorts: Number(s.get('ConnectedPorts') ?? 0),
  learnedAddresses: Number(s.get('LearnedAddresses') ?? 0),
});

interface Adapter {
  name: string;
  legacy: boolean;
  mac: string;
  staticMac: boolean;
  switch: string | null;
  vlanId: number | null;
  /** Synthetic: the VMBus channels its guest may open (MaxChannels); null = the default (or a legacy adapter). */
  maxChannels: number | null;
  instanceId: string;
  connectionId: string | null;
}

async function adaptersOf(c: ManagementClient, vmName: string): Promise<{ vssdId: string; adapters: Adapter[] }> {
  const vm = await findVm(c, vmName);
  const id = String(vm.get('Name'));
  const settings = await c.query(
    `ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="Microsoft:${id}"} WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent`,
  );
  const switches = (await c.query('SELECT * FROM Msvm_VirtualEthernetSwitch')).map(switchRow);
  const adapters = settings
    .filter((s) => PORT_CLASSES.includes(s.className))
    .map((p): Adapter => {
      const conn = settings.find((s) => s.className === 'Msvm_EthernetPortAllocationSettingData' && String(s.get('Parent')) === String(p.get('InstanceID')));
      const host = String((conn?.get('HostResource') as string[] | undefined)?.[0] ?? '');
      const swId = /Name="([0-9a-f-]{36})"/.exec(host)?.[1];
      const mac =
        String(p.get('Address') ?? '')
          .toLowerCase()
          .match(/../g)
          ?.join(':') ?? '';
      const vlan = conn?.get('Address');
      return {
        name: String(p.get('ElementName')),
        legacy: p.className === PORT_CLASSES[1],
        mac,
        staticMac: p.get('StaticMacAddress') === true,
        switch: conn ? (switches.find((s) => s.id === swId)?.name ?? host) : null,
        vlanId: typeof vlan === 'string' && vlan ? Number(vlan) : null,
        maxChannels: p.get('MaxChannels') === null || p.get('MaxChannels') === undefined ? null : Number(p.get('MaxChannels')),
        instanceId: String(p.get('InstanceID')),
        connectionId: conn ? String(conn.get('InstanceID')) : null,
      };
    });
  return { vssdId: `Microsoft:${id}`, adapters };
}

/** The adapter named `which` (its name or MAC); exactly one, or a CommandFailure saying why not. */
function oneAdapter(adapters: Adapter[], vmName: string, which: string): Adapter {
  const mac = which.toLowerCase().replaceAll('-', ':');
  const matches = adapters.filter((a) => a.name === which || a.mac === mac);
  if (matches.length !== 1)
    throw new CommandFailure(
      'CIM_ERR_NOT_FOUND',
      6,
      matches.length === 0
        ? `VM '${vmName}' has no adapter named or with MAC "${which}"`
        : `${matches.length} adapters are named "${which}"; name one by its MAC`,
    );
  return matches[0]!;
}

/** --max-channels: 1..64, or (where a reset makes sense) "default" = null. */
function channelsOption(text: string, allowDefault: boolean): number | null {
  if (allowDefault && text === 'default') return null;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_CHANNELS)
    throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--max-channels must be 1 to ${MAX_CHANNELS}${allowDefault ? ' or default' : ''}, not "${text}"`);
  return n;
}

export function registerSwitchCommands(program: Command): void {
  const sw = program.command('switch').description('virtual switches (New-/Get-/Remove-VMSwitch)').option('--data-dir <dir>', "the service's data directory");
  const dir = () => sw.opts<{ dataDir?: string }>().dataDir;
  sw.command('new <name>')
    .description(
      "New-VMSwitch: a private switch (VMs only), an internal one (VMs and the host) or an external one (VMs and the host's networks, through passt)",
    )
    .option('--type <type>', 'private, internal or external', 'private')
    .option('--internal', 'the same as --type internal')
    .option('--external', 'the same as --type external (passt is its uplink: VMs reach what the host reaches)')
    .option('--passt', "internal: passt (user-mode networking) as the host's side, started and supervised by the service")
    .option(
      '--forward <spec>',
      'with passt: forward a host port to the guest address, udp|tcp:HOSTPORT:GUESTPORT (repeatable; implies --passt)',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option('--guest-address <a.b.c.d/n>', 'with passt: the address it hands the guest (default 10.0.2.15/24)')
    .option('--gateway <a.b.c.d>', "with passt: its own address, the guest's gateway (default 10.0.2.2)")
    .option('--json', 'machine-readable output')
    .action(
      (
        name: string,
        o: {
          type: string;
          internal?: boolean;
          external?: boolean;
          passt?: boolean;
          forward?: string[];
          guestAddress?: string;
          gateway?: string;
          json?: boolean;
        },
      ) =>
        withManagement(dir(), async (c) => {
          if (o.internal && o.external) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--internal and --external exclude each other');
          const type = o.internal ? 'internal' : o.external ? 'external' : o.type.toLowerCase();
          if (type !== 'private' && type !== 'internal' && type !== 'external')
            throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--type must be private, internal or external, not "${o.type}"`);
          const passt = type === 'external' || Boolean(o.passt || o.forward?.length || o.guestAddress || o.gateway);
          if (passt && type === 'private')
            throw new CommandFailure(
              'CIM_ERR_INVALID_PARAMETER',
              4,
              "passt (--passt, --forward, --guest-address, --gateway) is the host's side of an internal or external switch: add --internal or --external",
            );
          const settings = schema.createInstance('Msvm_VirtualEthernetSwitchSettingData', {
            ElementName: name,
            ...(passt
              ? {
                  HostStack: 'passt',
                  PortForwards: o.forward ?? [],
                  ...(o.guestAddress ? { HostStackGuestAddress: o.guestAddress } : {}),
                  ...(o.gateway ? { HostStackGateway: o.gateway } : {}),
                }
              : {}),
          });
          // An internal switch has a port for the host: HostResource names the host computer system.
          // An external one a port on the host's external Ethernet port, which here is passt.
          const host = (await c.query('SELECT * FROM Msvm_ComputerSystem')).find((s) => !/^[0-9a-f-]{36}$/.test(String(s.get('Name'))));
          const hostName = String(host?.get('Name') ?? 'HOST');
          const uplink = `Msvm_ExternalEthernetPort.CreationClassName="Msvm_ExternalEthernetPort",DeviceID="passt",SystemCreationClassName="Msvm_ComputerSystem",SystemName="${hostName}"`;
          const hostPort =
            type === 'private'
              ? []
              : [
                  schema.createInstance('Msvm_EthernetPortAllocationSettingData', {
                    ResourceType: 33,
                    HostResource: [type === 'external' ? uplink : formatObjectPath(c.systemPath(hostName))],
                  }),
                ];
          const { outcome } = await callMethod(
            c,
            await switchServicePath(c),
            'DefineSystem',
            { SystemSettings: settings, ResourceSettings: hostPort },
            { progress: false, label: 'Creating' },
          );
          const id = String((outcome.out.ResultingSystem as CimObjectPath | undefined)?.keys.find((k) => k.name === 'Name')?.value ?? '');
          if (o.json) return printJson({ name, id, type, ...(passt ? { passt: true } : {}) });
          console.log(`switch ${name} created (${type}${passt ? ', passt' : ''}, ${id})`);
        }),
    );
  sw.command('list')
    .description('Get-VMSwitch')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const rows = (await c.query('SELECT * FROM Msvm_VirtualEthernetSwitch')).map(switchRow);
        if (o.json) return printJson(rows);
        printTable(
          ['NAME', 'TYPE', 'PORTS', 'ADDRESSES', 'ID'],
          rows.map((r) => [r.name, r.type, String(r.connectedPorts), String(r.learnedAddresses), r.id]),
        );
      }),
    );
  sw.command('rm <name>')
    .alias('remove')
    .description('Remove-VMSwitch: adapters connected to it lose their link (their VMs do not start until reconnected)')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const found = await findSwitch(c, name);
        await callMethod(c, await switchServicePath(c), 'DestroySystem', { AffectedSystem: found.path }, { progress: false, label: 'Removing' });
        if (o.json) return printJson({ name, removed: true });
        console.log(`switch ${name} removed`);
      }),
    );
}

export function registerNicCommands(vm: Command, dir: () => string | undefined): void {
  const nic = vm.command('nic').description('network adapters (Get-/Add-/Remove-VMNetworkAdapter); the VM must be Off to change them');
  nic
    .command('list <vm>')
    .description('Get-VMNetworkAdapter')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const { adapters } = await adaptersOf(c, name);
        const rows = adapters.map(({ instanceId: _i, connectionId: _c, ...a }) => a);
        if (o.json) return printJson(rows);
        printTable(
          ['NAME', 'KIND', 'MAC', 'SWITCH', 'VLAN', 'CHANNELS'],
          rows.map((a) => [
            a.name,
            a.legacy ? 'legacy' : 'synthetic',
            `${a.mac}${a.staticMac ? ' (static)' : ''}`,
            a.switch ?? '-',
            a.vlanId === null ? '-' : String(a.vlanId),
            a.legacy ? '-' : a.maxChannels === null ? 'default' : String(a.maxChannels),
          ]),
        );
      }),
    );
  nic
    .command('add <vm>')
    .description('Add-VMNetworkAdapter: a synthetic adapter (or --legacy: an emulated NE2000), connected to --switch')
    .option('--switch <name>', 'the switch to connect it to')
    .option('--legacy', 'an emulated (legacy) adapter')
    .option('--mac <mac>', 'a static MAC (default: one derived for the adapter)')
    .option('--name <name>', 'the adapter name')
    .option('--vlan <id>', 'access VLAN id (1-4094) of its switch port')
    .option('--max-channels <n>', `synthetic: VMBus channels (receive queues) the guest may open, 1-${MAX_CHANNELS} (default 8, at most the host's cores)`)
    .option('--json', 'machine-readable output')
    .action((name: string, o: { switch?: string; legacy?: boolean; mac?: string; name?: string; vlan?: string; maxChannels?: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const { vssdId } = await adaptersOf(c, name);
        const channels = o.maxChannels === undefined ? undefined : channelsOption(o.maxChannels, false);
        if (channels !== undefined && o.legacy)
          throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--max-channels is for synthetic adapters, not --legacy');
        if (o.mac !== undefined && !/^([0-9a-f]{2}[:-]?){5}[0-9a-f]{2}$/i.test(o.mac))
          throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--mac must be six hex bytes like 00:15:5d:01:02:03, not "${o.mac}"`);
        const vlan = o.vlan === undefined ? undefined : Number(o.vlan);
        if (vlan !== undefined && !(Number.isInteger(vlan) && vlan >= 1 && vlan <= 4094))
          throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--vlan must be 1 to 4094, not "${o.vlan}"`);
        const sw = o.switch !== undefined ? await findSwitch(c, o.switch) : undefined;
        const service = await servicePath(c);
        const target = { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: vssdId }] };
        const port = schema.createInstance(o.legacy ? 'Msvm_EmulatedEthernetPortSettingData' : 'Msvm_SyntheticEthernetPortSettingData', {
          ResourceType: 10,
          ResourceSubType: o.legacy ? 'Microsoft:Hyper-V:Emulated Ethernet Port' : 'Microsoft:Hyper-V:Synthetic Ethernet Port',
          ...(o.name ? { ElementName: o.name } : {}),
          ...(o.mac ? { StaticMacAddress: true, Address: o.mac.replaceAll(/[:-]/g, '').toUpperCase() } : {}),
          ...(channels !== undefined ? { MaxChannels: channels } : {}),
        });
        const { outcome } = await callMethod(
          c,
          service,
          'AddResourceSettings',
          { AffectedConfiguration: target, ResourceSettings: [port] },
          { progress: false, label: 'Adding' },
        );
        const portPath = ((outcome.out.ResultingResourceSettings ?? []) as CimObjectPath[])[0];
        if (sw && portPath) {
          // Hyper-V's second step: the connection, Parent = the port's WMI path, HostResource = the switch.
          const connection = schema.createInstance('Msvm_EthernetPortAllocationSettingData', {
            ResourceType: 33,
            ResourceSubType: 'Microsoft:Hyper-V:Ethernet Connection',
            Parent: formatObjectPath(portPath),
            HostResource: [formatObjectPath(sw.path)],
            ...(vlan !== undefined ? { Address: String(vlan) } : {}),
          });
          await callMethod(
            c,
            service,
            'AddResourceSettings',
            { AffectedConfiguration: target, ResourceSettings: [connection] },
            { progress: false, label: 'Connecting' },
          );
        }
        const added = (await adaptersOf(c, name)).adapters.find((a) => a.instanceId === String(portPath?.keys[0]?.value));
        if (o.json) return printJson({ vm: name, adapter: added ? (({ instanceId: _i, connectionId: _c, ...a }) => a)(added) : null });
        console.log(
          `${name}: ${added?.legacy ? 'legacy' : 'synthetic'} adapter "${added?.name}" added, mac ${added?.mac}${added?.switch ? `, on switch ${added.switch}` : ', not connected'}`,
        );
      }),
    );
  nic
    .command('set <vm> <adapter>')
    .description('Set-VMNetworkAdapter: by name or MAC; --max-channels N (1-64) or default')
    .option('--max-channels <n>', `VMBus channels (receive queues) the guest may open, 1-${MAX_CHANNELS}, or "default"`)
    .option('--json', 'machine-readable output')
    .action((name: string, which: string, o: { maxChannels?: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        if (o.maxChannels === undefined) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, 'nothing to set: give --max-channels');
        const channels = channelsOption(o.maxChannels, true);
        const a = oneAdapter((await adaptersOf(c, name)).adapters, name, which);
        if (a.legacy)
          throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `adapter "${a.name}" is a legacy one: only synthetic adapters have VMBus channels`);
        const port = schema.createInstance(PORT_CLASSES[0]!, { InstanceID: a.instanceId, ElementName: a.name, MaxChannels: channels });
        await callMethod(c, await servicePath(c), 'ModifyResourceSettings', { ResourceSettings: [port] }, { progress: false, label: 'Modifying' });
        const now = oneAdapter((await adaptersOf(c, name)).adapters, name, a.mac);
        if (o.json) return printJson({ vm: name, adapter: (({ instanceId: _i, connectionId: _c, ...x }) => x)(now) });
        console.log(`${name}: adapter "${now.name}" runs at most ${now.maxChannels === null ? 'the default number of' : now.maxChannels} channel(s)`);
      }),
    );
  nic
    .command('rm <vm> <adapter>')
    .alias('remove')
    .description('Remove-VMNetworkAdapter: by name or MAC')
    .option('--json', 'machine-readable output')
    .action((name: string, which: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const a = oneAdapter((await adaptersOf(c, name)).adapters, name, which);
        const ref = { className: a.legacy ? PORT_CLASSES[1]! : PORT_CLASSES[0]!, keys: [{ name: 'InstanceID', value: a.instanceId }] };
        await callMethod(c, await servicePath(c), 'RemoveResourceSettings', { ResourceSettings: [ref] }, { progress: false, label: 'Removing' });
        if (o.json) return printJson({ vm: name, removed: a.mac });
        console.log(`${name}: adapter "${a.name}" (${a.mac}) removed`);
      }),
    );
}
