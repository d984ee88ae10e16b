import { request, Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CimXmlServer, hostWithoutPort, isLoopback } from '../../root-partition/management/cimxml/http-server.ts';
import { createFixture, VM_NAME } from './fixtures.ts';
import { testAuthenticator } from './access-fixture.ts';
import { LoginBackoff } from '../../root-partition/management/access/login-backoff.ts';
import { K, NS, wbemcliBody } from './cimxml-reference.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(port: number, body: string | Buffer, headers: Record<string, string>, agent?: Agent, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/cimom', method, headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const cimHeaders = (method: string, auth?: string): Record<string, string> => ({
  'Content-Type': 'application/xml; charset="utf-8"',
  CIMOperation: 'MethodCall',
  CIMMethod: method,
  CIMObject: 'root%2Fvirtualization%2Fv2',
  CIMProtocolVersion: '1.0',
  ...(auth ? { Authorization: auth } : {}),
});
const ein = wbemcliBody(
  `<IMETHODCALL NAME="EnumerateInstanceNames">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE></IMETHODCALL>`,
);

describe('CIM-XML HTTP server with credentials', () => {
  let server: CimXmlServer;
  let dispose = () => {};
  let port = 0;
  beforeAll(async () => {
    const access = await testAuthenticator([{ user: 'user', password: 'pass', role: 'full' }], { backoff: new LoginBackoff({ baseMs: 1, maxMs: 1 }) });
    dispose = access.dispose;
    server = new CimXmlServer({ manager: createFixture().manager, port: 0, authenticator: access.authenticator, maxBodyBytes: 64 * 1024, realm: 'HOST1' });
    port = (await server.listen()).port;
  });
  afterAll(async () => {
    await server.close();
    dispose();
  });

  it('serves a request with the reply headers of DSP0200', async () => {
    const r = await post(port, ein, cimHeaders('EnumerateInstanceNames', basic('user', 'pass')));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/xml; charset="utf-8"');
    expect(r.headers.cimoperation).toBe('MethodResponse');
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
    expect(r.body).toContain(`<KEYVALUE VALUETYPE="string">${VM_NAME}</KEYVALUE>`);
  });

  it('answers 401 with a Basic challenge for missing or wrong credentials', async () => {
    for (const auth of [undefined, basic('user', 'wrong'), basic('other', 'pass'), 'Basic !!!', 'Digest x']) {
      const r = await post(port, ein, cimHeaders('EnumerateInstanceNames', auth));
      expect([r.status, r.headers['www-authenticate'], r.body]).toEqual([401, 'Basic realm="HOST1"', '']);
    }
  });

  it('bounds the body: 413 and the connection closed, by Content-Length and while streaming', async () => {
    const big = Buffer.alloc(65 * 1024, 0x20);
    const r = await post(port, big, cimHeaders('EnumerateInstanceNames', basic('user', 'pass')));
    expect([r.status, r.headers.connection]).toEqual([413, 'close']);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/cimom',
          method: 'POST',
          headers: { ...cimHeaders('EnumerateInstanceNames', basic('user', 'pass')), 'Transfer-Encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write(Buffer.alloc(8 * 1024, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
  });

  it('answers 501 to methods other than POST', async () => {
    const r = await post(port, '', {}, undefined, 'GET');
    expect(r.status).toBe(501);
  });

  it('keeps the connection alive for GetClass then METHODCALL, as wbemcli cm does', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    agent.on('free', (socket) => sockets.add(socket));
    const gc = wbemcliBody(
      `<IMETHODCALL NAME="GetClass">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE></IMETHODCALL>`,
    );
    const r1 = await post(port, gc, cimHeaders('GetClass', basic('user', 'pass')), agent);
    const cm = wbemcliBody(
      `<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>${NS}${K}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState"><VALUE>2</VALUE></PARAMVALUE></METHODCALL>`,
    );
    const r2 = await post(
      port,
      cm,
      {
        ...cimHeaders('RequestStateChange', basic('user', 'pass')),
        CIMObject: `root%2Fvirtualization%2Fv2%3AMsvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"`,
      },
      agent,
    );
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(r2.body).toContain('<RETURNVALUE PARAMTYPE="uint32"><VALUE>4096</VALUE></RETURNVALUE>');
    expect(sockets.size).toBe(1);
    agent.destroy();
  });

  it('uses the Host header without its port as HOST in returned paths', async () => {
    const r = await post(port, wbemcliBody(`<IMETHODCALL NAME="AssociatorNames">${NS}<IPARAMVALUE NAME="ObjectName">${K}</IPARAMVALUE></IMETHODCALL>`), {
      ...cimHeaders('AssociatorNames', basic('user', 'pass')),
      Host: 'vmhost.example:5988',
    });
    expect(r.body).toContain('<HOST>vmhost.example</HOST>');
  });
});

describe('CIM-XML HTTP server exposure rules', () => {
  it('refuses plain HTTP beyond loopback', async () => {
    const { manager } = createFixture();
    const { authenticator, dispose } = await testAuthenticator([]);
    try {
      expect(() => new CimXmlServer({ manager, authenticator, host: '0.0.0.0' })).toThrow(/needs TLS/);
      expect(() => new CimXmlServer({ manager, authenticator, host: '127.0.0.1' })).not.toThrow();
    } finally {
      dispose();
    }
  });

  it("serves a loopback request without credentials only to a trusted local user (here root, the test's user)", async () => {
    const access = await testAuthenticator([], { trustedUids: [process.geteuid!()] });
    const server = new CimXmlServer({ manager: createFixture().manager, port: 0, authenticator: access.authenticator });
    const { port, address } = await server.listen();
    try {
      expect(address).toBe('127.0.0.1');
      const r = await post(port, ein, cimHeaders('EnumerateInstanceNames'));
      expect(r.status).toBe(200);
    } finally {
      await server.close();
      access.dispose();
    }
  });

  it('recognises loopback names and strips ports from Host', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '10.0.0.1', '::'].map(isLoopback)).toEqual([false, false, false]);
    expect(['127.0.0.1:5988', '[::1]:5988', 'host', '::1'].map(hostWithoutPort)).toEqual(['127.0.0.1', '[::1]', 'host', '::1']);
  });
});
