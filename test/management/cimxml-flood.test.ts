/**
 * The request limits of the CIM-XML server against a real server on a real socket: slow and
 * stalled clients are cut off by the time-outs while others are served, excess requests get 503,
 * a client over its rate gets 429, oversized documents 413 — and a flood of large bodies leaves the
 * service answering. Time-outs are configured short here; the defaults are tested by value.
 */
import { request, Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CimXmlServer } from '../../root-partition/management/cimxml/http-server.ts';
import { DEFAULT_REQUEST_LIMITS, resolveRequestLimits, type CimXmlRequestLimits } from '../../root-partition/management/cimxml/request-limits.ts';
import { testAuthenticator } from './access-fixture.ts';
import { createFixture } from './fixtures.ts';
import { NS, wbemcliBody } from './cimxml-reference.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const HEADERS: Record<string, string> = {
  'Content-Type': 'application/xml; charset="utf-8"',
  CIMOperation: 'MethodCall',
  CIMMethod: 'EnumerateInstanceNames',
  CIMObject: 'root%2Fvirtualization%2Fv2',
  CIMProtocolVersion: '1.0',
};
const EIN = wbemcliBody(
  `<IMETHODCALL NAME="EnumerateInstanceNames">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE></IMETHODCALL>`,
);
const noKeepAlive = new Agent({ keepAlive: false, maxSockets: Infinity });

function post(port: number, body: string | Buffer = EIN): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/cimom', method: 'POST', headers: HEADERS, agent: noKeepAlive }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw client: sends `head` (and no more) and records what comes back and when the server closes. */
class RawClient {
  readonly socket: Socket;
  readonly opened = performance.now();
  received = '';
  closedAfterMs: Promise<number>;

  constructor(port: number, head: string) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => (this.received += d.toString('latin1')));
    this.socket.on('error', () => {});
    this.closedAfterMs = new Promise((resolve) => this.socket.on('close', () => resolve(performance.now() - this.opened)));
    this.socket.write(head);
  }

  /** The request head of a POST whose body is `length` bytes long. */
  static head(length: number): string {
    return `POST /cimom HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(HEADERS)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}Content-Length: ${length}\r\n\r\n`;
  }

  get status(): number | null {
    const m = /^HTTP\/1\.1 (\d{3})/.exec(this.received);
    return m ? Number(m[1]) : null;
  }
}

const servers: CimXmlServer[] = [];
const clients: RawClient[] = [];
const disposers: (() => void)[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  for (const s of servers.splice(0)) await s.close();
  for (const d of disposers.splice(0)) d();
});

async function start(limits: Partial<CimXmlRequestLimits>): Promise<{ server: CimXmlServer; port: number }> {
  // The raw clients run as this process's user, identified by their socket's owner (trusted here).
  const { authenticator, dispose } = await testAuthenticator([], { trustedUids: [process.getuid!()] });
  disposers.push(dispose);
  const server = new CimXmlServer({ manager: createFixture().manager, port: 0, limits, authenticator });
  servers.push(server);
  return { server, port: (await server.listen()).port };
}

function raw(port: number, head: string): RawClient {
  const c = new RawClient(port, head);
  clients.push(c);
  return c;
}

const until = (what: () => boolean, ms = 5000) =>
  vi.waitFor(
    () => {
      if (!what()) throw new Error('condition not reached in time');
    },
    { timeout: ms, interval: 10 },
  );

describe('CIM-XML request time-outs', () => {
  it('cuts off a client that stalls in its body (408, closed) while another client is served', async () => {
    const { port } = await start({ bodyIdleTimeoutMs: 400, headersTimeoutMs: 5000, requestTimeoutMs: 10_000 });
    const loris = raw(port, RawClient.head(EIN.length) + EIN.slice(0, 100));
    // Served while the stalled client holds its connection and its slot.
    const other = await post(port);
    expect(other.status).toBe(200);
    expect(loris.status).toBeNull();
    const after = await loris.closedAfterMs;
    expect(loris.status).toBe(408);
    expect(after).toBeGreaterThanOrEqual(350);
    expect(after).toBeLessThan(5000);
  });

  it('cuts off a client that trickles its body faster than the idle time-out, at the request time-out', async () => {
    const { port } = await start({ bodyIdleTimeoutMs: 1000, headersTimeoutMs: 400, requestTimeoutMs: 1200 });
    const trickle = raw(port, RawClient.head(EIN.length));
    let sent = 0;
    const timer = setInterval(() => {
      if (!trickle.socket.destroyed && sent < EIN.length) trickle.socket.write(EIN[sent++]!);
    }, 100);
    try {
      const after = await trickle.closedAfterMs;
      expect(trickle.status).toBe(408);
      expect(sent).toBeLessThan(EIN.length);
      expect(after).toBeGreaterThanOrEqual(1100);
      expect(after).toBeLessThan(6000);
    } finally {
      clearInterval(timer);
    }
  });

  it('cuts off a client that never finishes its headers (408 at the headers time-out)', async () => {
    const { port } = await start({ headersTimeoutMs: 400, requestTimeoutMs: 2000 });
    const slow = raw(port, 'POST /cimom HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    expect((await post(port)).status).toBe(200);
    const after = await slow.closedAfterMs;
    expect(slow.status).toBe(408);
    expect(after).toBeGreaterThanOrEqual(350);
    expect(after).toBeLessThan(5000);
  });

  it('has the documented defaults: 10 s headers, 30 s request, 10 s body pause, 1 MiB, 8 at once', () => {
    expect(DEFAULT_REQUEST_LIMITS).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      bodyIdleTimeoutMs: 10_000,
      maxBodyBytes: 1024 * 1024,
      maxConcurrentRequests: 8,
      clientRequestsPerSecond: 100,
      clientBurst: 200,
      maxConnections: 256,
      inlineParseMaxBytes: 16 * 1024,
      parserHeapMb: 256,
      xml: { maxElements: 20_000, maxAttributes: 50_000, maxAttributesPerElement: 32 },
    });
    expect(() => resolveRequestLimits({ maxConcurrentRequests: 0 })).toThrow(/maxConcurrentRequests must be a positive number/);
    expect(() => resolveRequestLimits({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).toThrow(/headersTimeoutMs must not exceed/);
  });
});

describe('CIM-XML admission', () => {
  it('answers 503 with Retry-After beyond the concurrency cap, and serves again once a slot is free', async () => {
    const { server, port } = await start({ maxConcurrentRequests: 2, bodyIdleTimeoutMs: 10_000 });
    const a = raw(port, RawClient.head(EIN.length) + EIN.slice(0, 10));
    const b = raw(port, RawClient.head(EIN.length) + EIN.slice(0, 10));
    await until(() => server.requestCounters.inFlight === 2);
    const refused = await post(port);
    expect([refused.status, refused.headers['retry-after'], refused.headers.connection]).toEqual([503, '1', 'close']);
    a.socket.write(EIN.slice(10));
    await until(() => a.status !== null);
    expect(a.status).toBe(200);
    await until(() => server.requestCounters.inFlight === 1);
    expect((await post(port)).status).toBe(200);
    b.socket.destroy();
    await until(() => server.requestCounters.inFlight === 0);
    expect(server.requestCounters.refusedBusy).toBe(1);
  });

  it('answers 429 with Retry-After to a client over its rate', async () => {
    const { server, port } = await start({ clientRequestsPerSecond: 2, clientBurst: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await post(port)).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toContain(429);
    const limited = await post(port);
    expect([limited.status, limited.headers['retry-after']]).toEqual([429, '1']);
    expect(server.requestCounters.refusedRate).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await post(port)).status).toBe(200);
  });
});

describe('CIM-XML flood of large bodies', () => {
  it('refuses 16 parallel 1 MiB bodies of 250 000 elements and keeps serving, with the event loop free', async () => {
    const { server, port } = await start({ maxConcurrentRequests: 4 });
    const flood = Buffer.from(
      EIN.replace('</IMETHODCALL>', `${'<X/>'.repeat(250_000)}</IMETHODCALL>`).slice(0, 1024 * 1024 - 100) + '</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>',
    );
    const oversized = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const replies = await Promise.all([
      ...Array.from({ length: 16 }, () => post(port, flood).catch(() => ({ status: 0, headers: {}, body: '' }))),
      ...Array.from({ length: 4 }, () => post(port, oversized).catch(() => ({ status: 0, headers: {}, body: '' }))),
    ]);
    delay.disable();
    const statuses = replies.map((r) => r.status);
    // Every large body is refused, by count (413) or because the server was busy (503).
    expect(statuses.every((s) => s === 413 || s === 503)).toBe(true);
    expect(statuses.filter((s) => s === 413).length).toBeGreaterThanOrEqual(4);
    expect((await post(port)).status).toBe(200);
    expect(server.requestCounters.inFlight).toBe(0);
    // The service's thread never stalled for long: each body is counted up to the limit, not parsed.
    expect(delay.max / 1e6).toBeLessThan(1000);
  });
});

describe('CIM-XML parsing off the service thread', () => {
  const SVC =
    'root%2Fvirtualization%2Fv2%3AMsvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HOST1"';
  const SHORT_NS = '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virtualization"/><NAMESPACE NAME="v2"/></LOCALNAMESPACEPATH>';
  const SERVICE =
    '<INSTANCENAME CLASSNAME="Msvm_VirtualSystemManagementService"><KEYBINDING NAME="CreationClassName"><KEYVALUE VALUETYPE="string">Msvm_VirtualSystemManagementService</KEYVALUE></KEYBINDING><KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">vmms</KEYVALUE></KEYBINDING><KEYBINDING NAME="SystemCreationClassName"><KEYVALUE VALUETYPE="string">Msvm_ComputerSystem</KEYVALUE></KEYBINDING><KEYBINDING NAME="SystemName"><KEYVALUE VALUETYPE="string">HOST1</KEYVALUE></KEYBINDING></INSTANCENAME>';

  function postAs(port: number, body: string, method: string, object: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/cimom', method: 'POST', headers: { ...HEADERS, CIMMethod: method, CIMObject: object }, agent: noKeepAlive },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('parses 1 MiB bodies on the parser thread and answers a small request meanwhile', async () => {
    const { server, port } = await start({ maxConcurrentRequests: 16 });
    const large = EIN.replace('</IMETHODCALL>', `<!-- ${'x'.repeat(1024 * 1024 - 1000)} --></IMETHODCALL>`);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let largeDone = 0;
    const larges = Array.from({ length: 6 }, () =>
      post(port, large).then((r) => {
        largeDone++;
        return r;
      }),
    );
    await until(() => server.requestCounters.inFlight === 6);
    const small = await post(port);
    const largeDoneWhenSmallAnswered = largeDone;
    const replies = await Promise.all(larges);
    delay.disable();
    expect(small.status).toBe(200);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(replies[0]!.body).toBe(small.body);
    expect(server.offThreadParses).toBe(6);
    // The small request did not queue behind the large ones.
    expect(largeDoneWhenSmallAnswered).toBeLessThan(6);
    expect(delay.max / 1e6).toBeLessThan(1000);
  });

  it('parses embedded instances of a large body on the parser thread too, failures included', async () => {
    const { server, port } = await start({});
    const padding = `<!-- ${'p'.repeat(32 * 1024)} -->`;
    const settings = (name: string) =>
      `&lt;INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData"&gt;&lt;PROPERTY NAME="ElementName" TYPE="string"&gt;&lt;VALUE&gt;${name}&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;PROPERTY NAME="GuestImagePath" TYPE="string"&gt;&lt;VALUE&gt;/x.wasm&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;`;
    const define = (value: string) =>
      wbemcliBody(
        `<METHODCALL NAME="DefineSystem"><LOCALINSTANCEPATH>${SHORT_NS}${SERVICE}</LOCALINSTANCEPATH><PARAMVALUE NAME="SystemSettings"><VALUE>${value}</VALUE></PARAMVALUE>${padding}</METHODCALL>`,
      );
    const ok = await postAs(port, define(settings('big-request')), 'DefineSystem', SVC);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('<RETURNVALUE PARAMTYPE="uint32"><VALUE>0</VALUE></RETURNVALUE>');
    const bad = await postAs(port, define(settings('a&amp;nbsp;b')), 'DefineSystem', SVC);
    expect(bad.body).toMatch(
      /<ERROR CODE="4" DESCRIPTION="CIM_ERR_INVALID_PARAMETER: embedded instance is not well-formed XML: &amp;nbsp; is not an XML entity/,
    );
    const notWellFormed = await postAs(port, define(settings('x')).replace('<METHODCALL', '<METHODCALL &nbsp;'), 'DefineSystem', SVC);
    expect([notWellFormed.status, notWellFormed.headers.cimerror]).toEqual([400, 'request-not-well-formed']);
    expect(server.offThreadParses).toBe(3);
  });

  it('answers 500 when the parser thread dies (out of memory) and keeps serving', async () => {
    // A heap far too small for the parser thread to even start: every off-thread parse fails.
    const { server, port } = await start({ parserHeapMb: 2 });
    const large = EIN.replace('</IMETHODCALL>', `<!-- ${'x'.repeat(64 * 1024)} --></IMETHODCALL>`);
    const r = await post(port, large);
    expect([r.status, r.headers.connection]).toEqual([500, 'close']);
    expect((await post(port)).status).toBe(200);
    expect((await post(port, large)).status).toBe(500);
    expect(server.requestCounters.inFlight).toBe(0);
  });
});
