/**
 * The web console's API over a real VMMS: every endpoint needs a session; a wrong password is
 * refused; the read-only role may look but its actions are refused by the server (whatever the
 * page shows); every change needs the session's CSRF token, JSON and this console's Origin; a new
 * VM names only an image the service offers (no host path); a session ends when access.json takes
 * its user's role away; pushed events follow a state change made elsewhere.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessList } from '../management/access-fixture.ts';
import { writeAccessFile, ACCESS_FILE } from '../../root-partition/management/access/access-file.ts';
import { buildGuests } from '../../scripts/build-guests.ts';
import { USERS, WebTestHost } from './web-fixture.ts';

const host = new WebTestHost();

beforeAll(async () => {
  // VMs that must stay Running run the idle guest (hello halts for good within 100 ms of boot).
  await buildGuests(['hello', 'idle', 'ref-enlightened']);
  await host.start();
}, 120_000);

afterAll(async () => {
  expect(await host.stop()).toEqual([]);
}, 60_000);

describe('web console API', () => {
  it('serves the app without a session and nothing under /api/ without one', async () => {
    const anon = host.client();
    const page = await anon.call('GET', '/');
    expect(page.status).toBe(200);
    expect(String(page.body)).toContain('<script defer src="/app.js">');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await anon.call('GET', '/app.js')).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/api/vms'],
      ['GET', '/api/session'],
      ['GET', '/api/images'],
      ['GET', '/api/events'],
      ['GET', '/api/bench'],
      ['POST', '/api/vms'],
      ['GET', '/api/vms/x'],
    ] as const) {
      const r = await anon.call(method, path, method === 'POST' ? {} : undefined);
      expect([path, r.status]).toEqual([path, 401]);
    }
    expect((await anon.call('GET', '/../package.json')).status).toBe(404);
  });

  it('refuses a wrong password and an unknown user, and logs in the right one', async () => {
    const c = host.client();
    expect((await c.login('admin', 'not-the-password')).body).toEqual({ error: 'wrong user name or password' });
    expect((await c.login('nobody-here', 'x')).status).toBe(401);
    expect(c.cookie).toBe('');
    const ok = await c.login('admin', USERS[0]!.password);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ user: 'admin', role: 'full' });
    expect(ok.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await c.call('GET', '/api/session')).body).toMatchObject({ user: 'admin', role: 'full' });
  }, 30_000);

  it('needs the CSRF token, JSON and this Origin for every change', async () => {
    const c = host.client();
    await c.login('admin', USERS[0]!.password);
    const define = { name: 'csrf-vm', memoryMiB: 16, vpCount: 1, image: 'hello.wasm', cmdline: '' };
    expect((await c.call('POST', '/api/vms', define, { csrf: null })).status).toBe(403);
    expect((await c.call('POST', '/api/vms', define, { csrf: 'x'.repeat(43) })).status).toBe(403);
    expect((await c.call('POST', '/api/vms', define, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await c.call('POST', '/api/vms', define, { origin: null })).status).toBe(403);
    // A login from another site is refused too (no session fixation from elsewhere).
    expect((await c.call('POST', '/api/login', { user: 'admin', password: USERS[0]!.password }, { origin: 'http://evil.example' })).status).toBe(403);
    expect(host.vmms.get('csrf-vm')).toBeUndefined();
    const r = await c.call('POST', '/api/vms', define);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'csrf-vm', state: 'Off', memoryBytes: 16 * 1024 * 1024 });
    expect(host.vmms.get('csrf-vm')?.devices).toEqual([{ kind: 'integration-services' }]);
  }, 30_000);

  it('accepts only an image the service offers, never a host path', async () => {
    const c = host.client();
    await c.login('admin', USERS[0]!.password);
    const images = (await c.call('GET', '/api/images')).body.images as string[];
    expect(images).toContain('hello.wasm');
    for (const image of ['/etc/passwd', '../guests/hello.wasm', join(host.dataDir, 'access.json'), 'nope.wasm']) {
      const r = await c.call('POST', '/api/vms', { name: 'path-vm', memoryMiB: 16, vpCount: 1, image, cmdline: '' });
      expect([image, r.status]).toEqual([image, 400]);
    }
    for (const bad of [{ memoryMiB: 0 }, { memoryMiB: 1.5 }, { vpCount: 65 }, { name: '../x' }, { name: '' }, { cmdline: 'x'.repeat(1025) }]) {
      const r = await c.call('POST', '/api/vms', { name: 'bad-vm', memoryMiB: 16, vpCount: 1, image: 'hello.wasm', cmdline: '', ...bad });
      expect([bad, r.status]).toEqual([bad, 400]);
    }
    expect(host.vmms.get('path-vm')).toBeUndefined();
    expect(host.vmms.get('bad-vm')).toBeUndefined();
  }, 30_000);

  it('lets the read-only role look and refuses its actions', async () => {
    const admin = host.client();
    await admin.login('admin', USERS[0]!.password);
    await admin.call('POST', '/api/vms', { name: 'ro-vm', memoryMiB: 16, vpCount: 1, image: 'hello.wasm', cmdline: '' });
    const id = host.vmms.get('ro-vm')!.id;
    const viewer = host.client();
    expect((await viewer.login('viewer', USERS[1]!.password)).body).toMatchObject({ role: 'read-only' });
    expect((await viewer.call('GET', '/api/vms')).body.vms.map((v: { name: string }) => v.name)).toContain('ro-vm');
    expect((await viewer.call('GET', `/api/vms/${id}`)).body).toMatchObject({ name: 'ro-vm', image: 'hello.wasm' });
    for (const [path, body] of [
      [`/api/vms/${id}/action`, { action: 'start' }],
      [`/api/vms/${id}/action`, { action: 'delete' }],
      [`/api/vms/${id}/console`, { data: 'x' }],
      ['/api/vms', { name: 'ro2', memoryMiB: 16, vpCount: 1, image: 'hello.wasm' }],
    ] as const) {
      const r = await viewer.call('POST', path, body);
      expect([path, r.status, r.body.error]).toEqual([path, 403, 'viewer has the read-only role: it may look, not act']);
    }
    expect(host.vmms.get('ro-vm')?.state).toBe('Off');
    expect(host.vmms.get('ro2')).toBeUndefined();
    // The viewer may still log out (its own session is all it changes).
    expect((await viewer.call('POST', '/api/logout', {})).status).toBe(200);
    expect((await viewer.call('GET', '/api/vms')).status).toBe(401);
  }, 30_000);

  it('changes settings (Set-VM): memory, VPs and command line while Off, notes any time; checks every value', async () => {
    const c = host.client();
    await c.login('admin', USERS[0]!.password);
    await c.call('POST', '/api/vms', { name: 'set-vm', memoryMiB: 16, vpCount: 1, image: 'ref-enlightened.wasm', cmdline: '' });
    const id = host.vmms.get('set-vm')!.id;
    const r = await c.call('POST', `/api/vms/${id}/settings`, { memoryMiB: 32, vpCount: 2, cmdline: 'quiet', notes: 'web server' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ memoryBytes: 32 << 20, vpCount: 2, cmdline: 'quiet', notes: 'web server' });
    expect(host.vmms.get('set-vm')).toMatchObject({ memoryBytes: 32 << 20, vpCount: 2, cmdline: 'quiet', notes: 'web server' });
    for (const bad of [{ memoryMiB: 0 }, { vpCount: 65 }, { cmdline: 'x'.repeat(1025) }, { notes: 'x'.repeat(4097) }, { imagePath: '/etc/passwd' }, {}]) {
      const b = await c.call('POST', `/api/vms/${id}/settings`, bad);
      expect([bad, b.status]).toEqual([bad, 400]);
    }
    expect(host.vmms.get('set-vm')).toMatchObject({ memoryBytes: 32 << 20, vpCount: 2 });
    // Running: the memory is refused with the reason, the notes still change.
    expect((await c.call('POST', `/api/vms/${id}/action`, { action: 'start' })).status).toBe(200);
    for (let i = 0; i < 200 && host.vmms.get('set-vm')!.state !== 'Running'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(host.vmms.get('set-vm')!.state).toBe('Running');
    const running = await c.call('POST', `/api/vms/${id}/settings`, { memoryMiB: 64 });
    expect([running.status, running.body.error]).toEqual([409, expect.stringMatching(/turn it off first/)]);
    expect((await c.call('POST', `/api/vms/${id}/settings`, { notes: 'still serving' })).body).toMatchObject({ notes: 'still serving', memoryBytes: 32 << 20 });
    const viewer = host.client();
    await viewer.login('viewer', USERS[1]!.password);
    expect((await viewer.call('POST', `/api/vms/${id}/settings`, { notes: 'x' })).status).toBe(403);
    await c.call('POST', `/api/vms/${id}/action`, { action: 'turn-off' });
  }, 60_000);

  it('runs actions through the CIM core as jobs, pushes the changes, and refuses one the state does not allow', async () => {
    const c = host.client();
    await c.login('admin', USERS[0]!.password);
    await c.call('POST', '/api/vms', { name: 'act-vm', memoryMiB: 16, vpCount: 1, image: 'idle.wasm', cmdline: '' });
    const id = host.vmms.get('act-vm')!.id;
    // The event stream: the whole state first, then each change as the VMMS emits it.
    const ac = new AbortController();
    const events = await fetch(`${host.url}/api/events`, { headers: { Cookie: c.cookie }, signal: ac.signal });
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    let text = '';
    const reading = (async () => {
      const dec = new TextDecoder();
      const reader = events.body!.getReader();
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) text += dec.decode(r.value);
      } catch {
        /* aborted */
      }
    })();
    expect((await c.call('POST', `/api/vms/${id}/action`, { action: 'pause' })).status).toBe(409);
    const r = await c.call('POST', `/api/vms/${id}/action`, { action: 'start' });
    expect(r.body).toMatchObject({ returnValue: 4096 });
    const deadline = Date.now() + 30_000;
    while (!text.includes('"state":"Running"') || !text.includes('"jobState":7')) {
      if (Date.now() > deadline) throw new Error(`no Running push: ${text.slice(-2000)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(text).toContain(`"id":"${r.body.jobId}","vmId":"${id}","description":"Starting Virtual Machine"`);
    host.fx.pids.add(host.vmms.get('act-vm')!.processId!);
    expect((await c.call('POST', `/api/vms/${id}/action`, { action: 'delete' })).status).toBe(409);
    expect((await c.call('POST', `/api/vms/${id}/action`, { action: 'format-disk' })).status).toBe(400);
    expect((await c.call('POST', `/api/vms/${id}/console`, { data: 'x'.repeat(4097) })).status).toBe(413);
    expect((await c.call('POST', `/api/vms/${id}/action`, { action: 'turn-off' })).body).toMatchObject({ returnValue: 4096 });
    while (host.vmms.get('act-vm')!.state !== 'Off') await new Promise((res) => setTimeout(res, 50));
    expect((await c.call('POST', `/api/vms/${id}/action`, { action: 'delete' })).body).toEqual({ returnValue: 0 });
    while (!text.includes(`event: removed\ndata: {"id":"${id}"}`)) {
      if (Date.now() > deadline) throw new Error('no removed push');
      await new Promise((res) => setTimeout(res, 50));
    }
    ac.abort();
    await reading;
  }, 60_000);

  it('ends the event streams of a session at logout', async () => {
    const c = host.client();
    await c.login('viewer', USERS[1]!.password);
    const events = await fetch(`${host.url}/api/events`, { headers: { Cookie: c.cookie } });
    expect(events.status).toBe(200);
    const ended = (async () => {
      const reader = events.body!.getReader();
      try {
        while (!(await reader.read()).done);
      } catch {
        /* the connection closed */
      }
      return 'ended';
    })();
    expect(await Promise.race([ended, new Promise((r) => setTimeout(r, 300, 'open'))])).toBe('open');
    expect((await c.call('POST', '/api/logout', {})).status).toBe(200);
    expect(await Promise.race([ended, new Promise((r) => setTimeout(r, 5000, 'still open'))])).toBe('ended');
    expect(host.web.server!.streams.size).toBe(0);
  }, 30_000);

  it('bounds the event streams one session may hold', async () => {
    const c = host.client();
    await c.login('viewer', USERS[1]!.password);
    const aborts: AbortController[] = [];
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 9; i++) {
        const ac = new AbortController();
        aborts.push(ac);
        statuses.push((await fetch(`${host.url}/api/events`, { headers: { Cookie: c.cookie }, signal: ac.signal })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 429]);
    } finally {
      for (const ac of aborts) ac.abort();
    }
    // Closed streams give their places back.
    await new Promise((r) => setTimeout(r, 200));
    const ac = new AbortController();
    expect((await fetch(`${host.url}/api/events`, { headers: { Cookie: c.cookie }, signal: ac.signal })).status).toBe(200);
    ac.abort();
  }, 30_000);

  it('ends a session when access.json no longer gives its user that role', async () => {
    const c = host.client();
    await c.login('admin', USERS[0]!.password);
    expect((await c.call('GET', '/api/vms')).status).toBe(200);
    const file = join(host.dataDir, ACCESS_FILE);
    writeAccessFile(file, await accessList([{ ...USERS[0]!, role: 'read-only' }, USERS[1]!]));
    try {
      expect((await c.call('GET', '/api/vms')).status).toBe(401);
    } finally {
      writeAccessFile(file, await accessList(USERS));
    }
  }, 30_000);
});
