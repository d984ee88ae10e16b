/**
 * The management access layer on its own: the /proc/net/tcp socket-owner lookup, scrypt
 * password hashes, the access file's checks, the login back-off, the authenticator's decisions
 * and the roles applied to CIM-XML requests.
 */
import { chmodSync, chownSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAccessFile, writeAccessFile } from '../../root-partition/management/access/access-file.ts';
import { LoginBackoff } from '../../root-partition/management/access/login-backoff.ts';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../root-partition/management/access/password-hash.ts';
import { procAddress, tcpPeerUid } from '../../root-partition/management/access/peer-uid.ts';
import { needsFullRole } from '../../root-partition/management/access/roles.ts';
import { handleCimXml } from '../../root-partition/management/cimxml/request-handler.ts';
import { accessList, testAuthenticator } from './access-fixture.ts';
import { K, NS, S, wbemcliBody, wbemcliHeaders } from './cimxml-reference.ts';
import { createFixture } from './fixtures.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsv-acc-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the socket owner from /proc/net/tcp', () => {
  it('writes addresses as the kernel prints them (each 32-bit word in host order)', () => {
    expect(procAddress({ address: '127.0.0.1', port: 5988 }, true)).toEqual({ table: 'tcp', text: '0100007F:1764' });
    expect(procAddress({ address: '127.0.0.1', port: 5988 }, false)).toEqual({ table: 'tcp', text: '7F000001:1764' });
    expect(procAddress({ address: '::1', port: 80 }, true)).toEqual({ table: 'tcp6', text: '00000000000000000000000001000000:0050' });
    expect(procAddress({ address: '::ffff:127.0.0.1', port: 1 }, true)).toEqual({ table: 'tcp6', text: '0000000000000000FFFF00000100007F:0001' });
    expect(procAddress({ address: 'fe80::1:2', port: 1 }, false)!.text).toBe('FE800000000000000000000000010002:0001');
    for (const bad of ['', '1.2.3', '300.1.1.1', '1::2::3', 'x']) expect(procAddress({ address: bad, port: 1 })).toBeNull();
  });

  it('finds the uid of a live client socket; TIME_WAIT and orphaned entries (uid 0, inode 0) count for nobody', () => {
    const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    const row = (st: string, uid: number, inode: number) =>
      `   0: 0100007F:9C40 0100007F:1764 ${st} 00000000:00000000 00:00000000 00000000  ${uid}        0 ${inode} 1 0000000000000000 20 4 30 10 -1\n`;
    const lookup = (table: string) => tcpPeerUid({ address: '127.0.0.1', port: 40000 }, { address: '127.0.0.1', port: 5988 }, () => header + table);
    expect(lookup(row('01', 1000, 4711))).toBe(1000);
    expect(lookup(row('06', 0, 0))).toBeNull();
    expect(lookup(row('05', 0, 0))).toBeNull();
    expect(lookup(row('0A', 0, 99))).toBeNull();
    expect(lookup('')).toBeNull();
    // A dual-stack listener's view of an IPv4 client: found under the plain IPv4 address.
    expect(
      tcpPeerUid({ address: '::ffff:127.0.0.1', port: 40000 }, { address: '::ffff:127.0.0.1', port: 5988 }, (f) =>
        f.endsWith('tcp') ? header + row('01', 1001, 7) : header,
      ),
    ).toBe(1001);
  });

  it('reads the real table: this process owns its own client socket', async () => {
    let server!: Server;
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer(resolve);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = createConnection((server.address() as { port: number }).port, '127.0.0.1');
    const s = await accepted;
    try {
      const uid = tcpPeerUid({ address: s.remoteAddress!, port: s.remotePort! }, { address: s.localAddress!, port: s.localPort! });
      expect(uid).toBe(process.geteuid!());
    } finally {
      client.destroy();
      s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('passwords', () => {
  it('stores scrypt with a salt per hash, verifies in both directions, refuses empty passwords and absurd parameters', async () => {
    const a = await hashPassword('s3cret');
    const b = await hashPassword('s3cret');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('s3cret', a)).toBe(true);
    expect(await verifyPassword('s3cret!', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
    await expect(hashPassword('')).rejects.toThrow(/empty password/);
    expect(parsePasswordHash(a.replace('$16384$', '$1073741824$'))).toMatch(/out of range/);
    expect(parsePasswordHash('user:plaintext')).toMatch(/must be scrypt/);
  });
});

describe('the access file', () => {
  it('is written 0600 and read back; refused when others may read it, someone else owns it, it is a symlink, or it has unknown fields', async () => {
    const file = join(dir, 'access.json');
    writeAccessFile(file, await accessList([{ user: 'op', password: 'pw', role: 'full' }], [{ uid: 1001, role: 'read-only' }]));
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    expect(readAccessFile(file)).toMatchObject({ local: [{ uid: 1001, role: 'read-only' }], basic: [{ user: 'op', role: 'full' }] });
    chmodSync(file, 0o644);
    expect(() => readAccessFile(file)).toThrow(`${file} has mode 0644: others may read or change it; run chmod 600 ${file}`);
    chmodSync(file, 0o600);
    chownSync(file, 65534, 65534);
    expect(() => readAccessFile(file)).toThrow(/belongs to uid 65534; it must belong to the service's user/);
    chownSync(file, 0, 0);
    const link = join(dir, 'link.json');
    symlinkSync(file, link);
    expect(() => readAccessFile(link)).toThrow(/must be a regular file/);
    const odd = join(dir, 'odd.json');
    writeFileSync(odd, JSON.stringify({ basic: [{ user: 'x', role: 'admin', password: 'plain', extra: 1 }], local: [{ user: 'a', uid: 1, role: 'full' }] }), {
      mode: 0o600,
    });
    expect(() => readAccessFile(odd)).toThrow(
      /basic\[0\]\.extra: unknown field; .*basic\[0\]\.role: must be "read-only" or "full"; basic\[0\]\.password: must be scrypt/,
    );
    expect(readAccessFile(join(dir, 'none.json'))).toEqual({ local: [], basic: [] });
  });
});

describe('login back-off', () => {
  it('doubles the wait per failure up to the cap, queues parallel attempts, forgets on success, and stays bounded', () => {
    let now = 0;
    const b = new LoginBackoff({ baseMs: 250, maxMs: 4000, maxAddresses: 3 }, () => now);
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => b.delayAfter(n))).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
    expect(b.reserve('a')).toBe(0);
    b.failed('a');
    expect(b.reserve('a')).toBe(250);
    // Attempts in flight queue with the delays they would meet one after another: 250, then +500, then +1000.
    expect(b.reserve('a')).toBe(750);
    expect(b.reserve('a')).toBe(1750);
    // A fresh burst is spread the same way from its first attempt.
    expect([b.reserve('b'), b.reserve('b'), b.reserve('b')]).toEqual([0, 250, 750]);
    b.succeeded('a');
    b.succeeded('a');
    b.succeeded('a');
    expect(b.reserve('a')).toBe(0);
    b.succeeded('a');
    for (const a of ['w', 'x', 'y', 'z']) {
      b.reserve(a);
      b.failed(a);
    }
    expect(b.size).toBe(3);
    expect(b.failuresOf('w')).toBe(0);
    now += 16 * 60_000;
    expect(b.reserve('z')).toBe(0);
  });

  it('delays a guessing client while another client logs in at once', async () => {
    const { authenticator, dispose } = await testAuthenticator(
      [
        { user: 'op', password: 'right', role: 'full' },
        { user: 'ann', password: 'hers', role: 'full' },
      ],
      { backoff: new LoginBackoff({ baseMs: 400, maxMs: 1600 }) },
    );
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    const from = (address: string, user: string, password: string) =>
      authenticator.authenticate({ authorization: basic(user, password), client: { address, port: 1 }, server: { address: '127.0.0.1', port: 2 } });
    try {
      expect(await from('10.0.0.1', 'op', 'wrong')).toMatchObject({ ok: false });
      const t0 = Date.now();
      const guesses = Promise.all([from('10.0.0.1', 'op', 'w1'), from('10.0.0.1', 'op', 'w2'), from('10.0.0.1', 'op', 'w3')]);
      const other = await from('10.0.0.2', 'ann', 'hers');
      const otherMs = Date.now() - t0;
      expect(other).toEqual({ ok: true, principal: 'ann', role: 'full' });
      expect((await guesses).every((g) => !g.ok)).toBe(true);
      const guessMs = Date.now() - t0;
      // 400 + 800 + 1600 ms of queued waits for the three guesses; the other client did not wait for them.
      expect(guessMs).toBeGreaterThanOrEqual(2750);
      expect(otherMs).toBeLessThan(guessMs - 2000);
      expect(authenticator.backoff.failuresOf('10.0.0.1')).toBe(4);
      // The account is guarded too: a guess at op from a fresh address waits behind the four failures.
      const t1 = Date.now();
      expect(await from('10.0.0.3', 'op', 'w4')).toMatchObject({ ok: false });
      expect(Date.now() - t1).toBeGreaterThanOrEqual(1500);
    } finally {
      dispose();
    }
  }, 20_000);
});

describe('the authenticator', () => {
  it('gives trusted uids full, others what the local entries say (by uid, name or group), and refuses the unknown', async () => {
    const { authenticator, dispose } = await testAuthenticator([], {
      trustedUids: [0],
      account: (uid) => ({ uid, name: uid === 1002 ? 'carol' : null, groups: uid === 1003 ? ['hyperv-admins'] : [] }),
    });
    const file = join(dir, 'local-access.json');
    writeAccessFile(file, {
      local: [
        { uid: 1001, role: 'read-only' },
        { user: 'carol', role: 'read-only' },
        { group: 'hyperv-admins', role: 'full' },
        { uid: 1001, role: 'read-only' },
      ],
      basic: [],
    });
    try {
      const a = new (authenticator.constructor as typeof import('../../root-partition/management/access/authenticator.ts').Authenticator)({
        accessFile: file,
        trustedUids: [0],
        account: (uid) => ({ uid, name: uid === 1002 ? 'carol' : null, groups: uid === 1003 ? ['hyperv-admins'] : [] }),
      });
      expect([0, 1001, 1002, 1003, 1004].map((u) => a.roleOfUid(u))).toEqual(['full', 'read-only', 'read-only', 'full', null]);
      const peer = (uid: number | null) =>
        new (a.constructor as typeof import('../../root-partition/management/access/authenticator.ts').Authenticator)({
          accessFile: file,
          trustedUids: [0],
          peerUid: () => uid,
        }).authenticate({ client: { address: '127.0.0.1', port: 1 }, server: { address: '127.0.0.1', port: 2 } });
      expect(await peer(0)).toEqual({ ok: true, principal: 'uid 0', role: 'full' });
      expect(await peer(1001)).toEqual({ ok: true, principal: 'uid 1001', role: 'read-only' });
      expect(await peer(4242)).toMatchObject({ ok: false, reason: 'local uid 4242 has no role in the access list' });
      expect(await peer(null)).toMatchObject({ ok: false });
    } finally {
      dispose();
    }
  });

  it('lets credentials decide when they are sent: wrong ones are refused even from a trusted uid', async () => {
    const { authenticator, dispose } = await testAuthenticator([{ user: 'viewer', password: 'l00k', role: 'read-only' }], {
      trustedUids: [0],
      peerUid: () => 0,
      backoff: new LoginBackoff({ baseMs: 1, maxMs: 1 }),
    });
    const ends = { client: { address: '127.0.0.1', port: 1 }, server: { address: '127.0.0.1', port: 2 } };
    try {
      expect(await authenticator.authenticate({ ...ends, authorization: `Basic ${Buffer.from('viewer:l00k').toString('base64')}` })).toEqual({
        ok: true,
        principal: 'viewer',
        role: 'read-only',
      });
      expect(await authenticator.authenticate({ ...ends, authorization: `Basic ${Buffer.from('viewer:nope').toString('base64')}` })).toMatchObject({
        ok: false,
      });
      expect(await authenticator.authenticate({ ...ends, authorization: `Basic ${Buffer.from('viewer:').toString('base64')}` })).toMatchObject({ ok: false });
      expect(await authenticator.authenticate({ ...ends, authorization: 'Digest username="viewer"' })).toMatchObject({ ok: false });
      expect(await authenticator.authenticate(ends)).toEqual({ ok: true, principal: 'uid 0', role: 'full' });
    } finally {
      dispose();
    }
  });
});

describe('an access file that goes bad while the service runs', () => {
  it('is reported, and then only the trusted uids get in until it is fixed', async () => {
    const reports: string[] = [];
    const { authenticator, dispose } = await testAuthenticator([{ user: 'op', password: 'pw', role: 'full' }], {
      trustedUids: [0],
      peerUid: () => 0,
      onAccessFileError: (m) => reports.push(m),
      backoff: new LoginBackoff({ baseMs: 1, maxMs: 1 }),
      userBackoff: new LoginBackoff({ baseMs: 1, maxMs: 1 }),
    });
    const ends = { client: { address: '127.0.0.1', port: 1 }, server: { address: '127.0.0.1', port: 2 } };
    const op = { ...ends, authorization: `Basic ${Buffer.from('op:pw').toString('base64')}` };
    try {
      expect(await authenticator.authenticate(op)).toMatchObject({ ok: true, principal: 'op' });
      const file = (authenticator as unknown as { o: { accessFile: string } }).o.accessFile;
      chmodSync(file, 0o644);
      expect(await authenticator.authenticate(op)).toMatchObject({ ok: false });
      expect(reports).toEqual([expect.stringMatching(/mode 0644: others may read or change it/)]);
      expect(authenticator.accessFileError).toMatch(/mode 0644/);
      expect(await authenticator.authenticate(ends)).toMatchObject({ ok: true, role: 'full' });
      chmodSync(file, 0o600);
      expect(await authenticator.authenticate(op)).toMatchObject({ ok: true, principal: 'op' });
    } finally {
      dispose();
    }
  });
});

describe('roles on CIM-XML requests', () => {
  it('names what needs full: the changing intrinsic operations and every method but GetSummaryInformation', () => {
    expect(
      ['EnumerateInstances', 'GetInstance', 'GetClass', 'Associators', 'ExecQuery', 'EnumerateClassNames'].map((m) => needsFullRole('intrinsic', m)),
    ).toEqual([false, false, false, false, false, false]);
    expect(['CreateInstance', 'ModifyInstance', 'DeleteInstance', 'SetProperty'].map((m) => needsFullRole('intrinsic', m))).toEqual([true, true, true, true]);
    expect(
      ['RequestStateChange', 'DefineSystem', 'DestroySystem', 'ModifyResourceSettings', 'AddKvpItems', 'GetSummaryInformation'].map((m) =>
        needsFullRole('extrinsic', m),
      ),
    ).toEqual([true, true, true, true, true, false]);
  });

  it('a read-only sender reads, and gets CIM_ERR_ACCESS_DENIED (2) for a method, with nothing run', async () => {
    const { manager } = createFixture();
    const ei = wbemcliBody(
      `<IMETHODCALL NAME="EnumerateInstanceNames">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE></IMETHODCALL>`,
    );
    const read = await handleCimXml(manager, wbemcliHeaders('EnumerateInstanceNames'), ei, '127.0.0.1', 'read-only');
    expect(read.body).toContain('<IRETURNVALUE>');
    const rsc = wbemcliBody(
      `<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>${NS}${K}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState"><VALUE>2</VALUE></PARAMVALUE></METHODCALL>`,
    );
    const denied = await handleCimXml(
      manager,
      wbemcliHeaders('RequestStateChange', 'root%2Fvirtualization%2Fv2%3AMsvm_ComputerSystem'),
      rsc,
      '127.0.0.1',
      'read-only',
    );
    expect(denied.body).toContain(
      '<ERROR CODE="2" DESCRIPTION="CIM_ERR_ACCESS_DENIED: RequestStateChange changes the host; the read-only role may only read"></ERROR>',
    );
    const summary = wbemcliBody(`<METHODCALL NAME="GetSummaryInformation"><LOCALINSTANCEPATH>${NS}${S}</LOCALINSTANCEPATH></METHODCALL>`);
    const allowed = await handleCimXml(
      manager,
      wbemcliHeaders('GetSummaryInformation', 'root%2Fvirtualization%2Fv2%3AMsvm_VirtualSystemManagementService'),
      summary,
      '127.0.0.1',
      'read-only',
    );
    expect(allowed.body).not.toContain('CIM_ERR_ACCESS_DENIED');
    const full = await handleCimXml(
      manager,
      wbemcliHeaders('RequestStateChange', 'root%2Fvirtualization%2Fv2%3AMsvm_ComputerSystem'),
      rsc,
      '127.0.0.1',
      'full',
    );
    expect(full.body).toContain('<RETURNVALUE PARAMTYPE="uint32">');
  });
});
