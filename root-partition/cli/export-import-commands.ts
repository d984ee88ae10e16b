/**
 * `tsvisor vm export <vm> <dir>` (Export-VM) and `tsvisor vm import <folder>` (Import-VM) over
 * the service's socket: the folder is Hyper-V's layout (vmms/vm-export-layout.ts). Both take
 * --json; a refusal is a sentence saying what is wrong (docs/cli.md, "Export and import").
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { defaultDataDir } from '../host/data-dir.ts';
import { VmmsClient } from '../vmms/vmms-client.ts';
import type { ExportResult } from '../vmms/vm-export.ts';
import type { ImportResult } from '../vmms/vm-import.ts';
import { CommandFailure } from './management-session.ts';
import { printJson } from './table.ts';

const printJsonOr = (json: boolean | undefined, value: unknown, words: string) => (json ? printJson(value) : console.log(words));

async function withClient<T>(dataDir: string, fn: (c: VmmsClient) => Promise<T>): Promise<T> {
  let c: VmmsClient;
  try {
    c = await VmmsClient.connect(dataDir);
  } catch (e) {
    throw new CommandFailure(
      'no-service',
      null,
      `no tsvisor service is running for ${dataDir}; start one with: tsvisor serve --data-dir ${dataDir}`,
      (e as Error).message,
    );
  }
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

export function registerExportImportCommands(vm: Command, dir: () => string | undefined): void {
  vm.command('export <vm> <dir>')
    .description('Export-VM: the VM (Off or Saved), its disks, saved state and checkpoints to <dir>/<VM name>/, as Hyper-V lays it out')
    .option('--json', 'machine-readable output')
    .action((name: string, to: string, o: { json?: boolean }) =>
      withClient(dir() ?? defaultDataDir(), async (c) => {
        const r = await c.call<ExportResult>('export', { vm: name, dir: resolve(to) });
        printJsonOr(
          o.json,
          r,
          `${r.vm}: exported to ${r.path} (${r.disks.length} disk file${r.disks.length === 1 ? '' : 's'}, ${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'}${r.savedState ? ', saved state' : ''})`,
        );
      }),
    );
  vm.command('import <folder>')
    .description('Import-VM: register the VM of an exported folder (<dir>/<VM name>) in place, or copy it')
    .option('--register', 'use the files where they are (the default)')
    .option('--copy <dir>', 'copy the disks to <dir> first (the export stays as it is)')
    .option('--new-id', 'give the VM a new id (with --copy): import the same export twice')
    .option('--name <name>', "the imported VM's name (default: the exported one)")
    .option('--json', 'machine-readable output')
    .action((folder: string, o: { register?: boolean; copy?: string; newId?: boolean; name?: string; json?: boolean }) =>
      withClient(dir() ?? defaultDataDir(), async (c) => {
        if (o.register && o.copy !== undefined)
          throw new CommandFailure('usage', null, '--register and --copy exclude each other: register the files in place, or copy them');
        if (o.newId && o.copy === undefined) throw new CommandFailure('usage', null, '--new-id needs --copy <dir>: two VMs must not share the same disk files');
        const r = await c.call<ImportResult>('import', {
          folder: resolve(folder),
          ...(o.copy !== undefined ? { copyTo: resolve(o.copy) } : {}),
          newId: Boolean(o.newId),
          ...(o.name !== undefined ? { name: o.name } : {}),
        });
        printJsonOr(
          o.json,
          r,
          `${r.vm}: imported (${r.mode === 'copy' ? 'disks copied' : 'registered in place'}), id ${r.vmId}, ${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'}; ${r.savedState ? 'Saved' : 'Off'}`,
        );
      }),
    );
}
