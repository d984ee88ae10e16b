/** The tsvisor command line. Verbs follow the Hyper-V PowerShell cmdlets where one exists. */
import { Command } from 'commander';
import { runGuestImage } from './run-command.ts';
import { buildGuests, guestImagePath, listGuests } from '../../scripts/build-guests.ts';
import { existsSync } from 'node:fs';

const program = new Command();
program.name('tsvisor').description('A Hyper-V-style partitioned hypervisor for WebAssembly guests').version('0.1.0');

program
  .command('run')
  .description('boot a guest image in a throwaway child partition and stream its console')
  .argument('<image>', 'a guest image (.wasm), or the name of a built-in guest such as "hello"')
  .option('-m, --memory <size>', 'guest memory', '64M')
  .option('--vps <count>', 'virtual processors', '1')
  .option('--cmdline <text>', 'kernel command line in the boot-information block', '')
  .option('--spin <iterations>', 'spin budget of exit waits before sleeping (0 = sleep at once)')
  .option('--counters', 'print each VP\'s exit and interrupt counters at the end')
  .action(async (image: string, opts) => {
    let path = image;
    if (!existsSync(path) && listGuests().includes(image)) {
      await buildGuests([image]);
      path = guestImagePath(image);
    }
    process.exitCode = await runGuestImage(path, opts);
  });

program
  .command('build-guests')
  .description('compile the guest images of the child SDK (cached)')
  .option('--force', 'rebuild even when up to date')
  .action(async (opts) => {
    const r = await buildGuests(undefined, Boolean(opts.force));
    console.log(`guest images: ${r.built.length} built, ${r.cached.length} up to date`);
  });

program.parseAsync().catch((e: Error) => {
  console.error(`tsvisor: ${e.message}`);
  process.exitCode = 1;
});
