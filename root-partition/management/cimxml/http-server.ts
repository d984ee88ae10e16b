/**
 * CIM-XML over HTTP or HTTPS (DSP0200; cim-xml.md §1): POST with a bounded body; every request
 * authenticated by the authenticator (management/access: HTTP Basic, or the local user owning
 * the client's socket), loopback included; plain HTTP on loopback only (DESIGN.md §6).
 * Keep-alive is left on: `wbemcli cm` sends GetClass and the METHODCALL on one connection
 * (cim-xml.md §0 rule 13).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CimObjectManager } from '../cim/object-manager.ts';
import type { Authenticator } from '../access/authenticator.ts';
import { handleCimXml } from './request-handler.ts';

export interface CimXmlServerOptions {
  readonly manager: CimObjectManager;
  /** Address to listen on; default 127.0.0.1. Anything not loopback needs TLS. */
  readonly host?: string;
  /** Default 5988, the WBEM HTTP port (wbemcli's default, cim-xml.md §8); 0 picks a free port. */
  readonly port?: number;
  /** Decides who each request comes from and what it may do. */
  readonly authenticator: Authenticator;
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Told of each refused request (the service logs it). */
  readonly onRefused?: (client: string, reason: string) => void;
  /** Largest request body accepted; default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** WWW-Authenticate realm; Pegasus uses the host name (cim-xml.md §1.5). */
  readonly realm?: string;
}

// 1 MiB holds a DefineSystem with hundreds of embedded RASDs; parsing it takes well under a second.
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class CimXmlServer {
  private readonly server: Server;
  private readonly options: CimXmlServerOptions;
  private readonly maxBody: number;

  constructor(options: CimXmlServerOptions) {
    const host = options.host ?? '127.0.0.1';
    // Basic credentials travel in clear over HTTP: beyond loopback only HTTPS is served.
    if (!isLoopback(host) && !options.tls) throw new Error(`listening on ${host} needs TLS: plain HTTP is served on loopback only`);
    this.options = options;
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      // CIM failures become replies inside serve(); what reaches here is a broken socket or a
      // fault in the server itself, for which the only safe answer is 500 and a closed connection.
      this.serve(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Length': '0', Connection: 'close' });
        res.end();
      });
    };
    this.server = options.tls ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createServer(handler);
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
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Pegasus answers methods other than POST/M-POST with 501 (cim-xml.md §1.1); M-POST is not served.
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
    const body = await this.readBody(req, res);
    if (body === null) return;
    const header = (name: string) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(',') : v;
    };
    const host = hostWithoutPort(req.headers.host) ?? this.options.host ?? '127.0.0.1';
    const response = await handleCimXml(this.options.manager, {
      cimOperation: header('CIMOperation'),
      cimMethod: header('CIMMethod'),
      cimObject: header('CIMObject'),
      cimProtocolVersion: header('CIMProtocolVersion'),
      cimBatch: header('CIMBatch'),
      contentType: header('Content-Type'),
    }, body, host, auth.role);
    const bytes = Buffer.from(response.body, 'utf8');
    res.writeHead(response.status, { ...response.headers, 'Content-Length': String(bytes.length) });
    res.end(bytes);
  }

  /** The body as UTF-8, or null after answering 413 when it exceeds the bound. */
  private readBody(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
    const tooLarge = () => {
      res.writeHead(413, { 'Content-Length': '0', Connection: 'close' });
      res.end();
      req.destroy();
    };
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > this.maxBody) {
      tooLarge();
      return Promise.resolve(null);
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > this.maxBody) {
          done = true;
          tooLarge();
          resolve(null);
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (!done) {
          done = true;
          resolve(Buffer.concat(chunks).toString('utf8'));
        }
      });
      req.on('error', (e) => {
        if (!done) {
          done = true;
          reject(e);
        }
      });
    });
  }
}

/** HOST for response paths: the request's Host header without the port (cim-xml.md §7.1 `{NSP}`). */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1) || host;
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}
