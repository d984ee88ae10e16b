/**
 * `tsvisor vm move <vm> --to <host:port> [--storage DIR]` (Move-VM [-IncludeStorage
 * -DestinationStoragePath]: live migration to another host, the drives copied into DIR there with
 * --storage, with a progress bar, or one JSON object under --json; `--cancel` stops a move under
 * way) and
 * `tsvisor host show | trust <fingerprint> | untrust <fingerprint>` (the hosts this one
 * exchanges VMs with, pinned by their certificate's SHA-256 fingerprint).
 */
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { defaultDataDir } from '../host/data-dir.ts';
import { VmmsClient } from '../vmms/vmms-client.ts';
import type { TrustedHost } from '../migration/host-trust.ts';

async function withClient<T>(dataDir: string | undefined, fn: (c: VmmsClient) => Promise<T>): Promise<T> {
  const c = await VmmsClient.connect(dataDir ?? defaultDataDir());
  try {
    return await fn(c);
  } catch (e) {
    const code = (e as { code?: string }).code;
    console.error(`tsvisor: ${code ? `${code}: ` : ''}${(e as Error).message}`);
    process.exitCode = 1;
    return undefined as T;
  } finally {
    c.close();
  }
}

const fmtMs = (v: unknown) => `${Number(v).toFixed(1)} ms`;

export function registerMigrationCommands(program: Command): void {
  const vm = program.commands.find((c) => c.name() === 'vm') ?? program.command('vm').option('--data-dir <dir>', "the service's data directory");
  vm.command('move <vm>')
    .description('Move-VM: live-migrate a running VM to another tsvisor host (its migration port); the definition moves with it')
    .option('--to <host:port>', "the destination host's migration port (it must trust this host, and this host it: tsvisor host trust)")
    .option(
      '--storage <dir>',
      'move the drives too: copy them into this directory on the destination (one of its storage roots) while the VM runs; the files here stay as they are',
    )
    .option('--downtime <ms>', 'the pause the last pre-copy round must fit in', '100')
    .option('--cancel', 'cancel a move of this VM that is under way (it runs on here)')
    .option('--json', "one JSON object with the migration's figures")
    .action((name: string, o: { to?: string; storage?: string; downtime: string; cancel?: boolean; json?: boolean }) =>
      withClient((vm.opts() as { dataDir?: string }).dataDir, async (c) => {
        if (o.cancel) {
          await c.call('move-cancel', { vm: name });
          console.log(o.json ? JSON.stringify({ vm: name, cancelling: true }) : `${name}: cancelling the move`);
          return;
        }
        if (!o.to) throw Object.assign(new Error('--to <host:port> is required'), { code: 'USAGE' });
        const bar =
          !o.json && process.stderr.isTTY
            ? new SingleBar({ format: `moving ${name} [{bar}] {percentage}% {phase}`, hideCursor: true, clearOnComplete: true }, undefined)
            : null;
        bar?.start(100, 0, { phase: 'pre-copy' });
        c.onProgress = (p) => bar?.update(Number(p.percentComplete ?? 0), { phase: String(p.phase ?? '') });
        let summary: Record<string, unknown>;
        try {
          summary = await c.call<Record<string, unknown>>('move', {
            vm: name,
            to: o.to,
            downtimeMs: Number(o.downtime),
            ...(o.storage !== undefined ? { storage: o.storage } : {}),
          });
        } finally {
          bar?.stop();
        }
        if (o.json) return console.log(JSON.stringify({ vm: name, to: o.to, ...summary }));
        console.log(
          `${name}: moved to ${o.to} in ${fmtMs(summary.totalMs)}: downtime ${fmtMs(summary.downtimeMs)}, ${Number(summary.bytesSent)} bytes in ${Number(summary.rounds)} pre-copy rounds (pages per round ${(summary.pagesPerRound as number[]).join(', ')})` +
            (o.storage !== undefined
              ? `; drives copied into ${o.storage} (64 KiB blocks per round ${(summary.diskBlocksPerRound as number[]).join(', ')})`
              : ''),
        );
      }),
    );

  const host =
    program.commands.find((c) => c.name() === 'host') ?? program.command('host').option('--data-dir <dir>', "the service's data directory", defaultDataDir());
  const dir = () => (host.opts() as { dataDir?: string }).dataDir;
  host
    .command('show')
    .description("this host's migration port, certificate fingerprint and the hosts it trusts")
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      withClient(dir(), async (c) => {
        const r = await c.call<{ fingerprint256: string | null; migrationPort: number | null; trusted: TrustedHost[] }>('host-show');
        if (o.json) return console.log(JSON.stringify(r));
        console.log(`certificate SHA-256 ${r.fingerprint256 ?? '-'}; migration port ${r.migrationPort ?? 'none'}`);
        for (const h of r.trusted) console.log(`trusted: ${h.fingerprint256} ${h.name}`);
      }),
    );
  host
    .command('trust <fingerprint>')
    .description('trust a host to send VMs here and receive them from here (its `tsvisor host show` fingerprint; do this on both hosts)')
    .option('--name <name>', 'what to call the host')
    .action((fingerprint: string, o: { name?: string }) =>
      withClient(dir(), async (c) => {
        const h = await c.call<TrustedHost>('host-trust', { fingerprint, name: o.name ?? '' });
        console.log(`trusted ${h.fingerprint256}${h.name ? ` (${h.name})` : ''}`);
      }),
    );
  host
    .command('untrust <fingerprint>')
    .description('stop trusting a host')
    .action((fingerprint: string) =>
      withClient(dir(), async (c) => {
        const r = await c.call<{ removed: boolean }>('host-untrust', { fingerprint });
        console.log(r.removed ? `no longer trusted: ${fingerprint}` : `${fingerprint} was not trusted`);
      }),
    );
}
