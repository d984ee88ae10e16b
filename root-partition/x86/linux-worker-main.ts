/**
 * The worker process of a VMMS-managed Linux VM (worker-main.ts hands over when the launch says
 * `guest: 'linux'`): the same control socket, requests and notifications as a WebAssembly VM's
 * worker, served by a LinuxVmWorker. What needs the VM's state captured (save, checkpoint,
 * pause, live migration, live merge) is refused with why; the VM keeps running.
 */
import { DataDir } from '../host/data-dir.ts';
import { closeLogger, type Logger } from '../host/log.ts';
import { ControlServer } from '../vmwp/control-server.ts';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, shutDownGuest } from '../vmwp/guest-shutdown.ts';
import type { KvpGuestItems } from '../vmwp/kvp-guest-watch.ts';
import type { WorkerLaunch } from '../vmwp/vm-worker.ts';
import { LinuxVmWorker } from './linux-vm-worker.ts';

export async function runLinuxWorker(launch: WorkerLaunch, log: Logger): Promise<void> {
  const worker = new LinuxVmWorker(launch, log);
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await worker.turnOff().catch(() => {});
    await server.close();
    log.info(`worker exits (${code})`);
    await closeLogger(log);
    process.exit(code);
  };
  let booted: Promise<void> = new Promise(() => {});
  const server = new ControlServer(
    new DataDir(launch.dataDir).workerSocket(launch.vmId),
    (r, reply, fail) => {
      const status = () => ({ state: worker.state, pid: process.pid, vmId: launch.vmId, uptimeMs: Date.now() - worker.startedAt });
      const run = async () => {
        switch (r.operation) {
          case 'STATUS':
            await booted;
            return reply(status());
          case 'COUNTERS':
            server.bulk({ kind: 'counters', counters: { ...worker.counters(), consoleLaggingClientDroppedBytes: server.dropped } });
            return reply(status());
          case 'HEARTBEAT':
            return reply({ ...status(), heartbeatStatus: await worker.heartbeatStatus() });
          case 'SHUTDOWN': {
            const outcome = await shutDownGuest(worker, {
              force: Boolean(r.force),
              reason: r.reason ?? '',
              timeoutMs: r.timeoutMs || DEFAULT_SHUTDOWN_TIMEOUT_MS,
            });
            reply({ ...status(), shutdownOutcome: outcome });
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
          case 'RESET':
            await worker.reset();
            return reply(status());
          case 'TURN_OFF':
            await worker.turnOff();
            reply(status());
            return void exit(0);
          case 'SAVE':
            return worker.refuse('save');
          case 'CHECKPOINT':
            return worker.refuse('checkpoint');
          case 'PAUSE':
          case 'RESUME':
            return worker.refuse('pause');
          case 'MIGRATE':
          case 'CANCEL_MIGRATION':
            return worker.refuse('migrate');
          case 'MERGE_DISK':
            return worker.refuse('merge');
          default:
            throw new Error(`unknown operation ${r.operation}`);
        }
      };
      run().catch((e) => {
        fail(e);
        if (r.operation === 'STATUS') void exit(2);
      });
    },
    log,
  );
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
  worker.on('device-failure', (message: string) => {
    server.notify({ kind: 'WORKER_ERROR', message });
    void exit(3);
  });
  worker.on('guest-stopped', (exits) => {
    server.notify({ kind: 'GUEST_STOPPED', exits, state: 'stopped' });
    void exit(0);
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void exit(0));
  process.on('SIGHUP', () => {});
  process.on('SIGPIPE', () => {});
  await server.listen();
  if (launch.restoreFrom || launch.incomingMigration) {
    booted = Promise.reject(Object.assign(new Error(worker.refuseText(launch.restoreFrom ? 'save' : 'migrate')), { code: 'VMWP_ERR_LINUX_UNSUPPORTED' }));
  } else booted = worker.boot();
  booted.catch((e: Error) => {
    log.error(`boot failed: ${e.message}`);
    setTimeout(() => void exit(2), 3000);
  });
  log.info(`Linux worker ${process.pid} listening on ${server.path}`);
}
