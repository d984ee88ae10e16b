/**
 * The tsvisor command tree. Verbs follow the Hyper-V PowerShell cmdlets where one exists. Built by a
 * function so that the man page and the shell completions are generated from the same tree the
 * command parses with.
 */
import { Command } from 'commander';
import { parseSize, runGuestImage } from './run-command.ts';
import { runLinuxGuest } from './run-linux-command.ts';
import { LINUX_GUEST_DEFAULT_MEMORY } from '../x86/linux-guest-vm.ts';
import { registerVmmsCommands } from '../vmms/cli-commands.ts';
import { registerSdkCommands } from './sdk-command.ts';
import { registerManagementCommands } from './management-commands.ts';
import { registerVmCommands } from './vm-commands.ts';
import { registerUserCommands } from './user-commands.ts';
import { registerDiskCommands } from './disk-commands.ts';
import { registerMigrationCommands } from './migration-commands.ts';
import { registerSwitchCommands } from './network-commands.ts';
import { buildGuests, guestImagePath, listGuests } from '../../scripts/build-guests.ts';
import { buildHost } from '../../scripts/build-host.ts';
import { existsSync, writeFileSync } from 'node:fs';
import { MAX_VPS } from '../../hypervisor/partition-control.ts';
import { CommandFailure, wantsJson, wholeNumber } from './management-session.ts';
import { registerServiceCommands } from './service-commands.ts';
import { registerHelpOutputCommands } from './help-output-commands.ts';
import { registerExportImportCommands } from './export-import-commands.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tsvisor')
    .description('A Hyper-V-style partitioned hypervisor for WebAssembly guests')
    .version('0.1.0')
    .option('--verbose', 'with an error, also show the CIM status or Hyper-V return code and job it came from')
    // Usage errors go through the same path as every other error: words, or JSON under --json.
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => {
        if (!wantsJson()) write(text);
      },
    });

  program
    .command('run')
    .description('boot a guest image in a throwaway child partition and stream its console')
    .argument('<image>', 'a guest image (.wasm), the name of a built-in guest such as "hello", or "linux" (Debian\'s kernel on the x86 VP kind)')
    .option('-m, --memory <size>', 'guest memory', '64M')
    .option('--vps <count>', 'virtual processors', '1')
    .option('--cmdline <text>', 'kernel command line in the boot-information block', '')
    .option('--spin <iterations>', 'spin budget of exit waits before sleeping (0 = sleep at once)')
    .option('--counters', "print each VP's exit and interrupt counters at the end")
    .option(
      '--disk <file>',
      'a raw disk image on the emulated IDE controller (repeatable: primary master, primary slave, secondary master, secondary slave)',
      (file: string, prev: string[]) => [...prev, file],
      [] as string[],
    )
    .option(
      '--scsi <file>',
      'a raw disk image as the next LUN of a synthetic SCSI controller on VMBus, offered with the integration services (repeatable)',
      (file: string, prev: string[]) => [...prev, file],
      [] as string[],
    )
    .option(
      '--vsp <module>',
      'your own VSP (a child-SDK module, file.ts or file.ts#ExportedClass) offered on VMBus with the integration services (repeatable)',
      (m: string, prev: string[]) => [...prev, m],
      [] as string[],
    )
    .option('--json', 'the guest console goes to stderr; stdout gets one JSON object with how each VP ended')
    .option('--no-enlightenments', "linux only: v86's own CPU, without the Hyper-V CPUID leaves, MSRs and hypercall page")
    .option('--nic', 'linux only: a synthetic network adapter (hv_netvsc) with user-mode networking through passt (guest 10.0.2.15/24, gateway 10.0.2.2)')
    .action(async (image: string, opts, cmd: Command) => {
      if (image === 'linux' && !existsSync(image)) {
        if (opts.vsp.length > 0) throw new CommandFailure('RUN', 6, '--vsp is not available for the Linux guest yet (see docs/linux-guest.md)');
        if (opts.vps !== '1' || opts.json || opts.spin !== undefined)
          throw new CommandFailure('RUN', 6, 'the Linux guest runs on one x86 VP; --vps, --spin and --json do not apply');
        const memoryBytes = cmd.getOptionValueSource('memory') === 'default' ? LINUX_GUEST_DEFAULT_MEMORY : parseSize(opts.memory);
        process.exitCode = await runLinuxGuest({
          memoryBytes,
          cmdline: opts.cmdline,
          counters: opts.counters,
          noEnlightenments: opts.enlightenments === false,
          scsi: opts.scsi,
          ide: opts.disk,
          nic: Boolean(opts.nic),
        });
        return;
      }
      if (opts.nic) throw new CommandFailure('RUN', 6, '--nic is for the Linux guest (`run linux --nic`)');
      wholeNumber('--vps', opts.vps, 1, MAX_VPS);
      let path = image;
      await buildHost();
      if (!existsSync(path) && listGuests().includes(image)) {
        await buildGuests([image]);
        path = guestImagePath(image);
      }
      if (!existsSync(path))
        throw new CommandFailure('RUN', 6, `there is no guest image "${image}": give a .wasm file or one of the built-in guests (${listGuests().join(', ')})`);
      process.exitCode = await runGuestImage(path, opts);
    });

  program
    .command('build-guests')
    .description('compile the guest images of the child SDK (cached)')
    .option('--force', 'rebuild even when up to date')
    .option('--json', 'machine-readable output')
    .action(async (opts) => {
      const r = await buildGuests(undefined, Boolean(opts.force));
      if (opts.json) console.log(JSON.stringify({ built: r.built, cached: r.cached }));
      else console.log(`guest images: ${r.built.length} built, ${r.cached.length} up to date`);
    });

  const bench = program.command('bench').description('benchmarks (measurements, not tests)');

  bench
    .command('ring')
    .description('VMBus ring throughput between two threads, against a plain copy of the same bytes')
    .option('--quick', 'one short round')
    .option('--rounds <n>', 'rounds over all sizes (the median is reported)')
    .option('--spin-us <n>', 'spin budget before a side sleeps, µs')
    .option('--json <file>', 'write the machine-readable report here')
    .action(async (opts) => {
      const { runRingBench, formatRingBench } = await import('../../bench/ring.ts');
      const report = await runRingBench({
        quick: Boolean(opts.quick),
        rounds: opts.rounds ? Number(opts.rounds) : undefined,
        spinMicros: opts.spinUs ? Number(opts.spinUs) : undefined,
      });
      console.log(formatRingBench(report));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    });

  bench
    .command('exit')
    .description('cost of one exit round trip to the root device thread, adaptive against blocking wait')
    .option('--quick', 'fewer exits')
    .option('--json <file>', 'write the machine-readable report here')
    .action(async (opts) => {
      const { runExitBench, formatExitBench } = await import('../../bench/exit.ts');
      const rows = await runExitBench({ quick: Boolean(opts.quick) });
      console.log(formatExitBench(rows));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(rows, null, 2) + '\n');
    });

  bench
    .command('idle')
    .description('what idle VMs cost: CPU time and wake-ups of each worker for halted guests and guests with a periodic timer')
    .option('--quick', 'two VMs of each kind, 2 s')
    .option('--vms <n>', 'VMs of each kind (default 4)')
    .option('--seconds <s>', 'measured window (default 5)')
    .option('--json <file>', 'write the machine-readable report here')
    .action(async (opts) => {
      const { runIdleBench, formatIdleBench } = await import('../../bench/idle.ts');
      const report = await runIdleBench({
        quick: Boolean(opts.quick),
        ...(opts.vms ? { vms: Number(opts.vms) } : {}),
        ...(opts.seconds ? { seconds: Number(opts.seconds) } : {}),
      });
      console.log(formatIdleBench(report));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    });

  bench
    .command('cpu')
    .description('what the load-time rewrite costs per compute kernel and buys: interrupt lateness of a computing VP, time to park it')
    .option('--quick', 'one round, shorter kernels')
    .option('--budget <n>', 'fuel between preemption points (default TSVISOR_PREEMPT_BUDGET or 1000000)')
    .option('--json <file>', 'write the machine-readable report here')
    .action(async (opts) => {
      const { cpuBenchMain } = await import('../../bench/cpu.ts');
      await cpuBenchMain({ quick: Boolean(opts.quick), budget: opts.budget ? Number(opts.budget) : undefined, json: opts.json });
    });

  bench
    .command('migrate')
    .description('live migration of a 256 MiB VM between two daemons: downtime, rounds, bytes, throughput against the same-run TCP limit')
    .option('--quick', 'idle and 10 MiB/s only')
    .option('--json <file>', 'write the machine-readable report here')
    .action(async (opts) => {
      const { runMigrateBench, formatMigrateBench } = await import('../../bench/migrate.ts');
      const report = await runMigrateBench({ quick: Boolean(opts.quick) });
      console.log(formatMigrateBench(report));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    });

  bench
    .command('sched')
    .description('the CPU scheduler on real VMs: weights 1:2:3 on one CPU, a 25% cap, a 50% reserve against four, ten idle VMs; a cgroup cpu.shares anchor')
    .option('--quick', '1.5 s per scenario')
    .option('--json <file>', 'write the machine-readable report here')
    .action(async (opts) => {
      const { runSchedBench, formatSchedBench } = await import('../../bench/sched.ts');
      const report = await runSchedBench({ quick: Boolean(opts.quick) });
      console.log(formatSchedBench(report));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    });

  bench
    .command('net')
    .description(
      'two VMs on one switch through the emulated NE2000 and the synthetic netvsc: frames/s, Mbit/s, latency, exits and CPU per frame, beside the frame path without VMs',
    )
    .option('--quick', 'fewer frames and pings (about a minute on a loaded 2-core machine)')
    .option('--json <file>', 'write the machine-readable report here')
    .option('--html <file>', 'write the HTML report here (default: next to the JSON, else build/bench-net.html)')
    .action(async (opts) => {
      const { netBenchMain } = await import('../../bench/net.ts');
      await netBenchMain({ quick: Boolean(opts.quick), json: opts.json, html: opts.html });
    });

  bench
    .command('io')
    .description('the main job: emulated IDE (PIO, DMA) against synthetic SCSI on one VM, with the same-run limits')
    .option('--quick', 'fewer I/Os per phase and a smaller disk (under 30 s)')
    .option('--json <file>', 'write the machine-readable report here')
    .option('--html <file>', 'write the HTML report here (default: next to the JSON, else build/bench-io.html)')
    .option('--from <file>', "show a saved run's JSON (table and HTML) instead of measuring")
    .option(
      '--linux',
      'the Linux section in a --quick run too: one boot of the Linux guest, dd through ata_piix and hv_storvsc (about 20 s more on an idle machine)',
    )
    .option('--no-linux', 'leave the Linux section out of a full run')
    .option('--sub-channel-threads <setting>', "the several-queues section's queue-thread row: on (default), off or auto (on with ≥ 4 cores)")
    .option('--no-queues', 'leave the several-queues section (three VMs of two VPs) out')
    .action(async (opts) => {
      const { ioBenchMain, subChannelThreadsSetting } = await import('../../bench/io.ts');
      await ioBenchMain({
        quick: Boolean(opts.quick),
        json: opts.json,
        html: opts.html,
        from: opts.from,
        ...(opts.linux === undefined ? {} : { linux: Boolean(opts.linux) }),
        ...(opts.queues === false ? { queues: false } : {}),
        ...(opts.subChannelThreads ? { subChannelThreads: subChannelThreadsSetting(opts.subChannelThreads) } : {}),
      });
    });

  registerVmmsCommands(program);
  registerVmCommands(program);
  const vmGroup = program.commands.find((c) => c.name() === 'vm')!;
  registerExportImportCommands(vmGroup, () => (vmGroup.opts() as { dataDir?: string }).dataDir);
  registerManagementCommands(program);
  registerSdkCommands(program);
  registerUserCommands(program);
  registerDiskCommands(program);
  registerMigrationCommands(program);
  registerSwitchCommands(program);
  registerServiceCommands(program);
  registerHelpOutputCommands(program);
  return program;
}
