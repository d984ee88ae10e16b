/**
 * `tsvisor serve`: VMMS as a daemon. Refuses to start when another VMMS serves the same data
 * directory. SIGTERM/SIGINT stop it cleanly, applying each VM's automatic stop action; a client's
 * `shutdown { keepVms: true }` stops it leaving the VMs running for the next VMMS to reattach.
 */
import { connect } from 'node:net';
import { mkdirSync } from 'node:fs';
import { ClientServer } from './client-server.ts';
import { DataDir } from './data-dir.ts';
import { closeLogger, createProcessLogger } from './log.ts';
import { Vmms } from './vmms.ts';
import type { HostLimits } from './host-resources.ts';

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function runDaemon(opts: { dataDir: string; limits?: Partial<HostLimits> }): Promise<void> {
  const paths = new DataDir(opts.dataDir);
  mkdirSync(paths.root, { recursive: true });
  if (await socketAnswers(paths.vmmsSocket)) throw new Error(`another management service is serving ${paths.root}`);
  const log = createProcessLogger({ dataDir: paths.root, process: 'vmms' });
  let vmms: Vmms;
  try {
    vmms = await Vmms.open({ dataDir: paths.root, logger: log, ...(opts.limits ? { limits: opts.limits } : {}) });
  } catch (e) {
    await closeLogger(log);
    throw e;
  }
  let stopping = false;
  const stop = async (keepVms: boolean) => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await vmms.close({ stopVms: !keepVms });
    await closeLogger(log);
    process.exit(0);
  };
  const server = new ClientServer(vmms, log, (keepVms) => void stop(keepVms));
  await server.listen(paths.vmmsSocket);
  process.on('SIGTERM', () => void stop(false));
  process.on('SIGINT', () => void stop(false));
  log.info(`management service ${process.pid} serving ${paths.root} on ${paths.vmmsSocket}`);
  // Tests and scripts wait for this line on stdout.
  process.stdout.write(`tsvisor: serving ${paths.root}\n`);
}
