/**
 * VMMS restarts: VMs keep running in their workers while VMMS is gone — after a normal stop
 * without stopping VMs, and after the daemon is killed with SIGKILL — and the next VMMS
 * reattaches to them and reads their state; no definition is lost. A clean stop of the daemon
 * applies each VM's automatic stop action (save or turn off) and leaves no process behind.
 */
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import type { RequestResult } from '../../root-partition/vmms/vmms.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;

beforeAll(async () => {
  image = (await testImages()).checksum;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
  for (const d of fx.daemons) expect(processAlive(d.pid!)).toBe(false);
});

const progress = (text: string) => [...text.matchAll(/progress round=(\d+)/g)].map((m) => Number(m[1])).at(-1) ?? 0;

describe('VMMS restart', () => {
  it('an embedded VMMS stopped without stopping VMs: the next one reattaches to the running VMs', async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    for (const name of ['one', 'two', 'three']) first.defineVm({ name, memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await first.start('one');
    await first.start('two');
    await first.pause('two');
    const before = Object.fromEntries(first.list().map((v) => [v.name, v]));
    await fx.detach(first);
    expect(processAlive(before.one.processId!)).toBe(true);

    const second = await fx.vmms({ dataDir });
    const after = Object.fromEntries(second.list().map((v) => [v.name, v]));
    expect(Object.keys(after).sort()).toEqual(['one', 'three', 'two']);
    expect(after.one).toMatchObject({ id: before.one.id, enabledState: 2, processId: before.one.processId, healthState: 5 });
    expect(after.two).toMatchObject({ enabledState: 9, processId: before.two.processId });
    expect(after.three).toMatchObject({ enabledState: 3, processId: null });
    // Reattached for real: the console flows again, requests reach the worker.
    const at = progress(second.console('one'));
    await waitFor('console after reattach', () => progress(second.console('one')) > at);
    expect((await second.resume('two')).vm).toMatchObject({ enabledState: 2 });
    // A reattached worker is not this process's child: its death is still noticed at once.
    process.kill(before.two.processId!, 'SIGKILL');
    await waitFor('two Off', () => second.get('two')!.enabledState === 3, 3000);
    expect(second.get('two')).toMatchObject({ healthState: 25, processId: null });
    expect(second.get('one')).toMatchObject({ enabledState: 2, processId: before.one.processId });
    expect((await second.turnOff('one')).returnValue).toBe(0);
    expect(processAlive(before.one.processId!)).toBe(false);
  });

  it('the daemon killed with SIGKILL: VMs run on, a new daemon reattaches; SIGTERM applies stop actions', { timeout: 120_000 }, async () => {
    const dataDir = fx.dataDir();
    const d1 = await fx.daemon(dataDir);
    let c = await VmmsClient.connect(dataDir);
    await c.call('new', { name: 'keeps', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000', automaticStopAction: 'save' });
    await c.call('new', { name: 'offs', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000', automaticStopAction: 'turn-off' });
    for (const vm of ['keeps', 'offs']) expect((await c.call<RequestResult>('start', { vm })).returnValue).toBe(0);
    expect(await c.call('pause', { vm: 'nosuch' })).toMatchObject({ returnValue: 32773 });
    await expect(c.call('fly' as never, {})).rejects.toThrow(/unknown method/);
    const running = await c.call<VmView[]>('list');
    for (const v of running) fx.pids.add(v.processId!);
    c.close();

    d1.kill('SIGKILL');
    await waitFor('the daemon to die', () => d1.exitCode !== null || d1.signalCode !== null);
    for (const v of running) expect(processAlive(v.processId!)).toBe(true);

    const d2 = await fx.daemon(dataDir);
    c = await VmmsClient.connect(dataDir);
    const reattached = await c.call<VmView[]>('list');
    expect(reattached.map((v) => [v.name, v.enabledState, v.processId]).sort()).toEqual(running.map((v) => [v.name, 2, v.processId]).sort());
    // A malformed request gets an error reply; the service and the VMs carry on.
    const raw = await new Promise<string>((resolve) => {
      const s = connect(join(dataDir, 'vmms.sock'));
      let got = '';
      s.on('data', (d) => {
        got += d;
        if (got.includes('\n')) {
          s.end();
          resolve(got);
        }
      });
      s.write('{"id": 7, "method": \n');
    });
    expect(JSON.parse(raw)).toMatchObject({ id: null, error: { code: 'VMMS_ERR_REQUEST' } });
    expect((await c.call<VmView[]>('list')).every((v) => v.enabledState === 2)).toBe(true);
    const con = await c.call<string>('console', { vm: 'keeps' });
    expect(con).toMatch(/progress round=/); // the worker's console backlog, replayed on reattach
    c.close();

    d2.kill('SIGTERM');
    await waitFor('the daemon to stop', () => d2.exitCode !== null, 30_000);
    expect(d2.exitCode).toBe(0);
    for (const v of running) await waitFor(`worker ${v.processId} to exit`, () => !processAlive(v.processId!), 5000);
    const keeps = running.find((v) => v.name === 'keeps')!;
    expect(existsSync(join(dataDir, 'saved', `${keeps.id}.vmrs`))).toBe(true);
    expect(readdirSync(join(dataDir, 'saved'))).toEqual([`${keeps.id}.vmrs`]);
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.sock'))).toEqual([]);

    // What the stop actions left is what the next service sees.
    const v = await fx.vmms({ dataDir });
    expect(Object.fromEntries(v.list().map((x) => [x.name, x.state]))).toEqual({ keeps: 'Saved', offs: 'Off' });
  });
});
