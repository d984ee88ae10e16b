/** `tsvisor sdk …`: the child SDK as a product (project scaffolding). */
import type { Command } from 'commander';
import { scaffoldProject, type TemplateName } from '../sdk/scaffold.ts';

export function registerSdkCommands(program: Command): void {
  const sdk = program.command('sdk').description('the child SDK: write guests and synthetic devices');
  sdk
    .command('new')
    .description('scaffold a project (a guest image, a VSP and a test that boots one against the other)')
    .argument('<dir>', 'the project directory (created; must be empty)')
    .option('-t, --template <name>', 'device (a VSP and a VSC) or guest (a guest with the integration services)', 'device')
    .option('--device <name>', "the device name for the device template (default: the directory's name, letters and digits)")
    .option('--force', 'write into a directory that already has files')
    .action((dir: string, opts: { template: TemplateName; device?: string; force?: boolean }) => {
      const files = scaffoldProject(dir, { template: opts.template, ...(opts.device ? { device: opts.device } : {}), force: Boolean(opts.force) });
      console.log(`wrote ${files.length} files to ${dir}:`);
      for (const f of files) console.log(`  ${f}`);
      console.log(`next: cd ${dir} && npm test`);
    });
}
