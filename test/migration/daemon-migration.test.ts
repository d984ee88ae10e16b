/**
 * Live migration between two real daemons (separate process trees, each with its own data
 * directory), placed in two network namespaces joined by a veth pair (made here, removed after),
 * so the stream crosses a real network stack; where `ip netns` is not permitted the hosts share
 * loopback and the reason is printed. An untrusted destination is refused before any byte of the VM leaves, then, with the
 * hosts trusting each other, `tsvisor vm move --json` moves the running checksum guest. The
 * definition leaves the source, the VM runs on the destination and every progress line it prints
 * there carries the checksum the uninterrupted chain gives.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { checksumRound as round } from '../helpers/checksum-round.ts';
import { MiB, testImages, VmmsFixture } from '../vmms/vmms-fixture.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');
const fx = new VmmsFixture();
let checksum: string;
beforeAll(async () => { checksum = (await testImages()).checksum; });
afterAll(async () => { expect(await fx.cleanup()).toEqual([]); });

const DAEMON_ARGS = ['--migration-port', '0', '--cim-port', 'none', '--cim-https-port', 'none', '--web-port', 'none'];
const WORK = 2000;

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
  for (const ns of NS) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* not made */ }
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
  const d = await fx.daemon(dir, [...DAEMON_ARGS, '--migration-host', address], noNamespaces ? [] : ['ip', 'netns', 'exec', NS[i]]);
  const m = /live migration on port (\d+) .*SHA-256 ([0-9A-F:]{95})/.exec(fx.daemonOutput.get(d)!());
  expect(m, fx.daemonOutput.get(d)!()).not.toBeNull();
  return { dir, port: Number(m![1]), fingerprint: m![2], client: await VmmsClient.connect(dir), address };
}

function checkChain(text: string): number {
  const lines = [...text.matchAll(/progress round=(\d+) sum=([0-9a-f]{8})/g)].map((x) => ({ round: Number(x[1]), sum: parseInt(x[2], 16) }));
  let sum = 0;
  let r = 0;
  for (const line of lines) {
    for (; r < line.round; r++) sum = round(sum, r, WORK);
    expect(line.sum, `round ${line.round}`).toBe(sum);
  }
  return lines.at(-1)?.round ?? 0;
}

describe('vm move between two daemons', () => {
  it('moves a running checksum guest to a trusted host only', { timeout: 240_000 }, async () => {
    const [a, b] = await Promise.all([host(0), host(1)]);
    try {
      const v = await a.client.call<VmView>('new', { name: 'mover', imagePath: checksum, memoryBytes: 16 * MiB, vpCount: 1, cmdline: `rounds=100000000 work=${WORK}`, automaticStopAction: 'turn-off' });
      await a.client.call('start', { vm: 'mover' });
      fx.pids.add((await a.client.call<VmView>('show', { vm: 'mover' })).processId!);
      const lastOn = async (c: VmmsClient) => Number([...(await c.call<string>('console', { vm: 'mover' })).matchAll(/progress round=(\d+)/g)].at(-1)?.[1] ?? 0);
      for (let i = 0; i < 500 && (await lastOn(a.client)) < 200; i++) await new Promise((r) => setTimeout(r, 20));

      // Neither host trusts the other yet: refused, and the VM runs on at the source.
      const refused = await a.client.call('move', { vm: 'mover', to: `${b.address}:${b.port}` }).then(() => null, (e: Error) => e);
      expect(refused?.message).toMatch(/not trusted/);
      expect((await a.client.call<VmView>('show', { vm: 'mover' })).state).toBe('Running');
      // Trusted one way only: the destination refuses the source.
      await a.client.call('host-trust', { fingerprint: b.fingerprint, name: 'b' });
      const oneWay = await a.client.call('move', { vm: 'mover', to: `${b.address}:${b.port}` }).then(() => null, (e: Error) => e);
      expect(oneWay).not.toBeNull();
      expect((await a.client.call<VmView>('show', { vm: 'mover' })).state).toBe('Running');
      expect(await b.client.call<VmView[]>('list')).toEqual([]);
      await b.client.call('host-trust', { fingerprint: a.fingerprint, name: 'a' });

      const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'vm', '--data-dir', a.dir, 'move', 'mover', '--to', `${b.address}:${b.port}`, '--json'], { timeout: 60_000 });
      const summary = JSON.parse(stdout) as { downtimeMs: number; bytesSent: number; pagesPerRound: number[] };
      expect(summary.downtimeMs).toBeGreaterThan(0);
      expect(summary.pagesPerRound.length).toBeGreaterThanOrEqual(2);
      // The definition moved: gone from the source, running on the destination with the same id.
      expect(await a.client.call<VmView[]>('list')).toEqual([]);
      const moved = await b.client.call<VmView>('show', { vm: 'mover' });
      expect(moved.id).toBe(v.id);
      expect(moved.state).toBe('Running');
      fx.pids.add(moved.processId!);
      for (let i = 0; i < 500 && (await lastOn(b.client)) < 300; i++) await new Promise((r) => setTimeout(r, 20));
      const arrived = await b.client.call<string>('console', { vm: 'mover' });
      expect(checkChain(arrived)).toBeGreaterThanOrEqual(300);
      expect(arrived).not.toMatch(/checksum guest:/);
      await b.client.call('stop', { vm: 'mover', turnOff: true });
    } finally {
      for (const h of [a, b]) for (const vm of await h.client.call<VmView[]>('list').catch(() => [])) await h.client.call('stop', { vm: vm.id, turnOff: true }).catch(() => {});
      a.client.close();
      b.client.close();
    }
  });
});
