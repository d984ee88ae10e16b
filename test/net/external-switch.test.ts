/**
 * External versus internal switches, with real passt processes: a network namespace made here
 * stands for another machine on the host's network (a veth pair: 10.214.N.1 on the host, 10.214.N.2
 * in the namespace, where a UDP echo server runs). A VM on an external switch reaches that server
 * through passt (NAT over the host's sockets); a VM on an internal switch does not — its datagrams
 * never reach the namespace — but reaches the host itself: a server on the host's own 10.214.N.1 and
 * one on the host's loopback through the gateway address. Where `ip netns` is not permitted the
 * test is skipped with the reason.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
const PROMPT = 'tsvisor> ';
const tag = String(process.pid % 100000);
const NS = `tsv-lan-${tag}`;
const HOST_IF = `tsvx${tag}`;
const LAN_IF = `tsvy${tag}`;
const NET = `10.214.${(process.pid % 200) + 20}`;
const ECHO = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => { process.stdout.write('got ' + m + '\\n'); s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address); });
s.bind(Number(process.argv[2]), process.argv[1], () => process.stdout.write('listening\\n'));
`;

let lan: ChildProcess | undefined;
let lanOut = '';
const hostServers: dgram.Socket[] = [];
let noNamespace: string | null = 'not tried';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
function removeNamespace(): void {
  try {
    execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  } catch {
    /* not made */
  }
  try {
    execFileSync('ip', ['link', 'del', HOST_IF], { stdio: 'ignore' });
  } catch {
    /* gone with the namespace */
  }
}

async function hostEcho(address: string): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  hostServers.push(s);
  return s.address().port;
}

beforeAll(async () => {
  await buildGuests(['ref-enlightened']);
  try {
    ip('netns', 'add', NS);
    ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', LAN_IF);
    ip('link', 'set', LAN_IF, 'netns', NS);
    ip('addr', 'add', `${NET}.1/24`, 'dev', HOST_IF);
    ip('link', 'set', HOST_IF, 'up');
    ip('-n', NS, 'addr', 'add', `${NET}.2/24`, 'dev', LAN_IF);
    ip('-n', NS, 'link', 'set', LAN_IF, 'up');
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    noNamespace = null;
  } catch (e) {
    removeNamespace();
    noNamespace = `ip netns is not permitted here (${((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim()})`;
    console.warn(`external switch test skipped: ${noNamespace}`);
    return;
  }
  lan = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', ECHO, `${NET}.2`, '7007'], { stdio: ['ignore', 'pipe', 'inherit'] });
  lan.stdout!.on('data', (d: Buffer) => (lanOut += d.toString()));
  await waitFor('the echo server in the namespace', () => lanOut.includes('listening'), 10_000);
}, 120_000);

afterAll(async () => {
  for (const s of hostServers) s.close();
  if (lan && lan.exitCode === null) {
    const gone = new Promise((r) => lan!.once('close', r));
    lan.kill('SIGKILL');
    await gone;
  }
  removeNamespace();
  expect(await fx.cleanup()).toEqual([]);
});

/** Types a line on the VM's console and returns what it printed before the next prompt. */
async function command(vmms: Vmms, vm: string, line: string, timeoutMs = 20_000): Promise<string> {
  const start = vmms.console(vm).length;
  await vmms.consoleInput(vm, new TextEncoder().encode(line + '\r'));
  return waitFor(
    `the prompt after "${line}" on ${vm}`,
    () => {
      const text = vmms.console(vm);
      const at = text.indexOf(PROMPT, start);
      return at >= 0 ? text.slice(start, at) : undefined;
    },
    timeoutMs,
  );
}

describe('external and internal switches through passt', () => {
  it("a VM on an external switch reaches another machine on the host's network; one on an internal switch reaches only the host", {
    timeout: 120_000,
  }, async (ctx) => {
    if (noNamespace) return ctx.skip();
    const vmms = await fx.vmms({ dataDir: fx.dataDir() });
    expect(await vmms.switches.create({ name: 'out', type: 'external' })).toMatchObject({ type: 'external', passt: { guestAddress: '10.0.2.15/24' } });
    await vmms.switches.create({ name: 'in', type: 'internal', passt: {} });
    vmms.defineVm({ name: 'ext', memoryBytes: 32 * MiB, imagePath: guestImagePath('ref-enlightened'), devices: [{ kind: 'network-adapter', switch: 'out' }] });
    vmms.defineVm({ name: 'int', memoryBytes: 32 * MiB, imagePath: guestImagePath('ref-enlightened'), devices: [{ kind: 'network-adapter', switch: 'in' }] });
    await Promise.all([vmms.start('ext'), vmms.start('int')]);
    await waitFor('both prompts', () => vmms.console('ext').includes(PROMPT) && vmms.console('int').includes(PROMPT), 60_000);
    await waitFor('passt on both switches', () => vmms.switches.list().every((s) => s.passt?.state === 'running' && s.ports.length === 2), 20_000);
    expect(
      vmms.switches
        .get('out')!
        .ports.map((p) => p.kind)
        .sort(),
    ).toEqual(['external', 'synthetic']);
    expect(
      vmms.switches
        .get('in')!
        .ports.map((p) => p.kind)
        .sort(),
    ).toEqual(['internal', 'synthetic']);
    for (const vm of ['ext', 'int']) expect(await command(vmms, vm, 'ip dhcp')).toContain('dhcp: 10.0.2.15/24 from 10.0.2.2, router 10.0.2.2');

    // Another machine: reached from the external switch only (through the router, passt).
    expect(await command(vmms, 'ext', `udp ${NET}.2 7007 from-external`)).toContain(`udp: 18 bytes from ${NET}.2:7007: echo:from-external`);
    expect(await command(vmms, 'int', `udp ${NET}.2 7007 from-internal`)).toContain(`udp: no answer from ${NET}.2:7007`);
    expect(lanOut.split('\n').filter((l) => l.startsWith('got '))).toEqual(['got from-external']);

    // The host itself: from the internal switch, its own address on that network and its loopback (through the gateway).
    const onHost = await hostEcho(`${NET}.1`);
    expect(await command(vmms, 'int', `udp ${NET}.1 ${onHost} host`)).toContain(`udp: 9 bytes from ${NET}.1:${onHost}: echo:host`);
    const loopback = await hostEcho('127.0.0.1');
    expect(await command(vmms, 'int', `udp 10.0.2.2 ${loopback} gateway`)).toContain(`udp: 12 bytes from 10.0.2.2:${loopback}: echo:gateway`);
    await vmms.turnOff('ext');
    await vmms.turnOff('int');
  });
});
