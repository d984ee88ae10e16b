/**
 * `tsvisor vm vsp list|add|rm`: the operator's own VSPs (modules written with the child SDK) in a
 * VM, through AddResourceSettings / RemoveResourceSettings of their "tsvisor:User VSP" settings.
 * The module must lie in one of the service's storage roots; the VM must be Off to change them.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import { USER_VSP_SUBTYPE } from '../management/provider/user-vsp-settings.ts';
import { CommandFailure, wholeNumber, withManagement } from './management-session.ts';
import { addSettings, pathOf, removeSettings, resourcesOf, type Resources } from './vm-device-commands.ts';
import { printJson, printTable } from './table.ts';

const schema = createVirtualizationSchema();

function vspsOf(r: Resources) {
  return r.settings
    .filter((s) => s.get('ResourceType') === 1 && s.get('ResourceSubType') === USER_VSP_SUBTYPE)
    .map((s, index) => ({
      index,
      module: String((s.get('HostResource') as string[] | null)?.[0] ?? ''),
      export: String(s.get('Address') ?? '') || null,
      setting: s,
    }));
}

export function registerVspCommands(vm: Command, dir: () => string | undefined): void {
  const json = (o: { json?: boolean }) => Boolean(o.json);
  const vsp = vm.command('vsp').description("your own VSPs (child-SDK modules) offered on the VM's VMBus; the VM must be Off to change them");
  vsp
    .command('list <vm>')
    .description("the VM's own VSPs, in the order they are offered")
    .option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const rows = vspsOf(await resourcesOf(c, name)).map(({ setting: _s, ...v }) => v);
        if (json(o)) return printJson(rows);
        printTable(
          ['#', 'MODULE', 'EXPORT'],
          rows.map((v) => [String(v.index), v.module, v.export ?? '(default)']),
        );
      }),
    );
  vsp
    .command('add <vm> <module>')
    .description("offer a VSP module (.ts/.mjs in a storage root of the service) on the VM's VMBus")
    .option('--export <name>', "the exported VSP class (default: the module's default export, else its only exported class)")
    .option('--json', 'machine-readable output')
    .action((name: string, module: string, o: { export?: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const r = await resourcesOf(c, name);
        const path = resolve(module);
        const [added] = await addSettings(
          c,
          r,
          [
            schema.createInstance('Msvm_ResourceAllocationSettingData', {
              ResourceType: 1,
              OtherResourceType: 'tsvisor User VSP',
              ResourceSubType: USER_VSP_SUBTYPE,
              HostResource: [path],
              Address: o.export ?? '',
            }),
          ],
          json(o),
        );
        if (json(o)) return printJson({ vm: name, module: path, export: o.export ?? null, instanceId: added?.keys[0]?.value ?? null });
        console.log(`${name}: VSP ${path}${o.export ? `#${o.export}` : ''} added`);
      }),
    );
  vsp
    .command('rm <vm> <which>')
    .description("remove one of the VM's own VSPs, by its number in `vm vsp list` or its module path")
    .option('--json', 'machine-readable output')
    .action((name: string, which: string, o: { json?: boolean }) =>
      withManagement(dir(), async (c) => {
        const all = vspsOf(await resourcesOf(c, name));
        const target = /^\d+$/.test(which) ? all[wholeNumber('<which>', which, 0, 1000)] : all.find((v) => v.module === resolve(which));
        if (!target)
          throw new CommandFailure(
            'CIM_ERR_NOT_FOUND',
            6,
            `VM '${name}' has no VSP ${which}${all.length ? ` (it has: ${all.map((v) => `${v.index} ${v.module}`).join(', ')})` : ''}`,
          );
        await removeSettings(c, [pathOf(target.setting)], json(o));
        if (json(o)) return printJson({ vm: name, removed: target.module });
        console.log(`${name}: VSP ${target.module} removed`);
      }),
    );
}
