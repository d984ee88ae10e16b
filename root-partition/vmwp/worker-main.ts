/**
 * The VMWP process: `node --import tsx worker-main.ts <launch JSON, base64>`. VMMS spawns it
 * detached (its own session, stdio to a file), so it outlives a VMMS crash or restart. It
 * listens on `vmwp-<id>.sock` first and boots the VM second: the first STATUS request is
 * answered once the boot settled, with the error if it failed (the process then exits).
 * It exits when the VM is turned off, saved, or the guest stops by itself.
 */
import { DataDir } from '../host/data-dir.ts';
import { closeLogger, createProcessLogger } from '../host/log.ts';
import { ControlServer } from './control-server.ts';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, shutDownGuest } from './guest-shutdown.ts';
import { VmWorker, type WorkerLaunch } from './vm-worker.ts';
import { CpuSchedulerClient } from './cpu-scheduler-client.ts';
import type { KvpGuestItems } from './kvp-guest-watch.ts';
import { acceptIncomingMigration, migrateToHost, type MigrateRequest } from '../migration/worker-migration.ts';

async function main(): Promise<void> {
  const launch = JSON.parse(Buffer.from(process.argv[2] ?? '', 'base64').toString('utf8')) as WorkerLaunch;
  process.title = `tsvisor-vmwp ${launch.vmId}`;
  const log = createProcessLogger({ dataDir: launch.dataDir, process: `vmwp-${launch.vmId}`, terminal: false }).child({
    component: 'vmwp',
    vmId: launch.vmId,
    vmName: launch.name,
  });
  // The built-in Linux guest runs on the x86 VP kind: its own worker loop (root-partition/x86/linux-worker-main.ts).
  if (launch.guest === 'linux') return (await import('../x86/linux-worker-main.ts')).runLinuxWorker(launch, log);
  const worker = new VmWorker(launch, log);
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    cpu.stop();
    await worker.turnOff().catch(() => {});
    await server.close();
    log.info(`worker exits (${code})`);
    await closeLogger(log);
    process.exit(code);
  };
  let booted: Promise<void> = new Promise(() => {});
  let migration: { cancelled: boolean } | null = null;
  // An arriving VM: its VMMS says it has recorded the VM Running before the source is told so.
  let arrivalRecorded = () => {};
  const recorded = new Promise<void>((r) => {
    arrivalRecorded = r;
  });
  const server = new ControlServer(
    new DataDir(launch.dataDir).workerSocket(launch.vmId),
    (r, reply, fail) => {
      const status = () => ({ state: worker.state, pid: process.pid, vmId: launch.vmId, uptimeMs: Date.now() - worker.startedAt });
      const run = async () => {
        switch (r.operation) {
          case 'STATUS':
            await booted;
            return reply(status());
          case 'PAUSE':
            await worker.pause();
            return reply(status());
          case 'RESUME':
            worker.resume();
            return reply(status());
          case 'RESET':
            await worker.reset();
            return reply(status());
          case 'COUNTERS':
            server.bulk({ kind: 'counters', counters: { ...worker.counters(), consoleLaggingClientDroppedBytes: server.dropped } });
            return reply(status());
          case 'SAVE':
            if (!r.savedStatePath) throw new Error('SAVE needs a saved-state path');
            await worker.save(r.savedStatePath);
            reply(status());
            return void exit(0);
          case 'CHECKPOINT': {
            if (!r.savedStatePath) throw new Error('CHECKPOINT needs a saved-state path');
            const { pauseMs } = await worker.checkpoint(
              r.savedStatePath,
              (r.diskSwitches ?? []).map((s) => ({ from: s.from, to: s.to })),
            );
            return reply({ ...status(), pauseMs });
          }
          case 'MERGE_DISK': {
            // The first switch is the merge; any further ones name files to point at its parent.
            const [m, ...repoint] = r.diskSwitches ?? [];
            if (!m) throw new Error("MERGE_DISK needs the drive's file and its parent");
            if (repoint.some((s) => s.to !== m.to)) throw new Error('MERGE_DISK re-points files only at the file merged into');
            const { switchMs } = await worker.mergeDisk(
              m.from,
              m.to,
              repoint.map((s) => s.from),
            );
            return reply({ ...status(), pauseMs: switchMs });
          }
          case 'HEARTBEAT':
            return reply({ ...status(), heartbeatStatus: await worker.heartbeatStatus() });
          case 'SHUTDOWN': {
            const outcome = await shutDownGuest(worker, {
              force: Boolean(r.force),
              reason: r.reason ?? '',
              timeoutMs: r.timeoutMs || DEFAULT_SHUTDOWN_TIMEOUT_MS,
            });
            reply({ ...status(), shutdownOutcome: outcome });
            // The guest did not stop in time: Stop-VM's fallback is a turn-off.
            if (outcome === 'timed-out') void exit(0);
            return;
          }
          case 'KVP_GET': {
            const value = await worker.kvpGet(r.kvpPool ?? 0, r.kvpKey ?? '');
            return reply({ ...status(), kvpFound: value !== null, kvpValue: value ?? '' });
          }
          case 'KVP_SET': {
            const res = await worker.kvpSet(r.kvpPool ?? 0, r.kvpKey ?? '', r.kvpValue ?? '');
            if (!res.ok) throw Object.assign(new Error(`the guest did not take KVP item ${r.kvpKey}: ${res.reason}`), { code: 'VMWP_ERR_KVP' });
            return reply(status());
          }
          case 'KVP_DELETE': {
            const res = await worker.kvpDelete(r.kvpPool ?? 0, r.kvpKey ?? '');
            if (!res.ok) throw Object.assign(new Error(`the guest did not delete KVP item ${r.kvpKey}: ${res.reason}`), { code: 'VMWP_ERR_KVP' });
            return reply(status());
          }
          case 'CONSOLE_INPUT':
            worker.consoleInput(r.consoleInput ?? new Uint8Array(0));
            return reply(status());
          case 'MIGRATE': {
            if (migration) throw Object.assign(new Error('a migration of this VM is under way'), { code: 'MIGRATION_ERR_BUSY' });
            const m = { cancelled: false };
            migration = m;
            try {
              const summary = await migrateToHost(
                worker,
                JSON.parse(r.migration ?? '{}') as MigrateRequest,
                (p) => server.notify({ kind: 'MIGRATION_PROGRESS', message: JSON.stringify(p) }),
                () => m.cancelled,
              );
              reply({ ...status(), migrationSummary: JSON.stringify(summary) });
            } finally {
              migration = null;
            }
            // The destination runs the VM: this copy ends (its disks were released at the switch-over).
            return void exit(0);
          }
          case 'CANCEL_MIGRATION':
            if (!migration) throw Object.assign(new Error('no migration of this VM is under way'), { code: 'MIGRATION_ERR_NONE' });
            migration.cancelled = true;
            return reply(status());
          case 'ARRIVAL_RECORDED':
            if (!launch.incomingMigration) throw new Error('ARRIVAL_RECORDED is for a VM that arrives by live migration');
            if (worker.state !== 'running') throw new Error(`the arriving VM is ${worker.state}, not running`);
            arrivalRecorded();
            return reply(status());
          case 'TURN_OFF':
            await worker.turnOff();
            reply(status());
            return void exit(0);
          default:
            throw new Error(`unknown operation ${r.operation}`);
        }
      };
      run().catch((e) => {
        if (r.operation === 'STATUS') {
          fail(e);
          void exit(2);
        } else fail(e);
      });
    },
    log,
  );
  const cpu = new CpuSchedulerClient(
    () => worker.currentPartition,
    (r) => server.bulk(r),
    log,
  );
  server.onBulk = (r) => {
    if (r.kind === 'cpu-budget') cpu.onGrant(r);
  };
  worker.on('console', (data: Uint8Array) => server.console(data));
  worker.on('state', (state: string) => server.notify({ kind: 'STATE', state }));
  worker.on('heartbeat', (heartbeatStatus: number) => server.notify({ kind: 'HEARTBEAT', heartbeatStatus }));
  worker.on('kvp', (items: KvpGuestItems) =>
    server.notify({
      kind: 'KVP',
      kvpGuestItems: items.guest.map(([key, value]) => ({ key, value })),
      kvpIntrinsicItems: items.intrinsic.map(([key, value]) => ({ key, value })),
    }),
  );
  worker.on('guest-fault', (message: string) => server.notify({ kind: 'GUEST_FAULT', message }));
  worker.on('disk-failure', (message: string) => server.notify({ kind: 'DISK_FAILURE', message }));
  // Without its devices the VM cannot run: the worker ends, and VMMS reports the VM failed.
  worker.on('device-failure', (message: string) => {
    server.notify({ kind: 'WORKER_ERROR', message });
    void exit(3);
  });
  worker.on('guest-stopped', (exits) => {
    server.notify({ kind: 'GUEST_STOPPED', exits, state: 'stopped' });
    void exit(0);
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void exit(0));
  // A VMMS that disappears must not take the VM with it.
  process.on('SIGHUP', () => {});
  process.on('SIGPIPE', () => {});
  await server.listen();
  booted = launch.incomingMigration ? acceptIncomingMigration(worker, launch.incomingMigration, recorded) : worker.boot();
  cpu.start();
  booted.catch((e: Error) => {
    log.error(`boot failed: ${e.message}`);
    // Give a connected VMMS the answer before leaving; exit anyway if nobody asks.
    setTimeout(() => void exit(2), 3000);
  });
  log.info(`worker ${process.pid} listening on ${server.path}${launch.restoreFrom ? `, restoring ${launch.restoreFrom}` : ''}`);
}

await main();
