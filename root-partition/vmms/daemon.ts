/**
 * `tsvisor serve`: VMMS as a daemon. Refuses to start when another VMMS serves the same data
 * directory (the data directory's lock, taken before the socket is touched: vmms-lock.ts). SIGTERM/SIGINT stop it cleanly, applying each VM's automatic stop action; a client's
 * `shutdown { keepVms: true }` stops it leaving the VMs running for the next VMMS to reattach.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCimService, type CimService } from './cim-binding.ts';
import { startWebService, type WebService } from './web-binding.ts';
import { CimSocketEndpoint } from './cim-socket.ts';
import { ClientServer } from './client-server.ts';
import { DataDir } from '../host/data-dir.ts';
import { closeLogger, createProcessLogger } from '../host/log.ts';
import { Vmms } from './vmms.ts';
import type { HostLimits } from './host-resources.ts';
import { packageGuestImagesDir } from '../host/storage-roots.ts';
import { LINUX_GUEST_DIR } from '../x86/linux-guest-files.ts';
import { loadTlsIdentity } from './tls-identity.ts';
import { MigrationService } from '../migration/migration-service.ts';

export interface DaemonOptions {
  dataDir: string;
  limits?: Partial<HostLimits>;
  /** CIM-XML over HTTP on 127.0.0.1: undefined for the default (5988, skipped with a warning when taken), 0 for any free port, null for none. */
  cimPort?: number | null;
  /** CIM-XML over HTTPS: undefined for 5989 (skipped when taken), 0 for any free port, null for none. */
  cimHttpsPort?: number | null;
  /** The HTTPS address (default 127.0.0.1). */
  cimHost?: string;
  /** The operator's certificate and key for HTTPS (PEM); without them one is made in the data directory. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Directories disks and guest images may come from, besides the defaults (storageRootsOf). */
  storageRoots?: string[];
  /** The web console: undefined for 5990 (skipped with a warning when taken), 0 for any free port, null for none. */
  webPort?: number | null;
  /** Its address (default 127.0.0.1). */
  webHost?: string;
  /** Serve the web console over plain HTTP (loopback only) instead of HTTPS. */
  webHttp?: boolean;
  /** The live-migration port (mutual TLS with pinned hosts): undefined or null for none, 0 for any free port. */
  migrationPort?: number | null;
  /** Its address (default 0.0.0.0: other hosts must reach it). */
  migrationHost?: string;
  /** CPUs given to guests: the CPU scheduler's capacity and admission limit (default: all the host's). */
  hostCpus?: number;
}

/** The data directory's `disks/`, the package's built guest images and Linux guest, then the operator's own. */
export function storageRootsOf(dataDir: string, extra: readonly string[] = []): string[] {
  const disks = join(dataDir, 'disks');
  mkdirSync(disks, { recursive: true, mode: 0o700 });
  const guests = packageGuestImagesDir();
  if (guests) mkdirSync(guests, { recursive: true });
  // The built Linux guest (npm run build:linux), when it is there: `vm new --linux` names its manifest.
  const linux = existsSync(LINUX_GUEST_DIR) ? [LINUX_GUEST_DIR] : [];
  return [disks, ...(guests ? [guests] : []), ...linux, ...extra];
}

/**
 * The data directory holds the service's sockets, the access list and the VMs' files: it must
 * be the service user's own and closed to everyone else (0700), so that the client socket in it
 * answers only that user (and root). A directory someone else owns could be swapped under us.
 */
function secureDataDir(root: string): void {
  const st = lstatSync(root);
  const me = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new Error(`${root} is not a directory`);
  if (st.uid !== me) throw new Error(`the data directory ${root} belongs to uid ${st.uid}; it must belong to the user running the service (uid ${me})`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(root, 0o700);
}

/** At most this many refusals logged a minute: a client hammering the port must not fill the disk. */
const REFUSALS_LOGGED_PER_MINUTE = 20;

function rateLimited(log: (m: string) => void): (m: string) => void {
  let windowStart = 0;
  let count = 0;
  return (m) => {
    const now = Date.now();
    if (now - windowStart > 60_000) {
      if (count > REFUSALS_LOGGED_PER_MINUTE) log(`${count - REFUSALS_LOGGED_PER_MINUTE} more warnings not logged in the last minute`);
      windowStart = now;
      count = 0;
    }
    if (++count <= REFUSALS_LOGGED_PER_MINUTE) log(m);
  };
}

/** The management core and, unless switched off, its CIM-XML servers. */
function startCim(vmms: Vmms, opts: DaemonOptions, log: ReturnType<typeof createProcessLogger>): Promise<CimService> {
  return startCimService(vmms, {
    ...(opts.cimPort !== undefined ? { cimPort: opts.cimPort } : {}),
    ...(opts.cimHttpsPort !== undefined ? { httpsPort: opts.cimHttpsPort } : {}),
    ...(opts.cimHost ? { httpsHost: opts.cimHost } : {}),
    ...(opts.tlsCertFile ? { tlsCertFile: opts.tlsCertFile } : {}),
    ...(opts.tlsKeyFile ? { tlsKeyFile: opts.tlsKeyFile } : {}),
    warn: rateLimited((m) => log.warn(m)),
  });
}

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const paths = new DataDir(opts.dataDir);
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  secureDataDir(paths.root);
  const log = createProcessLogger({ dataDir: paths.root, process: 'vmms' });
  let vmms: Vmms;
  try {
    vmms = await Vmms.open({
      dataDir: paths.root,
      logger: log,
      storageRoots: storageRootsOf(paths.root, opts.storageRoots),
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.hostCpus !== undefined ? { hostCpus: opts.hostCpus } : {}),
    });
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
  let web: WebService;
  try {
    web = await startWebService(vmms, cim, {
      ...(opts.webPort !== undefined ? { webPort: opts.webPort } : {}),
      ...(opts.webHost ? { webHost: opts.webHost } : {}),
      ...(opts.webHttp ? { plainHttp: true } : {}),
      ...(opts.tlsCertFile ? { tlsCertFile: opts.tlsCertFile } : {}),
      ...(opts.tlsKeyFile ? { tlsKeyFile: opts.tlsKeyFile } : {}),
      warn: rateLimited((m) => log.warn(m)),
    });
  } catch (e) {
    await cim.close();
    await vmms.close({ stopVms: false });
    await closeLogger(log);
    throw e;
  }
  let migration: MigrationService;
  try {
    const identity = loadTlsIdentity(paths.root, {
      ...(opts.tlsCertFile ? { certFile: opts.tlsCertFile } : {}),
      ...(opts.tlsKeyFile ? { keyFile: opts.tlsKeyFile } : {}),
    });
    migration = await MigrationService.start(vmms, {
      identity,
      port: opts.migrationPort ?? null,
      ...(opts.migrationHost ? { host: opts.migrationHost } : {}),
      log: vmms.log,
    });
    vmms.migration = migration;
  } catch (e) {
    await web.close();
    await cim.close();
    await vmms.close({ stopVms: false });
    await closeLogger(log);
    throw e;
  }
  let stopping = false;
  const stop = async (keepVms: boolean) => {
    if (stopping) return;
    stopping = true;
    await migration.close();
    await server.close();
    await web.close();
    await cim.close();
    await vmms.close({ stopVms: !keepVms });
    await closeLogger(log);
    process.exit(0);
  };
  const server = new ClientServer(vmms, log, (keepVms) => void stop(keepVms), new CimSocketEndpoint(cim.manager));
  await server.listen(paths.vmmsSocket);
  process.on('SIGTERM', () => void stop(false));
  process.on('SIGINT', () => void stop(false));
  log.info(
    `management service ${process.pid} serving ${paths.root} on ${paths.vmmsSocket}${cim.port !== null ? `; CIM-XML on port ${cim.port}` : ''}${cim.httpsPort !== null ? `; CIM-XML over HTTPS on port ${cim.httpsPort}, certificate SHA-256 ${cim.fingerprint256}` : ''}${web.url ? `; web console on ${web.url}` : ''}; storage roots ${vmms.roots?.dirs.join(', ')}`,
  );
  if (cim.port !== null) process.stdout.write(`tsvisor: CIM-XML on http://127.0.0.1:${cim.port}/cimom\n`);
  if (cim.httpsPort !== null)
    process.stdout.write(
      `tsvisor: CIM-XML on https://${opts.cimHost ?? '127.0.0.1'}:${cim.httpsPort}/cimom (certificate ${cim.certFile}, SHA-256 ${cim.fingerprint256})\n`,
    );
  if (web.url) process.stdout.write(`tsvisor: web console on ${web.url}\n`);
  if (migration.port !== null)
    process.stdout.write(`tsvisor: live migration on port ${migration.port} (mutual TLS; this host's certificate SHA-256 ${migration.fingerprint256})\n`);
  process.stdout.write(`tsvisor: storage roots ${vmms.roots?.dirs.join(', ')}\n`);
  // Tests and scripts wait for this line on stdout.
  process.stdout.write(`tsvisor: serving ${paths.root}\n`);
  // Set-VM -AutomaticStartAction: once the service answers, so a slow start holds no client up.
  for (const { vm, result } of await vmms.autoStart()) {
    process.stdout.write(
      result.returnValue === 0 ? `tsvisor: ${vm}: started (automatic start action)\n` : `tsvisor: ${vm}: automatic start failed: ${result.error}\n`,
    );
  }
}
