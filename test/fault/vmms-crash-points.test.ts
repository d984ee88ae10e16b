/**
 * VMMS crashes in the middle of an operation (TSVISOR_FAULT_POINT: it kills itself at a named
 * point, see root-partition/vmms/fault-point.ts): during a start, a save, a restore and a
 * reattach. The next VMMS finds exactly the workers that exist — none lost, none doubled — and
 * each VM in the state its worker or its files say.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor, workersOf } from './fault-fixture.ts';
import { daemonNodeArgs } from '../helpers/daemon-command.ts';

const fx = new VmmsFixture();
const daemons = new Set<ChildProcess>();
let image: string;

beforeAll(async () => {
  image = (await testImages()).checksum;
});
afterAll(async () => {
  for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  expect(await fx.cleanup()).toEqual([]);
});

/** A daemon on `dataDir` that dies at `faultPoint`; resolves once it serves. */
async function daemon(dataDir: string, faultPoint: string): Promise<ChildProcess> {
  const d = spawn(process.execPath, [...daemonNodeArgs(), '--data-dir', dataDir, '--cim-port', 'none'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TSVISOR_FAULT_POINT: faultPoint },
  });
  daemons.add(d);
  fx.pids.add(d.pid!);
  let out = '';
  d.stdout!.on('data', (c) => {
    out += c;
  });
  d.stderr!.on('data', (c) => {
    out += c;
  });
  await waitFor(`the daemon to serve (${out})`, () => out.includes('tsvisor: serving') || d.exitCode !== null, 60_000);
  if (d.exitCode !== null) throw new Error(`the daemon exited: ${out}`);
  return d;
}

/** Sends `method` to the daemon, which dies on the way: the call fails, the daemon is gone. */
async function crashOn(d: ChildProcess, dataDir: string, method: 'start' | 'save', vm: string): Promise<void> {
  const c = await VmmsClient.connect(dataDir);
  await expect(c.call(method, { vm })).rejects.toThrow();
  c.close();
  await waitFor('the daemon to die', () => d.signalCode !== null || d.exitCode !== null, 20_000);
  expect(d.signalCode).toBe('SIGKILL');
}

async function define(dataDir: string, _d: ChildProcess, name: string): Promise<VmView> {
  const c = await VmmsClient.connect(dataDir);
  const v = await c.call<VmView>('new', { name, imagePath: image, memoryBytes: 16 * MiB, cmdline: 'rounds=100000000', automaticStopAction: 'turn-off' });
  c.close();
  return v;
}

describe('fault: VMMS crashes mid-operation', { timeout: 120_000 }, () => {
  it('during a start (worker spawned, not yet connected): the next VMMS adopts that worker, no second one', async () => {
    const dataDir = fx.dataDir();
    const d = await daemon(dataDir, 'start:launched');
    const vm = await define(dataDir, d, 'a');
    await crashOn(d, dataDir, 'start', 'a');
    const next = await fx.vmms({ dataDir, reattachTimeoutMs: 20_000 });
    expect(next.get('a')).toMatchObject({ enabledState: 2, healthState: 5 });
    expect(workersOf(vm.id)).toEqual([next.get('a')!.processId]);
    expect((await next.start('a')).returnValue).toBe(32775);
    expect((await next.turnOff('a')).returnValue).toBe(0);
    expect(workersOf(vm.id)).toEqual([]);
  });

  it('during a save (SAVE sent): the worker saves and exits; the next VMMS finds the VM Saved and restores it', async () => {
    const dataDir = fx.dataDir();
    const d = await daemon(dataDir, 'save:requested');
    const vm = await define(dataDir, d, 'b');
    const c = await VmmsClient.connect(dataDir);
    expect(await c.call('start', { vm: 'b' })).toMatchObject({ returnValue: 0 });
    const pid = (await c.call<VmView>('show', { vm: 'b' })).processId!;
    fx.pids.add(pid);
    c.close();
    await crashOn(d, dataDir, 'save', 'b');
    await waitFor('the worker to finish saving and exit', () => !processAlive(pid), 20_000);
    const next = await fx.vmms({ dataDir });
    expect(next.get('b')).toMatchObject({ enabledState: 6, processId: null });
    expect(existsSync(join(dataDir, `vmwp-${vm.id}.sock`))).toBe(false);
    expect(existsSync(join(dataDir, `vmwp-${vm.id}.pid`))).toBe(false);
    expect((await next.start('b')).returnValue).toBe(0);
    expect(workersOf(vm.id)).toHaveLength(1);
    expect((await next.turnOff('b')).returnValue).toBe(0);
  });

  it('during a restore (worker spawned): the next VMMS adopts the restored worker, no second one', async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    const vm = first.defineVm({ name: 'c', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await first.start('c');
    expect((await first.save('c')).returnValue).toBe(0);
    await fx.detach(first);
    const d = await daemon(dataDir, 'restore:launched');
    await crashOn(d, dataDir, 'start', 'c');
    const next = await fx.vmms({ dataDir, reattachTimeoutMs: 20_000 });
    expect(next.get('c')).toMatchObject({ enabledState: 2 });
    expect(workersOf(vm.id)).toEqual([next.get('c')!.processId]);
    // The worker restored from the file its VMMS did not live to remove: stale now, removed.
    expect(existsSync(join(dataDir, 'saved', `${vm.id}.vmrs`))).toBe(false);
    expect((await next.turnOff('c')).returnValue).toBe(0);
    expect(workersOf(vm.id)).toEqual([]);
  });

  it('during a reattach (connected, STATUS not asked): the VMMS after it reattaches; the worker ran on', async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    const vm = first.defineVm({ name: 'e', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await first.start('e');
    const pid = first.get('e')!.processId!;
    await fx.detach(first);
    const d = spawn(process.execPath, [...daemonNodeArgs(), '--data-dir', dataDir, '--cim-port', 'none'], {
      stdio: 'ignore',
      env: { ...process.env, TSVISOR_FAULT_POINT: 'reattach:connected' },
    });
    daemons.add(d);
    await waitFor('the daemon to die while reattaching', () => d.signalCode !== null, 60_000);
    expect(d.signalCode).toBe('SIGKILL');
    const next = await fx.vmms({ dataDir });
    expect(next.get('e')).toMatchObject({ enabledState: 2, processId: pid });
    expect(workersOf(vm.id)).toEqual([pid]);
    expect((await next.turnOff('e')).returnValue).toBe(0);
  });
});
