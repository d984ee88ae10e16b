/**
 * Fault isolation: each VM runs in its own worker process; kill -9 of one worker takes down that
 * VM alone — VMMS notices at once, reports it Off with HealthState Critical (25) and an event,
 * and the other VM keeps running and making progress.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateChangeEvent } from '../../root-partition/vmms/vmms.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
let probe: string;

beforeAll(async () => {
  ({ checksum: image, probe } = await testImages());
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const progress = (text: string) => [...text.matchAll(/progress round=(\d+)/g)].map((m) => Number(m[1])).at(-1) ?? 0;

describe('worker isolation', () => {
  it('kill -9 of one VM worker leaves VMMS and the other VM untouched', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    // Long enough that neither guest finishes during the test.
    for (const name of ['victim', 'bystander']) v.defineVm({ name, memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    expect((await v.start('victim')).returnValue).toBe(0);
    expect((await v.start('bystander')).returnValue).toBe(0);
    const victim = v.get('victim')!;
    const bystander = v.get('bystander')!;
    expect(victim.processId).not.toBe(bystander.processId);
    expect(victim.processId).not.toBe(process.pid);

    const events: StateChangeEvent[] = [];
    const crashes: unknown[] = [];
    v.events.on('state-changed', (e: StateChangeEvent) => events.push(e));
    v.events.on('vm-crashed', (e) => crashes.push(e));
    const killedAt = Date.now();
    process.kill(victim.processId!, 'SIGKILL');
    await waitFor('the victim to be Off', () => v.get('victim')!.enabledState === 3, 5000);
    const noticedMs = Date.now() - killedAt;

    expect(noticedMs).toBeLessThan(2000);
    expect(v.get('victim')).toMatchObject({ enabledState: 3, healthState: 25, processId: null, lastError: expect.stringMatching(/ended unexpectedly/) });
    expect(events).toEqual([expect.objectContaining({ vmId: victim.id, previous: 2, state: 3, healthState: 25 })]);
    expect(crashes).toEqual([{ vmId: victim.id, name: 'victim', message: expect.stringContaining(String(victim.processId)) }]);
    await waitFor('the victim process to be reaped', () => !processAlive(victim.processId!), 2000);
    // The log: JSON lines in the data directory, the VM named on each line about it.
    await waitFor('the log line', () => readFileSync(join(dataDir, 'logs', 'vmms.log'), 'utf8').includes('ended unexpectedly'));
    const lines = readFileSync(join(dataDir, 'logs', 'vmms.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'error', component: 'vmms', vmId: victim.id, message: `the worker process ${victim.processId} ended unexpectedly` }),
    );

    // The bystander keeps running and its guest keeps making progress.
    const before = progress(v.console('bystander'));
    await waitFor('bystander progress', () => progress(v.console('bystander')) > before + 200, 10_000);
    expect(v.get('bystander')).toMatchObject({ enabledState: 2, healthState: 5, processId: bystander.processId });
    const counters = await v.counters('bystander');
    expect(counters.vps[0].StringIoExits).toBeGreaterThan(0);
    expect(counters.consoleBytes).toBeGreaterThan(0);

    // The crashed VM starts again in a new worker.
    expect((await v.start('victim')).returnValue).toBe(0);
    const again = v.get('victim')!;
    expect(again).toMatchObject({ enabledState: 2, healthState: 5 });
    expect(again.processId).not.toBe(victim.processId);
    for (const name of ['victim', 'bystander']) expect((await v.turnOff(name)).returnValue).toBe(0);
    expect(processAlive(again.processId!)).toBe(false);
    expect(processAlive(bystander.processId!)).toBe(false);
  });

  it('a guest that stops by itself turns its VM Off with HealthState OK and its worker exits', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    v.defineVm({ name: 'short', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=300 work=1000' });
    const r = await v.start('short');
    const pid = r.vm!.processId!;
    await waitFor('the guest to finish', () => v.get('short')!.enabledState === 3, 20_000);
    expect(v.get('short')).toMatchObject({ healthState: 5, processId: null });
    expect(v.console('short')).toMatch(/result rounds=300 sum=(\w+) expected=\1 verdict=OK/);
    await waitFor('the worker to exit', () => !processAlive(pid), 5000);
  });

  it('a guest fault turns its VM Off with HealthState Major (20) and is reported', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    v.defineVm({ name: 'faulty', memoryBytes: 16 * MiB, imagePath: probe, cmdline: 'ud' });
    const faults: { message: string }[] = [];
    v.events.on('guest-fault', (f) => faults.push(f));
    await v.start('faulty');
    await waitFor('Off', () => v.get('faulty')!.enabledState === 3, 20_000);
    expect(v.get('faulty')).toMatchObject({ healthState: 20, processId: null });
    expect(faults).toEqual([expect.objectContaining({ name: 'faulty', message: expect.stringMatching(/VP 0 \(ud\): hypercall before the hypercall page/) })]);
  });
});
