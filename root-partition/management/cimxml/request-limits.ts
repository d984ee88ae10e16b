/**
 * What one client can make the CIM-XML server hold, and for how long. Everything here is answered
 * before a request is parsed: time-outs for slow headers and bodies (Node's defaults keep a stalled
 * upload for 300 s), a bounded body, a cap on requests served at once (503 with Retry-After beyond
 * it, RFC 9110 §15.6.4) and a per-address request rate (429 with Retry-After, RFC 6585 §4). With
 * at most `maxConcurrentRequests` bodies of at most `maxBodyBytes` in memory, and each document
 * bounded by xml-limits.ts, the memory and the parsing work all clients together can cause is bounded.
 */
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import { DEFAULT_XML_LIMITS, type XmlLimits } from './xml-limits.ts';
import { DEFAULT_INLINE_PARSE_MAX_BYTES } from './xml-parser-thread.ts';

export interface CimXmlRequestLimits {
  /** Largest request body; 413 beyond it. */
  readonly maxBodyBytes: number;
  /** From connection to the end of the request headers (node:http headersTimeout); 408 after it. */
  readonly headersTimeoutMs: number;
  /** From connection to the end of the body (node:http requestTimeout); 408 after it. */
  readonly requestTimeoutMs: number;
  /** Longest pause between two pieces of a body; 408 after it. */
  readonly bodyIdleTimeoutMs: number;
  /** Requests being read or served at once, all clients together; 503 beyond it. */
  readonly maxConcurrentRequests: number;
  /** Sustained requests per second from one client address; 429 beyond it. */
  readonly clientRequestsPerSecond: number;
  /** Requests one client address may send in a burst above that rate. */
  readonly clientBurst: number;
  /** Open connections, all clients together (node:net maxConnections); more are closed at once. */
  readonly maxConnections: number;
  /** Elements and attributes of the request document (xml-limits.ts). */
  readonly xml: XmlLimits;
  /** Bodies up to this size are parsed on the service's thread, larger ones on the parser thread (xml-parser-thread.ts). */
  readonly inlineParseMaxBytes: number;
  /** Heap of the parser thread; a document that needs more ends the thread (500), not the service. */
  readonly parserHeapMb: number;
}

// 1 MiB holds a DefineSystem with hundreds of embedded RASDs. A request to this server is served in
// milliseconds, so 30 s is generous for any client that is not stalling on purpose.
export const DEFAULT_REQUEST_LIMITS: CimXmlRequestLimits = {
  maxBodyBytes: 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  bodyIdleTimeoutMs: 10_000,
  maxConcurrentRequests: 8,
  clientRequestsPerSecond: 100,
  clientBurst: 200,
  maxConnections: 256,
  xml: DEFAULT_XML_LIMITS,
  inlineParseMaxBytes: DEFAULT_INLINE_PARSE_MAX_BYTES,
  parserHeapMb: 256,
};

export function resolveRequestLimits(given: Partial<CimXmlRequestLimits> = {}): CimXmlRequestLimits {
  const limits = { ...DEFAULT_REQUEST_LIMITS, ...given, xml: { ...DEFAULT_XML_LIMITS, ...given.xml } };
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value === 'number' && !(Number.isFinite(value) && value > 0))
      throw new RangeError(`request limit ${name} must be a positive number, got ${value}`);
  }
  // node:http refuses a headers time-out longer than the request time-out.
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) throw new RangeError('headersTimeoutMs must not exceed requestTimeoutMs');
  return limits;
}

/** The node:http server options that enforce the time-outs (pass to createServer). */
export function serverTimeoutOptions(limits: CimXmlRequestLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // node:http checks both time-outs only this often (default 30 s); a quarter of the shorter
    // one keeps a stalled client's overstay small.
    connectionsCheckingInterval: Math.max(10, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
  };
}

/** Token buckets per client address; at most MAX_TRACKED_CLIENTS remembered at once. */
class ClientRates {
  private static readonly MAX_TRACKED_CLIENTS = 4096;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly rate: number;
  private readonly burst: number;

  constructor(rate: number, burst: number) {
    this.rate = rate;
    this.burst = burst;
  }

  /** 0 when the client may send now, else the seconds until it may. */
  take(client: string, now: number): number {
    let b = this.buckets.get(client);
    if (!b) {
      this.forgetIdle(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.rate);
  }

  private forgetIdle(now: number): void {
    if (this.buckets.size < ClientRates.MAX_TRACKED_CLIENTS) return;
    // A full bucket holds nothing worth remembering; beyond that, the oldest entries go first.
    for (const [client, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(client);
    }
    for (const client of this.buckets.keys()) {
      if (this.buckets.size < ClientRates.MAX_TRACKED_CLIENTS) break;
      this.buckets.delete(client);
    }
  }
}

export interface RequestGateCounters {
  /** Requests admitted and not yet answered. */
  readonly inFlight: number;
  readonly refusedBusy: number;
  readonly refusedRate: number;
}

/**
 * Admission of requests: call `admit` first thing for each request. A refused request is answered
 * here (and its connection closed, so its unread body costs nothing); an admitted one holds a slot
 * until its response is finished or its connection is gone.
 */
export class RequestGate {
  private readonly limits: CimXmlRequestLimits;
  private readonly rates: ClientRates;
  private inFlight = 0;
  private refusedBusy = 0;
  private refusedRate = 0;

  constructor(limits: CimXmlRequestLimits) {
    this.limits = limits;
    this.rates = new ClientRates(limits.clientRequestsPerSecond, limits.clientBurst);
  }

  get counters(): RequestGateCounters {
    return { inFlight: this.inFlight, refusedBusy: this.refusedBusy, refusedRate: this.refusedRate };
  }

  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const wait = this.rates.take(req.socket.remoteAddress ?? '', Date.now());
    if (wait > 0) {
      this.refusedRate++;
      refuse(req, res, 429, wait);
      return false;
    }
    if (this.inFlight >= this.limits.maxConcurrentRequests) {
      this.refusedBusy++;
      refuse(req, res, 503, 1);
      return false;
    }
    this.inFlight++;
    res.once('close', () => this.inFlight--);
    return true;
  }
}

function refuse(req: IncomingMessage, res: ServerResponse, status: 429 | 503, retryAfterSeconds: number): void {
  res.writeHead(status, { 'Retry-After': String(retryAfterSeconds), 'Content-Length': '0', Connection: 'close' });
  // The body is discarded, not parsed; the connection closes once the answer is out.
  req.resume();
  res.end();
}

/**
 * The body as UTF-8, or null after answering: 413 past `maxBodyBytes` (by Content-Length or while
 * streaming), 408 when the client pauses longer than `bodyIdleTimeoutMs`. Either closes the
 * connection, since the rest of the body will not be read.
 */
export function readRequestBody(req: IncomingMessage, res: ServerResponse, limits: CimXmlRequestLimits): Promise<string | null> {
  const fail = (status: 408 | 413) => {
    if (!res.headersSent) {
      res.writeHead(status, { 'Content-Length': '0', Connection: 'close' });
      res.end();
    }
    req.destroy();
  };
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limits.maxBodyBytes) {
    fail(413);
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (body: string | null, status?: 408 | 413) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      if (status) fail(status);
      resolve(body);
    };
    let idle = setTimeout(() => finish(null, 408), limits.bodyIdleTimeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limits.maxBodyBytes) {
        finish(null, 413);
        return;
      }
      chunks.push(chunk);
      clearTimeout(idle);
      idle = setTimeout(() => finish(null, 408), limits.bodyIdleTimeoutMs);
    });
    req.on('end', () => finish(Buffer.concat(chunks).toString('utf8')));
    req.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      reject(e);
    });
    // A client that goes away mid-body: nothing to answer, nothing left to hold.
    req.on('close', () => finish(null));
  });
}
