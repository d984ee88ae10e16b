/**
 * The web console in this process over a real VMMS (embedded, as tests and tools use it): the CIM
 * core and the web server exactly as `tsvisor serve` starts them, on plain HTTP on a free loopback
 * port, with a real access.json. `browser()` is a small HTTP client that logs in and sends the
 * session's cookie, CSRF token and Origin as the app does.
 */
import { writeTestAccess, type TestUser } from '../management/access-fixture.ts';
import { startCimService, type CimService } from '../../root-partition/vmms/cim-binding.ts';
import { startWebService, type WebService } from '../../root-partition/vmms/web-binding.ts';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { VmmsFixture } from '../vmms/vmms-fixture.ts';

export const USERS: TestUser[] = [
  { user: 'admin', password: 'admin-pw-1', role: 'full' },
  { user: 'viewer', password: 'viewer-pw-1', role: 'read-only' },
];

export interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON replies the tests index field by field
  body: any;
  headers: Headers;
}

export class WebTestHost {
  readonly fx = new VmmsFixture();
  vmms!: Vmms;
  cim!: CimService;
  web!: WebService;
  dataDir = '';

  async start(o: { consoleQueueBytes?: number; benchTiny?: boolean } = {}): Promise<void> {
    await buildWeb();
    this.dataDir = this.fx.dataDir();
    await writeTestAccess(this.dataDir, USERS);
    this.vmms = await this.fx.vmms({ dataDir: this.dataDir });
    this.cim = await startCimService(this.vmms, { cimPort: null, httpsPort: null });
    this.web = await startWebService(this.vmms, this.cim, {
      webPort: 0,
      plainHttp: true,
      ...(o.consoleQueueBytes ? { consoleQueueBytes: o.consoleQueueBytes } : {}),
      ...(o.benchTiny ? { benchTiny: true } : {}),
    });
  }

  get url(): string {
    return this.web.url!.replace(/\/$/, '');
  }

  async stop(): Promise<number[]> {
    await this.web?.close();
    await this.cim?.close();
    return this.fx.cleanup();
  }

  /** A browser-like client: `login()` keeps the cookie and token; each call sends Origin unless told otherwise. */
  client() {
    const origin = this.url;
    let cookie = '';
    let csrf = '';
    const call = async (method: string, path: string, body?: unknown, o: { origin?: string | null; csrf?: string | null } = {}): Promise<Reply> => {
      const headers: Record<string, string> = {};
      if (cookie) headers.Cookie = cookie;
      const sendOrigin = o.origin === undefined ? origin : o.origin;
      if (sendOrigin !== null) headers.Origin = sendOrigin;
      const token = o.csrf === undefined ? csrf : o.csrf;
      if (method !== 'GET' && token) headers['X-CSRF-Token'] = token;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const r = await fetch(`${origin}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await r.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* html */
      }
      return { status: r.status, body: parsed, headers: r.headers };
    };
    return {
      call,
      get cookie() {
        return cookie;
      },
      async login(user: string, password: string): Promise<Reply> {
        const r = await call('POST', '/api/login', { user, password });
        const set = r.headers.get('set-cookie');
        if (r.status === 200 && set) {
          cookie = set.split(';')[0]!;
          csrf = (r.body as { csrf: string }).csrf;
        }
        return r;
      },
    };
  }
}
