/**
 * A host's part in live migration, in VMMS: the migration port (TLS, mutual, pinned peers:
 * host-trust.ts) where VMs arrive, and `move`, which sends one away. An arriving connection is
 * checked, its HELLO read (the VM's definition), the VM defined and its worker started; from
 * then on this process only hands bytes on between the TLS socket and the worker's migration
 * socket (pipes: back-pressure both ways, nothing buffered beyond the sockets' own buffers).
 * A move with storage gets its drives' empty copies made here before the worker starts, and
 * loses them again if the VM does not arrive (storage-move-destination.ts).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../host/log.ts';
import type { Vmms } from '../vmms/vmms.ts';
import type { VmDefinition } from '../vmms/vm-definition.ts';
import { StorageRoots } from '../host/storage-roots.ts';
import { prepareStorageMove, type PreparedStorageMove } from './storage-move-destination.ts';
import { checkPeer, loadTrustedHosts, serverTlsOptions, type HostIdentity } from './host-trust.ts';
import { FrameReader, MigrationFrame, MigrationProtocolError, encodeFrame, type Frame } from './migration-wire.ts';
import type { MigrationProgress, MigrationSummary, MigrationTuning } from './migration-source.ts';

/** Connections that have not yet sent their HELLO, at most: an idle peer cannot hold more. */
const MAX_PENDING_HANDSHAKES = 8;
const HELLO_TIMEOUT_MS = 15_000;
/** A whole migration, at most (a 256 MiB VM takes seconds). */
export const MIGRATION_TIMEOUT_MS = 30 * 60_000;

export interface MigrationServiceOptions {
  identity: HostIdentity & { fingerprint256: string };
  /** null: no listener (this host only sends VMs away). */
  port: number | null;
  host?: string;
  log: Logger;
}

export interface MoveRequest {
  host: string;
  port: number;
  tuning?: Partial<MigrationTuning>;
  /** Moves the drives too: the destination's directory for their copies (one of its storage roots). */
  storage?: string;
}

export class MigrationService {
  private server: TlsServer | null = null;
  private pending = 0;
  private readonly sockets = new Set<Socket>();
  port: number | null = null;

  private constructor(
    private readonly vmms: Vmms,
    private readonly o: MigrationServiceOptions,
  ) {}

  static async start(vmms: Vmms, o: MigrationServiceOptions): Promise<MigrationService> {
    const s = new MigrationService(vmms, o);
    if (o.port !== null) await s.listen(o.port, o.host ?? '0.0.0.0');
    return s;
  }

  get fingerprint256(): string {
    return this.o.identity.fingerprint256;
  }

  private get trustFile(): string {
    return this.vmms.paths.migrationTrust;
  }

  private listen(port: number, host: string): Promise<void> {
    const server = createTlsServer(serverTlsOptions(this.o.identity), (s) => this.accept(s));
    server.on('tlsClientError', (e) => this.o.log.warn(`migration port: a TLS handshake failed: ${e.message}`));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private accept(socket: TLSSocket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let host: ReturnType<typeof checkPeer>;
    try {
      // Read fresh: a host trusted or removed a moment ago counts at once.
      host = checkPeer(socket, loadTrustedHosts(this.trustFile));
    } catch (e) {
      this.o.log.warn(`migration port: refused ${peer}: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    if (this.pending >= MAX_PENDING_HANDSHAKES) {
      this.o.log.warn(`migration port: refused ${peer}: ${MAX_PENDING_HANDSHAKES} connections are already waiting to start`);
      socket.destroy();
      return;
    }
    this.pending++;
    let storage: PreparedStorageMove | null = null;
    void this.readHello(socket)
      .finally(() => this.pending--)
      .then(({ hello, frameBytes, rest }) => {
        let def = (hello as { definition?: VmDefinition }).definition;
        if (!def || typeof def !== 'object' || !Array.isArray(def.devices)) throw new MigrationProtocolError('HELLO carries no VM definition');
        this.o.log.info(`migration port: ${host.name || host.fingerprint256} (${peer}) sends VM ${def.name} (${def.id})`);
        const moved = (hello as { storage?: unknown }).storage;
        if (moved !== undefined) {
          // The drives come too: empty copies here first, and the definition on them.
          const roots = this.vmms.opts.storageRoots ? StorageRoots.of(this.vmms.opts.storageRoots) : null;
          storage = prepareStorageMove(def, moved, roots);
          def = storage.definition;
          this.o.log.info(`migration port: VM ${def.name}'s drives are copied to ${storage.files.join(', ')}`);
        }
        return this.vmms.receiveVm(def, (path) => handOn(socket, path, Buffer.concat([frameBytes, rest])), MIGRATION_TIMEOUT_MS);
      })
      .then(
        (vm) => {
          this.o.log.info(`migration port: VM ${vm.name} arrived and runs`);
        },
        (e: Error) => {
          this.o.log.warn(`migration port: the VM from ${peer} did not arrive: ${e.message}`);
          // The partial copies go (the source runs on from its own files).
          storage?.remove();
          if (!socket.destroyed) socket.end(encodeFrame(MigrationFrame.Abort, Buffer.from(e.message.slice(0, 4000), 'utf8')));
          setTimeout(() => socket.destroy(), 1000).unref();
        },
      );
  }

  /** The first frame, which must be HELLO (bounded in size and time); the bytes after it are kept. */
  private readHello(socket: TLSSocket): Promise<{ hello: unknown; frameBytes: Buffer; rest: Buffer }> {
    return new Promise((resolve, reject) => {
      const reader = new FrameReader();
      const timer = setTimeout(() => done(new Error(`no HELLO within ${HELLO_TIMEOUT_MS} ms`)), HELLO_TIMEOUT_MS);
      const done = (e: Error | null, f?: Frame) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.pause();
        if (e) return reject(e);
        try {
          resolve({ hello: JSON.parse(f!.body.toString('utf8')), frameBytes: encodeFrame(f!.type, f!.body), rest: reader.rest() });
        } catch (err) {
          reject(new MigrationProtocolError(`HELLO is not JSON: ${(err as Error).message}`));
        }
      };
      const onClose = () => done(new Error('the peer closed before HELLO'));
      const onData = (chunk: Buffer) => {
        let frames: Frame[];
        try {
          frames = reader.push(chunk);
        } catch (e) {
          return done(e as Error);
        }
        if (frames.length === 0) return;
        if (frames[0].type !== MigrationFrame.Hello) return done(new MigrationProtocolError(`the first frame is type ${frames[0].type}, not HELLO`));
        if (frames.length > 1) return done(new MigrationProtocolError('frames after HELLO before the VM was accepted'));
        done(null, frames[0]);
      };
      socket.on('data', onData);
      socket.on('close', onClose);
    });
  }

  /** Sends a running VM to `to` (which must be a trusted host); resolves when it runs there. */
  move(vm: string, to: MoveRequest, onProgress: (p: MigrationProgress) => void = () => {}): Promise<MigrationSummary> {
    const trusted = loadTrustedHosts(this.trustFile);
    const request = {
      host: to.host,
      port: to.port,
      cert: this.o.identity.cert.toString(),
      key: this.o.identity.key.toString(),
      trusted,
      ...(to.tuning ? { tuning: to.tuning } : {}),
      ...(to.storage !== undefined ? { storage: { dir: to.storage } } : {}),
    };
    return this.vmms.moveOut(
      vm,
      request,
      onProgress as unknown as (p: Record<string, unknown>) => void,
      MIGRATION_TIMEOUT_MS,
    ) as Promise<unknown> as Promise<MigrationSummary>;
  }

  cancel(vm: string): Promise<void> {
    return this.vmms.cancelMove(vm);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Connects to the arriving worker's migration socket (it may still be starting) and joins the two streams. */
async function handOn(tls: TLSSocket, path: string, first: Buffer): Promise<void> {
  const deadline = Date.now() + 30_000;
  let unix: Socket;
  for (;;) {
    try {
      unix = await new Promise<Socket>((resolve, reject) => {
        const s = netConnect(path);
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
      break;
    } catch (e) {
      if (Date.now() > deadline || tls.destroyed) throw new Error(`cannot reach the arriving VM's worker at ${path}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  unix.on('error', () => tls.destroy());
  unix.on('close', () => tls.end());
  tls.on('close', () => unix.destroy());
  unix.write(first);
  tls.pipe(unix);
  unix.pipe(tls);
  tls.resume();
}
