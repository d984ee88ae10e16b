/**
 * Live migration between two real daemons (separate process trees, each with its own data
 * directory), placed in two network namespaces joined by a veth pair (made here, removed after),
 * so the stream crosses a real network stack; where `ip netns` is not permitted the hosts share
 * loopback and the reason is printed. An untrusted destination is refused before any byte of the
 * VM leaves, then, with the hosts trusting each other, `tsvisor vm move --json` moves the running
 * memory-writer guest, and it goes on back and forth over the same daemons (B → A → B). After each
 * hop the definition has left the source and the VM runs on the destination, where the guest
 * goes on from the generation it had reached and reads its whole working set back intact each
 * generation (a lost or torn page shows as its own MISMATCH line). The disk both hosts share (a
 * raw image, locked by the worker that runs the VM) is opened by each destination only because
 * its source let it go; no worker is left behind and no lock on the disk once the VM is off.
 * A last hop moves the storage too (`--storage`): refused into a directory the destination does
 * not allow, undone (the copy removed) when the destination refuses the VM after making it, then
 * done: the VM runs there on the copy, byte for byte the source's file, which stays as it was.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { MiB, testImages, VmmsFixture } from '../vmms/vmms-fixture.ts';

/**
 * The moved VM as the destination lists it the moment the move returned: Running already (its
 * VMMS recorded the VM Running before the worker told the source).
 */
async function runningOn(client: VmmsClient): Promise<VmView> {
  const view = await client.call<VmView>('show', { vm: 'mover' });
  expect(view.state).toBe('Running');
  return view;
}

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');
const fx = new VmmsFixture();
let writer: string;
beforeAll(async () => {
  writer = (await testImages()).memoryWriter;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** The shared storage: a directory both hosts allow disks from. */
const shared = mkdtempSync(join(tmpdir(), 'tsv-mig-disk-'));
afterAll(() => rmSync(shared, { recursive: true, force: true }));
const DAEMON_ARGS = ['--migration-port', '0', '--cim-port', 'none', '--cim-https-port', 'none', '--web-port', 'none', '--storage-root', shared];
/** Each host's own storage (a storage move's destination). */
const own = [mkdtempSync(join(tmpdir(), 'tsv-mig-own-a-')), mkdtempSync(join(tmpdir(), 'tsv-mig-own-b-'))];
afterAll(() => {
  for (const d of own) rmSync(d, { recursive: true, force: true });
});

/** Two namespaces with a veth pair between them, or why there are none. */
const tag = String(process.pid % 100000);
const NS = [`tsv-mig-a-${tag}`, `tsv-mig-b-${tag}`];
const ADDR = ['10.213.77.1', '10.213.77.2'];
function makeNamespaces(): string | null {
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    for (const ns of NS) ip('netns', 'add', ns);
    ip('link', 'add', `tsva${tag}`, 'type', 'veth', 'peer', 'name', `tsvb${tag}`);
    for (const [i, end] of [`tsva${tag}`, `tsvb${tag}`].entries()) {
      ip('link', 'set', end, 'netns', NS[i]);
      ip('-n', NS[i], 'addr', 'add', `${ADDR[i]}/24`, 'dev', end);
      ip('-n', NS[i], 'link', 'set', end, 'up');
      ip('-n', NS[i], 'link', 'set', 'lo', 'up');
    }
    return null;
  } catch (e) {
    removeNamespaces();
    return `ip netns is not permitted here (${((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim()})`;
  }
}
function removeNamespaces(): void {
  for (const ns of NS)
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* not made */
    }
}
let noNamespaces: string | null = 'not tried';
beforeAll(() => {
  noNamespaces = makeNamespaces();
  if (noNamespaces) console.warn(`daemon migration on loopback: ${noNamespaces}`);
});
afterAll(() => removeNamespaces());

async function host(i: number): Promise<{ dir: string; port: number; fingerprint: string; client: VmmsClient; address: string }> {
  const dir = fx.dataDir();
  const address = noNamespaces ? '127.0.0.1' : ADDR[i];
  const d = await fx.daemon(dir, [...DAEMON_ARGS, '--storage-root', own[i]!, '--migration-host', address], noNamespaces ? [] : ['ip', 'netns', 'exec', NS[i]]);
  const m = /live migration on port (\d+) .*SHA-256 ([0-9A-F:]{95})/.exec(fx.daemonOutput.get(d)!());
  expect(m, fx.daemonOutput.get(d)!()).not.toBeNull();
  return { dir, port: Number(m![1]), fingerprint: m![2], client: await VmmsClient.connect(dir), address };
}

const gens = (text: string) => [...text.matchAll(/gen=(\d+) ok/g)].map((m) => Number(m[1]));

/** Waits for the guest on `c` to complete generations past `after`, then checks what it printed there. */
async function goesOn(c: VmmsClient, after: number, what: string): Promise<number> {
  let text = '';
  for (let i = 0; i < 600 && !((gens(text).at(-1) ?? -1) >= after + 2); i++) {
    await new Promise((r) => setTimeout(r, 50));
    text = await c.call<string>('console', { vm: 'mover' });
  }
  const seen = gens(text);
  expect(seen.at(-1), `${what}: ${text.slice(-500)}`).toBeGreaterThanOrEqual(after + 2);
  // Its generations go on from where they were (the memory moved with it: no restart from 1),
  // one after the other, and each checks out.
  expect(seen[0], what).toBeGreaterThan(after);
  expect(
    seen.filter((g, i) => i > 0 && g !== seen[i - 1]! + 1),
    what,
  ).toEqual([]);
  expect(text, what).not.toMatch(/MISMATCH|TIME-WENT-BACK|panic/);
  return seen.at(-1)!;
}

describe('vm move between two daemons', () => {
  it('moves a running guest to a trusted host only, then back and forth', { timeout: 240_000 }, async () => {
    const [a, b] = await Promise.all([host(0), host(1)]);
    try {
      const disk = join(shared, 'mover.raw');
      // Written here, never by the guest: what a storage move must carry byte for byte.
      const content = Buffer.alloc(1 * MiB);
      for (let i = 0; i < content.length; i += 4096) content.writeUInt32LE((i * 2654435761) >>> 0, i);
      writeFileSync(disk, content);
      const v = await a.client.call<VmView>('new', {
        name: 'mover',
        imagePath: writer,
        memoryBytes: 16 * MiB,
        vpCount: 1,
        cmdline: 'mib=4 rate=16',
        automaticStopAction: 'turn-off',
        devices: [{ kind: 'ide-disk', controller: 0, position: 0, path: disk }],
      });
      await a.client.call('start', { vm: 'mover' });
      fx.pids.add((await a.client.call<VmView>('show', { vm: 'mover' })).processId!);
      await goesOn(a.client, 0, 'before the move');

      // Neither host trusts the other yet: refused, and the VM runs on at the source.
      const refused = await a.client.call('move', { vm: 'mover', to: `${b.address}:${b.port}` }).then(
        () => null,
        (e: Error) => e,
      );
      expect(refused?.message).toMatch(/not trusted/);
      expect((await a.client.call<VmView>('show', { vm: 'mover' })).state).toBe('Running');
      // Trusted one way only: the destination refuses the source.
      await a.client.call('host-trust', { fingerprint: b.fingerprint, name: 'b' });
      const oneWay = await a.client.call('move', { vm: 'mover', to: `${b.address}:${b.port}` }).then(
        () => null,
        (e: Error) => e,
      );
      expect(oneWay).not.toBeNull();
      expect((await a.client.call<VmView>('show', { vm: 'mover' })).state).toBe('Running');
      expect(await b.client.call<VmView[]>('list')).toEqual([]);
      await b.client.call('host-trust', { fingerprint: a.fingerprint, name: 'a' });

      const beforeMove = gens(await a.client.call<string>('console', { vm: 'mover' })).at(-1)!;
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [BIN, 'vm', '--data-dir', a.dir, 'move', 'mover', '--to', `${b.address}:${b.port}`, '--json'],
        { timeout: 60_000 },
      );
      const summary = JSON.parse(stdout) as { downtimeMs: number; bytesSent: number; pagesPerRound: number[] };
      expect(summary.downtimeMs).toBeGreaterThan(0);
      expect(summary.pagesPerRound.length).toBeGreaterThanOrEqual(2);
      // The definition moved: gone from the source, running on the destination with the same id.
      expect(await a.client.call<VmView[]>('list')).toEqual([]);
      const moved = await runningOn(b.client);
      expect(moved.id).toBe(v.id);
      fx.pids.add(moved.processId!);
      let reached = await goesOn(b.client, beforeMove, 'after the move to B');

      // Back and forth: B → A → B, each hop to the host the VM left before.
      let [from, to] = [b, a];
      for (let hop = 2; hop <= 3; hop++) {
        reached = gens(await from.client.call<string>('console', { vm: 'mover' })).at(-1)!;
        await from.client.call('move', { vm: 'mover', to: `${to.address}:${to.port}` });
        expect(await from.client.call<VmView[]>('list')).toEqual([]);
        const here = await runningOn(to.client);
        expect(here.id).toBe(v.id);
        fx.pids.add(here.processId!);
        reached = await goesOn(to.client, reached, `after hop ${hop}`);
        [from, to] = [to, from];
      }

      // Storage too (B → A): into a directory A does not allow, refused; the VM runs on at B.
      const outside = mkdtempSync(join(tmpdir(), 'tsv-mig-outside-'));
      const notAllowed = await b.client.call('move', { vm: 'mover', to: `${a.address}:${a.port}`, storage: outside }).then(
        () => null,
        (e: Error) => e,
      );
      rmSync(outside, { recursive: true, force: true });
      expect(notAllowed?.message).toMatch(/storage root|not (in|under|inside)|outside/i);
      expect((await b.client.call<VmView>('show', { vm: 'mover' })).state).toBe('Running');
      // A refuses the VM after making the copy (a VM of that name is defined there): the copy goes.
      await a.client.call('new', { name: 'mover', imagePath: writer, memoryBytes: 16 * MiB, vpCount: 1, cmdline: '', automaticStopAction: 'turn-off' });
      const taken = await b.client.call('move', { vm: 'mover', to: `${a.address}:${a.port}`, storage: own[0] }).then(
        () => null,
        (e: Error) => e,
      );
      expect(taken?.message).toMatch(/named "mover" exists/);
      expect(readdirSync(own[0]!)).toEqual([]);
      expect((await b.client.call<VmView>('show', { vm: 'mover' })).state).toBe('Running');
      await a.client.call('rm', { vm: 'mover' });
      // The move: the VM runs at A on its copy in A's own storage.
      reached = gens(await b.client.call<string>('console', { vm: 'mover' })).at(-1)!;
      const out = await promisify(execFile)(
        process.execPath,
        [BIN, 'vm', '--data-dir', b.dir, 'move', 'mover', '--to', `${a.address}:${a.port}`, '--storage', own[0]!, '--json'],
        { timeout: 60_000 },
      );
      const withStorage = JSON.parse(out.stdout) as { diskBlocksPerRound: number[]; diskBytesSent: number };
      // The first round carries the whole file (no block of it is zero), later ones nothing (the guest never writes it).
      expect(withStorage.diskBlocksPerRound[0]).toBe(16);
      expect(withStorage.diskBytesSent).toBe(MiB);
      const there = await runningOn(a.client);
      expect(there.devices).toEqual([{ kind: 'ide-disk', controller: 0, position: 0, path: join(own[0]!, 'mover.raw') }]);
      fx.pids.add(there.processId!);
      await goesOn(a.client, reached, 'after the storage move to A');
      await a.client.call('stop', { vm: 'mover', turnOff: true });
      expect(readFileSync(join(own[0]!, 'mover.raw')).equals(content)).toBe(true);
      expect(readFileSync(disk).equals(content)).toBe(true);
      // Nothing holds either disk any more: no worker on either host kept its lock.
      execFileSync('flock', ['--nonblock', '--exclusive', disk, 'true']);
      execFileSync('flock', ['--nonblock', '--exclusive', join(own[0]!, 'mover.raw'), 'true']);
    } finally {
      for (const h of [a, b])
        for (const vm of await h.client.call<VmView[]>('list').catch(() => [])) await h.client.call('stop', { vm: vm.id, turnOff: true }).catch(() => {});
      a.client.close();
      b.client.close();
    }
  });
});
