/**
 * The worker process's two ends of a live migration. Source: `migrateToHost` connects to the
 * destination host's migration port with mutual TLS and streams the VM (migration-source.ts)
 * from this process straight into the socket. Destination: `acceptIncomingMigration` listens on
 * the worker's migration socket, where the destination VMMS hands on the authenticated stream,
 * and boots the VM from it (migration-destination.ts).
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { VmWorker } from '../vmwp/vm-worker.ts';
import { checkPeer, clientTlsOptions, type TrustedHost } from './host-trust.ts';
import { MigrationChannel } from './migration-channel.ts';
import { DiskCopyTarget } from './disk-copy-target.ts';
import { commitMigration, receiveMigration, reportRunning } from './migration-destination.ts';
import { migrateOut, type MigrationProgress, type MigrationSummary, type MigrationTuning } from './migration-source.ts';

/** What VMMS sends with MIGRATE (JSON in the request's migration field). */
export interface MigrateRequest {
  host: string;
  port: number;
  /** This host's certificate and key (PEM), presented to the destination. */
  cert: string;
  key: string;
  /** The hosts this one trusts: the destination must be one of them. */
  trusted: TrustedHost[];
  /** For the destination VMMS: the VM's definition. */
  hello: Record<string, unknown>;
  tuning?: Partial<MigrationTuning>;
  /** Moves the drives too: their copies go into this directory on the destination. */
  storage?: { dir: string };
}

/** How long a TLS connection to the destination may take to be established and checked. */
const CONNECT_TIMEOUT_MS = 15_000;
/** How long an arriving VM's worker waits for its VMMS to hand on the stream. */
const INCOMING_ACCEPT_TIMEOUT_MS = 60_000;

export function connectToHost(r: Pick<MigrateRequest, 'host' | 'port' | 'cert' | 'key' | 'trusted'>): Promise<MigrationChannel> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(clientTlsOptions({ cert: r.cert, key: r.key }, r.host, r.port));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS connection to ${r.host}:${r.port} within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the migration port ${r.host}:${r.port}: ${e.message}`));
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      try {
        checkPeer(socket, r.trusted);
      } catch (e) {
        socket.destroy();
        return reject(e);
      }
      resolve(new MigrationChannel(socket));
    });
  });
}

export async function migrateToHost(
  worker: VmWorker,
  r: MigrateRequest,
  onProgress: (p: MigrationProgress) => void,
  cancelled: () => boolean,
): Promise<MigrationSummary> {
  const channel = await connectToHost(r);
  try {
    return await migrateOut(worker, channel, {
      hello: r.hello,
      ...(r.tuning ? { tuning: r.tuning } : {}),
      ...(r.storage ? { storage: r.storage } : {}),
      onProgress,
      cancelled,
    });
  } catch (e) {
    // Before the switch-over the VM never stopped here; the destination learns why and drops its copy.
    channel.abort(e instanceof Error ? e.message : String(e));
    throw e;
  } finally {
    setTimeout(() => channel.socket.destroy(), 1000).unref();
  }
}

/**
 * Boots `worker` from the stream its VMMS hands on at `socketPath` (one connection); resolves
 * once the VM runs here. The source hears RUNNING only when `recorded` resolves: the worker's
 * VMMS has taken the VM as Running (ARRIVAL_RECORDED), so a move that ends at the source ends
 * with the VM listed Running here. When it never does (this VMMS gone), RUNNING never goes: the
 * source keeps its copy paused with MIGRATION_ERR_OUTCOME_UNKNOWN, as for a RUNNING lost on the
 * way, and the VM runs here alone.
 */
export function acceptIncomingMigration(worker: VmWorker, socketPath: string, recorded: Promise<void>): Promise<void> {
  rmSync(socketPath, { force: true });
  return new Promise<Socket>((resolve, reject) => {
    const server = createServer();
    const timer = setTimeout(() => {
      server.close();
      reject(new Error(`no migration stream arrived within ${INCOMING_ACCEPT_TIMEOUT_MS} ms`));
    }, INCOMING_ACCEPT_TIMEOUT_MS);
    server.once('connection', (s) => {
      clearTimeout(timer);
      server.close();
      rmSync(socketPath, { force: true });
      resolve(s);
    });
    server.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    server.listen(socketPath);
  }).then(async (socket) => {
    const channel = new MigrationChannel(socket);
    const disks = new DiskCopyTarget(worker.launch.devices, worker.launch.storageRoots);
    try {
      await worker.bootFromMigration(
        (memory, hash) => receiveMigration(channel, memory, hash, disks),
        (timing) => commitMigration(channel, timing),
        () => void recorded.then(() => reportRunning(channel)),
      );
    } catch (e) {
      channel.abort(e instanceof Error ? e.message : String(e));
      throw e;
    }
  });
}
