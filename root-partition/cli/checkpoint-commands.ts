/**
 * `tsvisor vm checkpoint …` through Msvm_VirtualSystemSnapshotService, the verbs of the cmdlets:
 *
 *   vm checkpoint <vm> [--name N]            Checkpoint-VM (standard: with saved state when running)
 *   vm checkpoint list <vm>                  Get-VMSnapshot (also: vm checkpoints <vm>)
 *   vm checkpoint apply <vm> <checkpoint>    Restore-VMSnapshot (also: vm restore-checkpoint)
 *   vm checkpoint remove <vm> <checkpoint>   Remove-VMSnapshot [--tree: IncludeAllChildSnapshots] (also: vm rm-checkpoint)
 *
 * A checkpoint is named by its name or its id; every verb takes --json.
 */
import type { Command } from 'commander';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { CimInstance } from '../management/cim/instance.ts';
import type { CimObjectPath } from '../management/cim/object-path.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import { callMethod, CommandFailure, findVm, vmPath, wantsJson, withManagement } from './management-session.ts';
import { instanceJson, printJson, printTable } from './table.ts';

const schema = createVirtualizationSchema();

async function snapshotService(c: ManagementClient): Promise<CimObjectPath> {
  const rows = await c.queryRows('SELECT * FROM Msvm_VirtualSystemSnapshotService');
  if (!rows[0]) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, 'the host publishes no Msvm_VirtualSystemSnapshotService');
  return rows[0].path;
}

interface Checkpoint {
  id: string;
  name: string;
  parent: string | null;
  created: string;
  current: boolean;
  standard: boolean;
  instance: CimInstance;
}

/** The VM's checkpoints, oldest first, with which one the VM runs on from. */
async function checkpointsOf(c: ManagementClient, vm: CimInstance): Promise<Checkpoint[]> {
  const cs = `{Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${String(vm.get('Name'))}"}`;
  const all = await c.query(`ASSOCIATORS OF ${cs} WHERE AssocClass = Msvm_SnapshotOfVirtualSystem`);
  const [current] = await c.query(`ASSOCIATORS OF ${cs} WHERE AssocClass = Msvm_MostCurrentSnapshotInBranch`);
  const idOf = (instanceId: unknown) => String(instanceId ?? '').replace(/^Microsoft:/, '');
  const parentId = (text: unknown) => /InstanceID="Microsoft:([^"]+)"/.exec(String(text ?? ''))?.[1] ?? null;
  return all
    .map((s) => ({
      id: idOf(s.get('InstanceID')),
      name: String(s.get('ElementName')),
      parent: parentId(s.get('Parent')),
      created: String(s.get('CreationTime') ?? ''),
      current: current !== undefined && current.get('InstanceID') === s.get('InstanceID'),
      standard: s.get('IsSaved') === true,
      instance: s,
    }))
    .sort((a, b) => a.created.localeCompare(b.created));
}

function pick(list: Checkpoint[], vmName: string, nameOrId: string): Checkpoint {
  const byId = list.find((c) => c.id === nameOrId.toLowerCase());
  if (byId) return byId;
  const named = list.filter((c) => c.name === nameOrId);
  if (named.length === 1) return named[0]!;
  if (named.length > 1)
    throw new CommandFailure(
      'CIM_ERR_FAILED',
      1,
      `${named.length} checkpoints of VM '${vmName}' are named '${nameOrId}'; use the id (tsvisor vm checkpoint list ${vmName} shows it)`,
    );
  throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `VM '${vmName}' has no checkpoint '${nameOrId}'; see them with: tsvisor vm checkpoint list ${vmName}`);
}

function snapshotPath(cp: Checkpoint): CimObjectPath {
  return { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${cp.id}` }] };
}

function checkpointJson(c: Checkpoint): Record<string, unknown> {
  return { id: c.id, name: c.name, parentId: c.parent, current: c.current, type: c.standard ? 'standard' : 'disks-only', settings: instanceJson(c.instance) };
}

async function create(c: ManagementClient, vmName: string, o: { name?: string; json?: boolean }): Promise<void> {
  const vm = await findVm(c, vmName);
  const { outcome } = await callMethod(
    c,
    await snapshotService(c),
    'CreateSnapshot',
    {
      AffectedSystem: vmPath(c, vm),
      SnapshotType: 2,
      ...(o.name !== undefined ? { SnapshotSettings: schema.createInstance('Msvm_VirtualSystemSettingData', { ElementName: o.name }) } : {}),
    },
    { progress: !o.json, label: 'Creating checkpoint' },
  );
  const id = String((outcome.out.ResultingSnapshot as CimObjectPath | undefined)?.keys[0]?.value ?? '').replace(/^Microsoft:/, '');
  const made = (await checkpointsOf(c, vm)).find((x) => x.id === id);
  if (!made) throw new CommandFailure('CIM_ERR_FAILED', 1, `the checkpoint ${id} was reported made but is not listed`);
  if (o.json) return printJson(checkpointJson(made));
  console.log(
    `${String(vm.get('ElementName'))}: checkpoint '${made.name}' taken (${made.standard ? 'standard: saved state and disks' : 'disks only'}), id ${made.id}`,
  );
}

async function list(c: ManagementClient, vmName: string, o: { json?: boolean }): Promise<void> {
  const vm = await findVm(c, vmName);
  const all = await checkpointsOf(c, vm);
  if (o.json) return printJson(all.map(checkpointJson));
  const nameOf = (id: string | null) => (id === null ? '-' : (all.find((x) => x.id === id)?.name ?? id));
  printTable(
    ['NAME', 'PARENT', 'TYPE', 'CURRENT', 'ID'],
    all.map((x) => [x.name, nameOf(x.parent), x.standard ? 'standard' : 'disks only', x.current ? 'yes' : '', x.id]),
  );
}

async function apply(c: ManagementClient, vmName: string, checkpoint: string, o: { json?: boolean }): Promise<void> {
  const vm = await findVm(c, vmName);
  const cp = pick(await checkpointsOf(c, vm), vmName, checkpoint);
  await callMethod(c, await snapshotService(c), 'ApplySnapshot', { Snapshot: snapshotPath(cp) }, { progress: !o.json, label: 'Applying checkpoint' });
  const after = await c.get(vmPath(c, vm));
  if (o.json) return printJson({ applied: checkpointJson(cp), vm: instanceJson(after) });
  console.log(`${vmName}: checkpoint '${cp.name}' applied; the VM is ${cp.standard ? 'Saved (start it to continue from the checkpoint)' : 'Off'}`);
}

async function remove(c: ManagementClient, vmName: string, checkpoint: string, o: { tree?: boolean; json?: boolean }): Promise<void> {
  const vm = await findVm(c, vmName);
  const cp = pick(await checkpointsOf(c, vm), vmName, checkpoint);
  await callMethod(
    c,
    await snapshotService(c),
    o.tree ? 'DestroySnapshotTree' : 'DestroySnapshot',
    o.tree ? { SnapshotSettingData: snapshotPath(cp) } : { AffectedSnapshot: snapshotPath(cp) },
    { progress: !o.json, label: 'Removing checkpoint' },
  );
  if (o.json) return printJson({ removed: checkpointJson(cp), tree: Boolean(o.tree) });
  console.log(`${vmName}: checkpoint '${cp.name}'${o.tree ? ' and those below it' : ''} removed`);
}

export function registerCheckpointCommands(vm: Command, dir: () => string | undefined): void {
  const group = vm
    .command('checkpoint')
    .description('Checkpoint-VM: `vm checkpoint <vm> [--name N]`; list, apply, remove below')
    .argument('[vm]')
    .option('--name <name>', "the checkpoint's name (default: the VM's name and the time)")
    .option('--json', 'machine-readable output')
    .action((name: string | undefined, o: { name?: string; json?: boolean }) => {
      if (!name) return group.help();
      return withManagement(dir(), (c) => create(c, name, o));
    });
  // The group's own --json would take the flag from its subcommands: read it from the command line.
  const j = <T extends { json?: boolean }>(o: T): T => ({ ...o, json: Boolean(o.json) || wantsJson() });
  group
    .command('list <vm>')
    .description("Get-VMSnapshot: the VM's checkpoints, the one it runs on from marked current")
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) => withManagement(dir(), (c) => list(c, name, j(o))));
  group
    .command('apply <vm> <checkpoint>')
    .description('Restore-VMSnapshot: the VM (turned off first) returns to the checkpoint; a standard one leaves it Saved')
    .option('--json', 'machine-readable output')
    .action((name: string, cp: string, o: { json?: boolean }) => withManagement(dir(), (c) => apply(c, name, cp, j(o))));
  group
    .command('remove <vm> <checkpoint>')
    .description('Remove-VMSnapshot: its differencing disk is merged where the chain needs it')
    .option('--tree', 'also remove every checkpoint below it')
    .option('--json', 'machine-readable output')
    .action((name: string, cp: string, o: { tree?: boolean; json?: boolean }) => withManagement(dir(), (c) => remove(c, name, cp, j(o))));
  // The names the issue gives the verbs, as aliases.
  vm.command('checkpoints <vm>')
    .description('Get-VMSnapshot (= vm checkpoint list)')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) => withManagement(dir(), (c) => list(c, name, o)));
  vm.command('restore-checkpoint <vm> <checkpoint>')
    .description('Restore-VMSnapshot (= vm checkpoint apply)')
    .option('--json', 'machine-readable output')
    .action((name: string, cp: string, o: { json?: boolean }) => withManagement(dir(), (c) => apply(c, name, cp, o)));
  vm.command('rm-checkpoint <vm> <checkpoint>')
    .description('Remove-VMSnapshot (= vm checkpoint remove)')
    .option('--tree', 'also remove every checkpoint below it')
    .option('--json', 'machine-readable output')
    .action((name: string, cp: string, o: { tree?: boolean; json?: boolean }) => withManagement(dir(), (c) => remove(c, name, cp, o)));
}
