/**
 * The CLI's `serve` and `vm …` verbs. `vm` talks to a running VMMS over its socket; the verbs
 * follow the Hyper-V cmdlets (New-VM, Start-VM, Stop-VM -TurnOff/-Save, Suspend-VM, Resume-VM,
 * Save-VM, Remove-VM, Get-VM). A refused state change prints its Hyper-V return code.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { defaultDataDir } from '../host/data-dir.ts';
import { runDaemon } from './daemon.ts';
import { stateName } from './lifecycle.ts';
import type { VmView } from './vm-entry.ts';
import { VmmsClient } from './vmms-client.ts';
import { attachConsole } from './console-attach.ts';
import type { RequestResult } from './vmms.ts';
import type { OrphanWorkerView } from './orphan-workers.ts';

function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMG])?i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`cannot read size "${text}" (examples: 64M, 1G)`);
  const unit = (m[2] ?? '').toUpperCase();
  return Number(m[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1);
}

function row(v: VmView): string {
  return [
    v.name.padEnd(20),
    stateName(v.enabledState).padEnd(9),
    String(v.healthState).padEnd(6),
    `${v.memoryBytes / 1024 / 1024}M`.padEnd(7),
    String(v.vpCount).padEnd(4),
    v.processId ?? '-',
    v.id,
  ].join(' ');
}

async function withClient<T>(dataDir: string | undefined, fn: (c: VmmsClient) => Promise<T>): Promise<T> {
  const c = await VmmsClient.connect(dataDir ?? defaultDataDir());
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function reportChange(r: RequestResult): void {
  if (r.returnValue === 0) console.log(`${r.vm?.name}: ${r.vm?.state}`);
  else {
    console.error(`tsvisor: ${r.error} (return value ${r.returnValue})`);
    process.exitCode = 1;
  }
}

export function registerVmmsCommands(program: Command): void {
  program
    .command('serve')
    .description('run the virtual machine management service (VMMS) for a data directory')
    .option('--data-dir <dir>', 'where definitions, saved states, logs and sockets live', defaultDataDir())
    .option('--memory-budget <size>', 'guest memory all running VMs may hold together (default: half the host RAM)')
    .option('--cim-port <port>', 'CIM-XML over HTTP on 127.0.0.1; 0 picks a free one, "none" serves none (default 5988, skipped if taken)')
    .option('--cim-https-port <port>', 'CIM-XML over HTTPS; 0 picks a free one, "none" serves none (default 5989, skipped if taken)')
    .option('--cim-host <address>', 'the HTTPS address (default 127.0.0.1; plain HTTP is loopback only)')
    .option('--tls-cert <file>', 'the HTTPS certificate (PEM; default: one made at first start, <data-dir>/cim-tls.crt)')
    .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
    .option(
      '--storage-root <dir>',
      'a directory VM disks and guest images may come from, besides <data-dir>/disks and the built guest images (repeatable)',
      (dir: string, prev: string[]) => [...prev, resolve(dir)],
      [] as string[],
    )
    .option('--no-cim', 'serve no CIM-XML (the client socket still serves the management API)')
    .option(
      '--web-port <port>',
      'the web console (HTTPS with the CIM-XML certificate); 0 picks a free one, "none" serves none (default 5990, skipped if taken)',
    )
    .option('--web-host <address>', "the web console's address (default 127.0.0.1; with --web-http loopback only)")
    .option('--web-http', 'serve the web console over plain HTTP (loopback only) instead of HTTPS')
    .option('--no-web', 'serve no web console')
    .option(
      '--migration-port <port>',
      'accept live migrations from trusted hosts on this TCP port (mutual TLS with the --tls-cert identity); 0 picks a free one (default: none)',
    )
    .option('--migration-host <address>', "the migration port's address (default 0.0.0.0)")
    .option(
      '--host-cpus <n>',
      "CPUs given to guests: what the CPU scheduler shares out and reserves are admitted against (default: all the host's; fractions allowed)",
    )
    .action(
      async (opts: {
        migrationPort?: string;
        migrationHost?: string;
        hostCpus?: string;
        dataDir: string;
        memoryBudget?: string;
        cimPort?: string;
        cimHttpsPort?: string;
        cimHost?: string;
        tlsCert?: string;
        tlsKey?: string;
        storageRoot: string[];
        cim: boolean;
        webPort?: string;
        webHost?: string;
        webHttp?: boolean;
        web: boolean;
      }) => {
        const port = (text: string) => (text === 'none' ? null : Number(text));
        const hostCpus = opts.hostCpus === undefined ? undefined : Number(opts.hostCpus);
        if (hostCpus !== undefined && !(hostCpus > 0 && hostCpus <= 4096))
          throw new Error(`--host-cpus must be a number of CPUs above 0, not "${opts.hostCpus}"`);
        await runDaemon({
          ...(hostCpus !== undefined ? { hostCpus } : {}),
          dataDir: resolve(opts.dataDir),
          ...(opts.memoryBudget ? { limits: { memoryBudgetBytes: parseSize(opts.memoryBudget) } } : {}),
          ...(!opts.cim
            ? { cimPort: null, cimHttpsPort: null }
            : {
                ...(opts.cimPort !== undefined ? { cimPort: port(opts.cimPort) } : {}),
                ...(opts.cimHttpsPort !== undefined ? { cimHttpsPort: port(opts.cimHttpsPort) } : {}),
              }),
          ...(opts.cimHost ? { cimHost: opts.cimHost } : {}),
          ...(opts.tlsCert ? { tlsCertFile: resolve(opts.tlsCert) } : {}),
          ...(opts.tlsKey ? { tlsKeyFile: resolve(opts.tlsKey) } : {}),
          storageRoots: opts.storageRoot,
          ...(!opts.web ? { webPort: null } : opts.webPort !== undefined ? { webPort: port(opts.webPort) } : {}),
          ...(opts.webHost ? { webHost: opts.webHost } : {}),
          ...(opts.webHttp ? { webHttp: true } : {}),
          ...(opts.migrationPort !== undefined ? { migrationPort: port(opts.migrationPort) } : {}),
          ...(opts.migrationHost ? { migrationHost: opts.migrationHost } : {}),
        });
      },
    );

  const vm = program
    .command('vm')
    .description('manage VMs through a running `tsvisor serve`')
    .option('--data-dir <dir>', "the service's data directory", defaultDataDir());
  const dir = () => (vm.opts() as { dataDir: string }).dataDir;

  vm.command('list')
    .description('Get-VM: every VM with its state')
    .action(() =>
      withClient(dir(), async (c) => {
        const vms = await c.call<VmView[]>('list');
        console.log(['NAME'.padEnd(20), 'STATE'.padEnd(9), 'HEALTH', 'MEMORY ', 'VPS ', 'PID', 'ID'].join(' '));
        for (const v of vms) console.log(row(v));
        const errors = await c.call<{ file: string; message: string }[]>('load-errors');
        for (const e of errors) console.error(`not loaded: ${e.message}`);
      }),
    );
  vm.command('show <vm>')
    .description('one VM as JSON')
    .action((name: string) => withClient(dir(), async (c) => console.log(JSON.stringify(await c.call('show', { vm: name }), null, 2))));
  vm.command('new <name>')
    .description('New-VM: define a VM')
    .requiredOption('--image <path>', 'guest image (.wasm)')
    .option('-m, --memory <size>', 'guest memory', '64M')
    .option('--vps <count>', 'virtual processors', '1')
    .option('--cmdline <text>', 'kernel command line', '')
    .option('--stop-action <action>', "automatic stop action when the service stops: 'save' or 'turn-off'", 'save')
    .action((name: string, o: { image: string; memory: string; vps: string; cmdline: string; stopAction: string }) =>
      withClient(dir(), async (c) => {
        const v = await c.call<VmView>('new', {
          name,
          imagePath: resolve(o.image),
          memoryBytes: parseSize(o.memory),
          vpCount: Number(o.vps),
          cmdline: o.cmdline,
          automaticStopAction: o.stopAction,
        });
        console.log(`${v.name}: defined, id ${v.id}`);
      }),
    );
  for (const [verb, method, what] of [
    ['start', 'start', 'Start-VM (restores a Saved VM, resumes a Paused one)'],
    ['pause', 'pause', 'Suspend-VM'],
    ['resume', 'resume', 'Resume-VM'],
    ['save', 'save', 'Save-VM'],
    ['reset', 'reset', 'Restart-VM -Force'],
  ] as const) {
    vm.command(`${verb} <vm>`)
      .description(what)
      .action((name: string) => withClient(dir(), async (c) => reportChange(await c.call<RequestResult>(method, { vm: name }))));
  }
  vm.command('stop <vm>')
    .description('Stop-VM: shut the guest down through its shutdown integration service (turned off if it does not stop in time); -TurnOff or -Save')
    .option('--turn-off', 'turn the VM off at once (pulling the plug)')
    .option('--save', 'save instead of shutting down')
    .option('--timeout <seconds>', 'how long the guest has to shut down before it is turned off', '30')
    .option('--force', 'ask the guest to shut down even if applications object')
    .action((name: string, o: { save?: boolean; turnOff?: boolean; timeout: string; force?: boolean }) =>
      withClient(dir(), async (c) => {
        const seconds = Number(o.timeout);
        if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`--timeout must be a number of seconds, not "${o.timeout}"`);
        reportChange(
          await c.call<RequestResult>('stop', {
            vm: name,
            save: Boolean(o.save),
            turnOff: Boolean(o.turnOff),
            timeoutMs: Math.round(seconds * 1000),
            force: Boolean(o.force),
          }),
        );
      }),
    );
  vm.command('heartbeat <vm>')
    .description("Get-VMIntegrationService Heartbeat: the guest's heartbeat status")
    .action((name: string) =>
      withClient(dir(), async (c) => {
        const status = await c.call<number>('heartbeat', { vm: name });
        console.log(
          `${name}: ${({ 2: 'OK', 3: 'Degraded', 12: 'No Contact', 13: 'Lost Communication', 15: 'Paused' } as Record<number, string>)[status] ?? `status ${status}`} (${status})`,
        );
      }),
    );
  vm.command('measure <vm>')
    .description("Measure-VM: the VM's average CPU since metering was reset (or the VM started); --reset starts a new interval")
    .option('--reset', 'reset metering after reading (Reset-VMResourceMetering)')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { reset?: boolean; json?: boolean }) =>
      withClient(dir(), async (c) => {
        const m = await c.call<{ averagePercent: number; usedMs: number; sinceMs: number }>('measure', { vm: name, reset: Boolean(o.reset) });
        if (o.json) return console.log(JSON.stringify(m));
        console.log(
          `${name}: average CPU ${m.averagePercent.toFixed(1)}% of its processors over ${(m.sinceMs / 1000).toFixed(1)} s (${(m.usedMs / 1000).toFixed(2)} s of CPU)${o.reset ? '; metering reset' : ''}`,
        );
      }),
    );
  vm.command('rm <vm>')
    .description('Remove-VM (Off or Saved VMs)')
    .action((name: string) =>
      withClient(dir(), async (c) => {
        const r = await c.call<RequestResult>('rm', { vm: name });
        if (r.returnValue !== 0) reportChange(r);
        else console.log(`${name}: removed`);
      }),
    );
  const host = program.command('host').description('the host as VMMS sees it').option('--data-dir <dir>', "the service's data directory", defaultDataDir());
  host
    .command('orphans')
    .description('worker processes still running VMs whose definition no longer loads (deleted, corrupted): they hold host memory until stopped')
    .option('--stop <id>', 'turn off the orphan worker of this VM id (asked first, killed by its pid if it does not go)')
    .option('--json', 'machine-readable output')
    .action((o: { stop?: string; json?: boolean }) =>
      withClient((host.opts() as { dataDir: string }).dataDir, async (c) => {
        if (o.stop) {
          await c.call('stop-orphan', { vm: o.stop });
          console.log(o.json ? JSON.stringify({ stopped: o.stop }) : `${o.stop}: orphan worker stopped`);
          return;
        }
        const orphans = await c.call<OrphanWorkerView[]>('orphans');
        if (o.json) return console.log(JSON.stringify(orphans, null, 2));
        if (!orphans.length) return console.log('no orphan workers');
        console.log(['VM ID'.padEnd(36), 'NAME'.padEnd(20), 'PID'.padEnd(8), 'MEMORY', 'WHY'].join(' '));
        for (const w of orphans)
          console.log(
            [w.vmId.padEnd(36), (w.name || '-').padEnd(20), String(w.processId).padEnd(8), `${w.memoryBytes / 1024 / 1024}M`.padEnd(6), w.reason].join(' '),
          );
      }),
    );
  vm.command('console <vm>')
    .description("attach to a VM's console (COM1): its output so far, then output and input live; Ctrl-] or the end of stdin detaches")
    .action((name: string) => withClient(dir(), (c) => attachConsole(c, name, process)));
}
