/**
 * VMMS's socket for its clients (the CLI): `vmms.sock` in the data directory, one JSON request
 * per line — `{ id, method, params }` — answered by `{ id, result }` or `{ id, error: { code,
 * message } }`. A malformed line gets an error reply; it never reaches the service.
 *
 * `console-follow` answers `{ tail }` (the console VMMS holds, base64) and then pushes the VM's
 * console output on the same connection as `{ "console": { "vm": id, "data": base64 } }` lines
 * until the connection closes, and `{ "console": { "vm": id, "ended": state } }` once the VM is Off
 * or Saved (nothing more will come); `console-input` `{ vm, data: base64 }` types into COM1.
 */
import { callMigrationMethod, MIGRATION_CLIENT_METHODS, type MigrationClientMethod } from '../migration/migration-client-methods.ts';
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import type { Logger } from '../host/log.ts';
import type { Vmms, StateChangeEvent } from './vmms.ts';
import { EnabledState, stateName } from './lifecycle.ts';
import type { NewVmRequest } from './vm-definition.ts';
import { CLIENT_METHODS, clientParams, envelopeParams, type ClientMethod, type ClientParams } from './client-requests.ts';

export { CLIENT_METHODS, type ClientMethod } from './client-requests.ts';

const MAX_LINE = 1 << 20;

export class ClientServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly vmms: Vmms,
    private readonly log: Logger,
    private readonly onShutdown: (keepVms: boolean) => void,
    /** The management protocol's `cim.*` requests (cim-socket.ts), when the service offers it. */
    private readonly cim?: { handles(method: string): boolean; call(method: string, params: Record<string, unknown>, socket: Socket): Promise<unknown> },
  ) {
    this.server = createServer((s) => this.accept(s));
  }

  /**
   * Whoever can connect to the socket manages every VM, so only the service's user (and root)
   * may: the socket is 0600, in a data directory that is 0700 (daemon.ts), which also closes
   * the moment between bind and chmod.
   */
  listen(path: string): Promise<void> {
    rmSync(path, { force: true });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        try {
          chmodSync(path, 0o600);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  private accept(s: Socket): void {
    this.sockets.add(s);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) {
        s.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.handle(s, line);
      }
    });
    s.on('error', () => s.destroy());
    s.on('close', () => this.sockets.delete(s));
  }

  private async handle(s: Socket, line: string): Promise<void> {
    let id: unknown = null;
    const reply = (body: object) => {
      if (!s.destroyed) s.write(JSON.stringify({ id, ...body }) + '\n');
    };
    try {
      const parsed: unknown = JSON.parse(line);
      // The id first, so that even a refused request's answer names it.
      if (parsed && typeof parsed === 'object' && 'id' in parsed) id = parsed.id ?? null;
      const { method, params } = envelopeParams(parsed);
      if (typeof method === 'string' && this.cim?.handles(method)) {
        reply({ result: await this.cim.call(method, params, s) });
        return;
      }
      if (typeof method === 'string' && (MIGRATION_CLIENT_METHODS as readonly string[]).includes(method)) {
        const push = (progress: unknown) => {
          if (!s.destroyed) s.write(JSON.stringify({ id, progress }) + '\n');
        };
        reply({ result: await callMigrationMethod(this.vmms, method as MigrationClientMethod, params, push) });
        return;
      }
      if (typeof method !== 'string' || !(CLIENT_METHODS as readonly string[]).includes(method))
        throw Object.assign(new Error(`unknown method ${JSON.stringify(method)}`), { code: 'VMMS_ERR_METHOD' });
      const p = clientParams(method as ClientMethod, params);
      if (method === 'console-follow') {
        reply({ result: this.followConsole(s, p.vm!) });
        return;
      }
      reply({ result: await this.call(method as ClientMethod, p) });
    } catch (e) {
      const err = e as Error & { code?: string };
      reply({ error: { code: err.code ?? (e instanceof SyntaxError ? 'VMMS_ERR_REQUEST' : 'VMMS_ERR'), message: err.message } });
    }
  }

  /** Runs a request whose params `clientParams` has checked against the method's schema. */
  private async call(method: ClientMethod, p: ClientParams): Promise<unknown> {
    const vm = p.vm!;
    switch (method) {
      case 'list':
        return this.vmms.list();
      case 'show':
        return this.vmms.get(vm) ?? null;
      case 'new':
        return this.vmms.defineVm(p as unknown as NewVmRequest);
      case 'start':
        return this.vmms.start(vm);
      // Stop-VM: -Save, -TurnOff, or (neither) a shutdown through the guest's integration service.
      case 'stop':
        return p.save
          ? this.vmms.save(vm)
          : p.turnOff
            ? this.vmms.turnOff(vm)
            : this.vmms.shutdown(vm, {
                ...(p.timeoutMs !== undefined ? { timeoutMs: p.timeoutMs } : {}),
                force: p.force === true,
                reason: p.reason ?? '',
              });
      case 'heartbeat':
        return this.vmms.heartbeatStatus(vm);
      case 'measure':
        return this.vmms.measureCpu(vm, p.reset === true);
      case 'export':
        return this.vmms.exportVm(vm, p.dir!);
      case 'import':
        return this.vmms.importVm(p.folder!, {
          ...(p.copyTo !== undefined ? { copyTo: p.copyTo } : {}),
          newId: p.newId === true,
          ...(p.name !== undefined ? { name: p.name } : {}),
        });
      case 'save':
        return this.vmms.save(vm);
      case 'pause':
        return this.vmms.pause(vm);
      case 'resume':
        return this.vmms.resume(vm);
      case 'reset':
        return this.vmms.reset(vm);
      case 'rm':
        return this.vmms.removeVm(vm);
      case 'console':
        return this.vmms.console(vm);
      case 'console-input': {
        await this.vmms.consoleInput(vm, Buffer.from(p.data!, 'base64'));
        return { typed: Buffer.byteLength(p.data!, 'base64') };
      }
      case 'console-follow':
        throw new Error('console-follow is answered on its connection');
      case 'counters':
        return this.vmms.counters(vm);
      case 'load-errors':
        return this.vmms.loadErrors;
      case 'orphans':
        return this.vmms.orphans();
      case 'stop-orphan':
        return this.vmms.stopOrphan(vm);
      case 'shutdown':
        setImmediate(() => this.onShutdown(p.keepVms === true));
        return { stopping: true, keepVms: p.keepVms === true };
    }
  }

  /** The console tail now; then each new chunk of this VM's output, pushed until `s` closes. */
  private followConsole(s: Socket, vm: string): { vm: string; tail: string; enabledState: number } {
    const view = this.vmms.get(vm);
    if (!view) throw Object.assign(new Error(`no VM ${vm}`), { code: 'VMMS_ERR_NO_SUCH_VM' });
    const onConsole = (e: { vmId: string; data: Uint8Array }) => {
      if (e.vmId === view.id && !s.destroyed) s.write(JSON.stringify({ console: { vm: view.id, data: Buffer.from(e.data).toString('base64') } }) + '\n');
    };
    const onState = (e: StateChangeEvent) => {
      if (e.vmId !== view.id || (e.state !== EnabledState.Off && e.state !== EnabledState.Saved) || s.destroyed) return;
      s.write(JSON.stringify({ console: { vm: view.id, ended: stateName(e.state) } }) + '\n');
    };
    this.vmms.events.on('console', onConsole);
    this.vmms.events.on('state-changed', onState);
    s.once('close', () => {
      this.vmms.events.off('console', onConsole);
      this.vmms.events.off('state-changed', onState);
    });
    return { vm: view.id, tail: Buffer.from(this.vmms.console(view.id), 'latin1').toString('base64'), enabledState: view.enabledState };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.end();
    await new Promise<void>((r) => this.server.close(() => r()));
    this.log.info('client socket closed');
  }
}
