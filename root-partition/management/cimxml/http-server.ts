/**
 * CIM-XML over HTTP or HTTPS (DSP0200): POST with a bounded body; every request
 * authenticated by the authenticator (management/access: HTTP Basic, or the local user owning
 * the client's socket), loopback included; plain HTTP on loopback only (docs/management.md).
 * Keep-alive is left on: `wbemcli cm` sends GetClass and the METHODCALL on one connection
 * (a silent close makes it fail). Time-outs, body size, concurrency and per-client rate are
 * request-limits.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CimObjectManager } from '../cim/object-manager.ts';
import type { Authenticator } from '../access/authenticator.ts';
import { handleCimXml } from './request-handler.ts';
import { XmlParserThread } from './xml-parser-thread.ts';
import {
  DEFAULT_REQUEST_LIMITS,
  readRequestBody,
  RequestGate,
  resolveRequestLimits,
  serverTimeoutOptions,
  type CimXmlRequestLimits,
  type RequestGateCounters,
} from './request-limits.ts';

export interface CimXmlServerOptions {
  readonly manager: CimObjectManager;
  /** Address to listen on; default 127.0.0.1. Anything not loopback needs TLS. */
  readonly host?: string;
  /** Default 5988, the WBEM HTTP port (wbemcli's default, wbemcli(1)); 0 picks a free port. */
  readonly port?: number;
  /** Decides who each request comes from and what it may do. */
  readonly authenticator: Authenticator;
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Told of each refused request (the service logs it). */
  readonly onRefused?: (client: string, reason: string) => void;
  /** Largest request body accepted; default 1 MiB (the same as limits.maxBodyBytes). */
  readonly maxBodyBytes?: number;
  /** Time-outs, concurrency, rates and document bounds; each defaults to DEFAULT_REQUEST_LIMITS. */
  readonly limits?: Partial<CimXmlRequestLimits>;
  /** WWW-Authenticate realm; Pegasus uses the host name (OpenPegasus HTTPAuthenticatorDelegator). */
  readonly realm?: string;
}

export const DEFAULT_MAX_BODY_BYTES = DEFAULT_REQUEST_LIMITS.maxBodyBytes;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class CimXmlServer {
  private readonly server: Server;
  private readonly options: CimXmlServerOptions;
  private readonly limits: CimXmlRequestLimits;
  private readonly gate: RequestGate;
  private readonly parser: XmlParserThread;

  constructor(options: CimXmlServerOptions) {
    const host = options.host ?? '127.0.0.1';
    // Basic credentials travel in clear over HTTP: beyond loopback only HTTPS is served.
    if (!isLoopback(host) && !options.tls) throw new Error(`listening on ${host} needs TLS: plain HTTP is served on loopback only`);
    this.options = options;
    this.limits = resolveRequestLimits({ ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}), ...options.limits });
    this.gate = new RequestGate(this.limits);
    this.parser = new XmlParserThread({ inlineMaxBytes: this.limits.inlineParseMaxBytes, heapLimitMb: this.limits.parserHeapMb });
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      // CIM failures become replies inside serve(); what reaches here is a broken socket or a
      // fault in the server itself, for which the only safe answer is 500 and a closed connection.
      this.serve(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Length': '0', Connection: 'close' });
        res.end();
      });
    };
    const timeouts = serverTimeoutOptions(this.limits);
    this.server = options.tls ? createTlsServer({ ...timeouts, cert: options.tls.cert, key: options.tls.key }, handler) : createServer(timeouts, handler);
    this.server.maxConnections = this.limits.maxConnections;
  }

  /** Request bodies parsed on the parser thread so far (xml-parser-thread.ts). */
  get offThreadParses(): number {
    return this.parser.offThreadCount;
  }

  /** Requests in flight and refused so far (request-limits.ts). */
  get requestCounters(): RequestGateCounters {
    return this.gate.counters;
  }

  async listen(): Promise<AddressInfo> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 5988, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.parser.close();
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.gate.admit(req, res)) return;
    // Pegasus answers methods other than POST/M-POST with 501 (OpenPegasus); M-POST is not served.
    if (req.method !== 'POST') {
      req.resume();
      res.writeHead(501, { 'Content-Length': '0' });
      res.end();
      return;
    }
    const socket = req.socket;
    const auth = await this.options.authenticator.authenticate({
      authorization: req.headers.authorization,
      client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? -1 },
      server: { address: socket.localAddress ?? '', port: socket.localPort ?? -1 },
    });
    if (!auth.ok) {
      this.options.onRefused?.(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, auth.reason);
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': `Basic realm="${this.options.realm ?? 'tsvisor'}"`, 'Content-Length': '0' });
      res.end();
      return;
    }
    const body = await readRequestBody(req, res, this.limits);
    if (body === null) return;
    const header = (name: string) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(',') : v;
    };
    const host = hostWithoutPort(req.headers.host) ?? this.options.host ?? '127.0.0.1';
    const response = await handleCimXml(
      this.options.manager,
      {
        cimOperation: header('CIMOperation'),
        cimMethod: header('CIMMethod'),
        cimObject: header('CIMObject'),
        cimProtocolVersion: header('CIMProtocolVersion'),
        cimBatch: header('CIMBatch'),
        contentType: header('Content-Type'),
      },
      body,
      host,
      auth.role,
      { xmlLimits: this.limits.xml, parser: this.parser },
    );
    const bytes = Buffer.from(response.body, 'utf8');
    res.writeHead(response.status, { ...response.headers, 'Content-Length': String(bytes.length) });
    res.end(bytes);
  }
}

/** HOST for response paths: the request's Host header without the port (as Pegasus writes HOST in NAMESPACEPATH). */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1) || host;
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}
