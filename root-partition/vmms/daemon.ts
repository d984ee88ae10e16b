/**
 * `tsvisor serve`: VMMS as a daemon. Refuses to start when another VMMS serves the same data
 * directory (the data directory's lock, taken before the socket is touched: vmms-lock.ts). SIGTERM/SIGINT stop it cleanly, applying each VM's automatic stop action; a client's
 * `shutdown { keepVms: true }` stops it leaving the VMs running for the next VMMS to reattach.
 */
import { mkdirSync } from 'node:fs';
import { startCimService, type CimService } from './cim-binding.ts';
import { CimSocketEndpoint } from './cim-socket.ts';
import { ClientServer } from './client-server.ts';
import { DataDir } from './data-dir.ts';
import { closeLogger, createProcessLogger } from './log.ts';
import { Vmms } from './vmms.ts';
import type { HostLimits } from './host-resources.ts';

export interface DaemonOptions {
  dataDir: string;
  limits?: Partial<HostLimits>;
  /** CIM-XML port: undefined for the default (5988, skipped with a warning when taken), 0 for any free port, null for none. */
  cimPort?: number | null;
  /** CIM-XML address (default loopback; beyond it the data directory's cim-credentials are required). */
  cimHost?: string;
}

/** The management core and, unless switched off, its CIM-XML server. */
async function startCim(vmms: Vmms, opts: DaemonOptions, log: ReturnType<typeof createProcessLogger>): Promise<CimService> {
  try {
    return await startCimService(vmms, { ...(opts.cimPort !== undefined ? { cimPort: opts.cimPort } : {}), ...(opts.cimHost ? { cimHost: opts.cimHost } : {}) });
  } catch (e) {
    // Only the default port may be skipped: another service on the host may hold it, and the
    // client socket still serves every management request.
    if (opts.cimPort !== undefined || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    log.warn(`CIM-XML not served: the default port is in use (${(e as Error).message}); choose one with --cim-port`);
    return startCimService(vmms, { cimPort: null });
  }
}

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const paths = new DataDir(opts.dataDir);
  mkdirSync(paths.root, { recursive: true });
  const log = createProcessLogger({ dataDir: paths.root, process: 'vmms' });
  let vmms: Vmms;
  try {
    vmms = await Vmms.open({ dataDir: paths.root, logger: log, ...(opts.limits ? { limits: opts.limits } : {}) });
  } catch (e) {
    await closeLogger(log);
    throw e;
  }
  let cim: CimService;
  try {
    cim = await startCim(vmms, opts, log);
  } catch (e) {
    await vmms.close({ stopVms: false });
    await closeLogger(log);
    throw e;
  }
  let stopping = false;
  const stop = async (keepVms: boolean) => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await cim.close();
    await vmms.close({ stopVms: !keepVms });
    await closeLogger(log);
    process.exit(0);
  };
  const server = new ClientServer(vmms, log, (keepVms) => void stop(keepVms), new CimSocketEndpoint(cim.manager));
  await server.listen(paths.vmmsSocket);
  process.on('SIGTERM', () => void stop(false));
  process.on('SIGINT', () => void stop(false));
  log.info(`management service ${process.pid} serving ${paths.root} on ${paths.vmmsSocket}${cim.port !== null ? `; CIM-XML on port ${cim.port}` : ''}`);
  if (cim.port !== null) process.stdout.write(`tsvisor: CIM-XML on http://${opts.cimHost ?? '127.0.0.1'}:${cim.port}/cimom\n`);
  // Tests and scripts wait for this line on stdout.
  process.stdout.write(`tsvisor: serving ${paths.root}\n`);
}
