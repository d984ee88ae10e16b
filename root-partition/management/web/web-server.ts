/**
 * The web console's HTTP(S) server: the single-page app's files, a JSON API under /api/ and one
 * event stream per page (event-stream.ts). Who may do what is decided as for CIM-XML
 * (management/access): a user logs in with an access.json user name and password — checked by
 * the same Authenticator, with its back-off — and gets a session cookie (sessions.ts); the
 * `read-only` role may look, only `full` may act. A browser sends cookies for any page that
 * makes it send a request, so every change also needs the session's CSRF token in a header and
 * an Origin header naming this server; the local-user trust of CIM-XML (the socket owner) does
 * not apply here for the same reason. Plain HTTP is served on loopback only, as CIM-XML is.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../access/authenticator.ts';
import { isLoopback } from '../cimxml/http-server.ts';
import { readRequestBody, RequestGate, resolveRequestLimits, serverTimeoutOptions } from '../cimxml/request-limits.ts';
import { ApiRoutes, ApiError } from './api-routes.ts';
import { EventStream } from './event-stream.ts';
import { csrfMatches, DEFAULT_SESSION_LIMITS, sessionCookie, SessionTable, type SessionLimits, type WebSession } from './sessions.ts';
import { loadStaticFiles, type StaticFile } from './static-files.ts';
import type { WebConsolePort } from './web-port.ts';

export interface WebConsoleOptions {
  readonly port: WebConsolePort;
  readonly authenticator: Authenticator;
  /** Default 127.0.0.1; anything not loopback needs TLS. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly listenPort: number;
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly sessions?: Partial<SessionLimits>;
  /** Event streams open at once, all browsers together; more are answered 503. */
  readonly maxStreams?: number;
  /** Event streams one session may hold (a page holds one; a few tabs more); more are answered 429. */
  readonly maxStreamsPerSession?: number;
  /** Console bytes queued per browser before the oldest are dropped. */
  readonly consoleQueueBytes?: number;
  /** The app's files (default: build/web of the package). */
  readonly files?: Map<string, StaticFile>;
  readonly onRefused?: (client: string, reason: string) => void;
}

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

export class WebConsoleServer {
  readonly sessions: SessionTable;
  readonly streams = new Set<EventStream>();
  private readonly streamsOf = new Map<string, number>();
  private readonly server: Server;
  private readonly files: Map<string, StaticFile>;
  private readonly gate: RequestGate;
  private readonly limits = resolveRequestLimits({ maxBodyBytes: 64 * 1024, maxConcurrentRequests: 16 });
  private readonly api: ApiRoutes;
  private readonly secure: boolean;

  constructor(private readonly o: WebConsoleOptions) {
    const host = o.host ?? '127.0.0.1';
    // Passwords and session cookies travel in clear over HTTP: beyond loopback only HTTPS is served.
    if (!isLoopback(host) && !o.tls) throw new Error(`the web console on ${host} needs TLS: plain HTTP is served on loopback only`);
    this.secure = Boolean(o.tls);
    this.files = o.files ?? loadStaticFiles();
    this.sessions = new SessionTable({ ...DEFAULT_SESSION_LIMITS, ...o.sessions });
    this.gate = new RequestGate(this.limits);
    this.api = new ApiRoutes(o.port);
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.serve(req, res).catch((e: Error) => {
        if (!res.headersSent) this.json(res, 500, { error: e.message });
        else res.destroy();
      });
    };
    const timeouts = serverTimeoutOptions(this.limits);
    this.server = o.tls ? createTlsServer({ ...timeouts, cert: o.tls.cert, key: o.tls.key }, handler) : createServer(timeouts, handler);
    this.server.maxConnections = this.limits.maxConnections;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.listenPort, this.o.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.dispose();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/api/')) return this.serveFile(req, res, url.pathname);
    res.setHeader('Cache-Control', 'no-store');
    const changing = req.method !== 'GET' && req.method !== 'HEAD';
    if (changing && !this.sameOrigin(req, true)) return this.refuse(req, res, 403, 'the request did not come from this console (Origin)');
    if (!changing && !this.sameOrigin(req, false)) return this.refuse(req, res, 403, 'the request did not come from this console (Origin)');
    if (url.pathname === '/api/events' && req.method === 'GET') return this.openStream(req, res, url);
    if (!this.gate.admit(req, res)) return;
    if (url.pathname === '/api/login' && req.method === 'POST') return this.login(req, res);
    const session = this.session(req);
    if (!session) return this.refuse(req, res, 401, 'not logged in');
    if (url.pathname === '/api/session' && req.method === 'GET') return this.json(res, 200, { user: session.user, role: session.role, csrf: session.csrf });
    if (changing) {
      if (!csrfMatches(session, req.headers['x-csrf-token'])) return this.refuse(req, res, 403, 'missing or wrong CSRF token');
      if (url.pathname === '/api/logout' && req.method === 'POST') {
        this.sessions.close(session.id);
        for (const s of this.streams) if (s.sessionId === session.id) s.end();
        res.setHeader('Set-Cookie', sessionCookie(null, this.secure));
        return this.json(res, 200, {});
      }
      if (session.role !== 'full') return this.refuse(req, res, 403, `${session.user} has the read-only role: it may look, not act`);
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return this.json(res, 415, { error: 'send JSON (Content-Type: application/json)' });
    }
    const body = changing ? await readRequestBody(req, res, this.limits) : '';
    if (body === null) return;
    let parsed: unknown = null;
    if (changing) {
      try {
        parsed = body ? JSON.parse(body) : {};
      } catch {
        return this.json(res, 400, { error: 'the body is not JSON' });
      }
    }
    try {
      const r = await this.api.handle(req.method ?? 'GET', url.pathname, parsed);
      if (typeof r === 'string') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(r);
        return;
      }
      this.json(res, 200, r);
    } catch (e) {
      if (e instanceof ApiError) return this.json(res, e.status, { error: e.message, ...(e.returnValue !== undefined ? { returnValue: e.returnValue } : {}) });
      throw e;
    }
  }

  private serveFile(req: IncomingMessage, res: ServerResponse, path: string): void {
    const f = this.files.get(path);
    req.resume();
    if (!f || (req.method !== 'GET' && req.method !== 'HEAD')) return this.json(res, 404, { error: 'not found' });
    res.writeHead(200, { 'Content-Type': f.type, 'Content-Length': String(f.body.length), 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : f.body);
  }

  /**
   * Whether the request's Origin names this server (scheme, host and port as the browser reached
   * it). A change must carry one; a read may lack it (same-origin GETs often do).
   */
  private sameOrigin(req: IncomingMessage, required: boolean): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return !required;
    return origin === `${this.secure ? 'https' : 'http'}://${req.headers.host ?? ''}`;
  }

  private session(req: IncomingMessage): WebSession | null {
    const s = this.sessions.fromCookie(req.headers.cookie);
    if (!s) return null;
    // access.json changed under the session: a removed user, or a changed role, logs in again.
    if (this.o.authenticator.roleOfBasicUser(s.user) !== s.role) {
      this.sessions.close(s.id);
      return null;
    }
    return s;
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readRequestBody(req, res, this.limits);
    if (body === null) return;
    let user = '';
    let password = '';
    try {
      const p = JSON.parse(body) as { user?: unknown; password?: unknown };
      if (typeof p.user === 'string') user = p.user;
      if (typeof p.password === 'string') password = p.password;
    } catch {
      /* refused below */
    }
    const socket = req.socket;
    const auth = await this.o.authenticator.authenticate({
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
      client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? -1 },
      server: { address: socket.localAddress ?? '', port: socket.localPort ?? -1 },
    });
    if (!auth.ok || user.length === 0) return this.refuse(req, res, 401, auth.ok ? 'no user name' : auth.reason);
    const s = this.sessions.open(auth.principal, auth.role);
    res.setHeader('Set-Cookie', sessionCookie(s, this.secure));
    this.json(res, 200, { user: s.user, role: s.role, csrf: s.csrf });
  }

  private openStream(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const session = this.session(req);
    if (!session) return this.refuse(req, res, 401, 'not logged in');
    if (this.streams.size >= (this.o.maxStreams ?? 32)) {
      res.writeHead(503, { 'Retry-After': '5', 'Content-Length': '0' });
      res.end();
      return;
    }
    const mine = this.streamsOf.get(session.id) ?? 0;
    if (mine >= (this.o.maxStreamsPerSession ?? 8)) {
      res.writeHead(429, { 'Retry-After': '5', 'Content-Length': '0' });
      res.end();
      return;
    }
    const consoleVm = url.searchParams.get('console');
    if (consoleVm !== null && !this.o.port.detail(consoleVm)) return this.json(res, 404, { error: `no VM ${consoleVm}` });
    req.socket.setNoDelay(true);
    const sessionValid = () => this.sessions.has(session.id) && this.o.authenticator.roleOfBasicUser(session.user) === session.role;
    const stream = new EventStream(
      this.o.port,
      res,
      { consoleVm, sessionId: session.id, sessionValid, ...(this.o.consoleQueueBytes ? { consoleQueueBytes: this.o.consoleQueueBytes } : {}) },
      () => {
        this.streams.delete(stream);
        const left = (this.streamsOf.get(session.id) ?? 1) - 1;
        if (left > 0) this.streamsOf.set(session.id, left);
        else this.streamsOf.delete(session.id);
      },
    );
    this.streams.add(stream);
    this.streamsOf.set(session.id, mine + 1);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, status: number, reason: string): void {
    this.o.onRefused?.(`${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`, reason);
    req.resume();
    this.json(res, status, { error: reason });
  }

  private json(res: ServerResponse, status: number, value: unknown): void {
    const bytes = Buffer.from(JSON.stringify(value));
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(bytes.length) });
    res.end(bytes);
  }
}
