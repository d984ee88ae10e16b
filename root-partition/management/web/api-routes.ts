/**
 * The web console's JSON API, after the server has authenticated the request and checked its
 * role, Origin and CSRF token (web-server.ts). Every value from the browser is checked here
 * before it reaches the VMMS: ids, action names, sizes and counts; a new VM names a guest image
 * the service offered, never a host path.
 *
 *   GET  /api/vms                     { vms, jobs }
 *   GET  /api/vms/:id                 the VM's page (WebVmDetail)
 *   GET  /api/images                  guest images a new VM may boot
 *   GET  /api/bench                   the I/O benchmark's report (JSON); /api/bench.html its HTML
 *   POST /api/vms                     { name, memoryMiB, vpCount, image, cmdline } → New-VM
 *   POST /api/vms/:id/action          { action } → start, shutdown, turn-off, save, pause, resume, reset, delete
 *   POST /api/vms/:id/console         { data } → typed into COM1 (at most MAX_CONSOLE_INPUT bytes)
 *   POST /api/vms/:id/settings        { memoryMiB?, vpCount?, cmdline?, notes? } → Set-VM (memory, VPs, command line while Off)
 *   GET  /api/bench/status, POST /api/bench/run   the quick benchmark's progress; starting it
 */
import { WEB_ACTIONS, type WebAction, type WebConsolePort } from './web-port.ts';

export const MAX_CONSOLE_INPUT = 4096;
const ID = /^[0-9a-fA-F-]{1,64}$/;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly returnValue?: number,
  ) {
    super(message);
  }
}

export class ApiRoutes {
  constructor(private readonly port: WebConsolePort) {}

  async handle(method: string, path: string, body: unknown): Promise<unknown> {
    const parts = path.split('/').slice(2); // ['', 'api', …]
    if (method === 'GET') {
      if (path === '/api/vms') return { vms: this.port.list(), jobs: this.port.jobs() };
      if (path === '/api/images') return { images: this.port.images() };
      if (path === '/api/bench/status') return this.port.benchStatus();
      if (path === '/api/bench' || path === '/api/bench.html') {
        const r = this.port.benchReport();
        if (!r) throw new ApiError(404, 'no I/O benchmark report yet: run `tsvisor bench io`');
        return path.endsWith('.html') ? r.html : r.json;
      }
      if (parts.length === 2 && parts[0] === 'vms') return this.vm(parts[1]!);
    } else if (method === 'POST') {
      const o = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
      if (path === '/api/vms') return this.define(o);
      if (path === '/api/bench/run') {
        if (!this.port.runBench()) throw new ApiError(409, 'a benchmark run is under way');
        return this.port.benchStatus();
      }
      if (parts.length === 3 && parts[0] === 'vms' && parts[2] === 'action') return this.act(parts[1]!, o.action);
      if (parts.length === 3 && parts[0] === 'vms' && parts[2] === 'console') return this.type(parts[1]!, o.data);
      if (parts.length === 3 && parts[0] === 'vms' && parts[2] === 'settings') return this.settings(parts[1]!, o);
    }
    throw new ApiError(404, `no ${method} ${path}`);
  }

  private vm(id: string) {
    const d = ID.test(id) ? this.port.detail(id) : null;
    if (!d) throw new ApiError(404, `no VM ${id}`);
    return d;
  }

  private async act(id: string, action: unknown) {
    this.vm(id);
    if (typeof action !== 'string' || !(WEB_ACTIONS as readonly string[]).includes(action))
      throw new ApiError(400, `action must be one of ${WEB_ACTIONS.join(', ')}`);
    const r = await this.port.act(id, action as WebAction);
    if (r.returnValue !== 0 && r.returnValue !== 4096) throw new ApiError(409, r.error ?? `refused (return value ${r.returnValue})`, r.returnValue);
    return r;
  }

  private define(o: Record<string, unknown>) {
    const name = o.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(name))
      throw new ApiError(400, 'name: 1 to 64 letters, digits, spaces, . _ - (starting with a letter or digit)');
    const memoryMiB = o.memoryMiB;
    if (!Number.isInteger(memoryMiB) || (memoryMiB as number) < 1 || (memoryMiB as number) > 65536)
      throw new ApiError(400, 'memoryMiB: a whole number of MiB from 1 to 65536');
    const vpCount = o.vpCount;
    if (!Number.isInteger(vpCount) || (vpCount as number) < 1 || (vpCount as number) > 64) throw new ApiError(400, 'vpCount: 1 to 64');
    const image = o.image;
    if (typeof image !== 'string' || !this.port.images().includes(image))
      throw new ApiError(400, 'image: one of the images the service offers (GET /api/images)');
    const cmdline = o.cmdline ?? '';
    if (typeof cmdline !== 'string' || cmdline.length > 1024) throw new ApiError(400, 'cmdline: text of at most 1024 characters');
    try {
      return this.port.define({ name, memoryBytes: (memoryMiB as number) * 1024 * 1024, vpCount: vpCount as number, image, cmdline });
    } catch (e) {
      throw new ApiError(409, (e as Error).message);
    }
  }

  private settings(id: string, o: Record<string, unknown>) {
    this.vm(id);
    const change: { memoryBytes?: number; vpCount?: number; cmdline?: string; notes?: string } = {};
    for (const k of Object.keys(o))
      if (!['memoryMiB', 'vpCount', 'cmdline', 'notes'].includes(k))
        throw new ApiError(400, `${k}: not a setting this page changes (memoryMiB, vpCount, cmdline, notes)`);
    if (o.memoryMiB !== undefined) {
      if (!Number.isInteger(o.memoryMiB) || (o.memoryMiB as number) < 1 || (o.memoryMiB as number) > 65536)
        throw new ApiError(400, 'memoryMiB: a whole number of MiB from 1 to 65536');
      change.memoryBytes = (o.memoryMiB as number) * 1024 * 1024;
    }
    if (o.vpCount !== undefined) {
      if (!Number.isInteger(o.vpCount) || (o.vpCount as number) < 1 || (o.vpCount as number) > 64) throw new ApiError(400, 'vpCount: 1 to 64');
      change.vpCount = o.vpCount as number;
    }
    if (o.cmdline !== undefined) {
      if (typeof o.cmdline !== 'string' || o.cmdline.length > 1024) throw new ApiError(400, 'cmdline: text of at most 1024 characters');
      change.cmdline = o.cmdline;
    }
    if (o.notes !== undefined) {
      if (typeof o.notes !== 'string' || o.notes.length > 4096) throw new ApiError(400, 'notes: text of at most 4096 characters');
      change.notes = o.notes;
    }
    if (Object.keys(change).length === 0) throw new ApiError(400, 'nothing to change: give memoryMiB, vpCount, cmdline or notes');
    const r = this.port.modify(id, change);
    if (r.returnValue !== 0) throw new ApiError(409, r.error ?? `refused (return value ${r.returnValue})`, r.returnValue);
    return this.vm(id);
  }

  private async type(id: string, data: unknown) {
    const vm = this.vm(id);
    if (typeof data !== 'string' || data.length === 0) throw new ApiError(400, 'data: the typed text');
    const bytes = Buffer.from(data, 'utf8');
    if (bytes.length > MAX_CONSOLE_INPUT) throw new ApiError(413, `at most ${MAX_CONSOLE_INPUT} bytes a request`);
    if (vm.processId === null) throw new ApiError(409, `${vm.name} is ${vm.state}: its console takes no input`);
    try {
      await this.port.consoleInput(id, bytes);
    } catch (e) {
      throw new ApiError(409, (e as Error).message);
    }
    return { bytes: bytes.length };
  }
}
