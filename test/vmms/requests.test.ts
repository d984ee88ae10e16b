/**
 * State-change requests against real VMs: every invalid request gets its Hyper-V return code and
 * changes nothing; pause parks the guest (no progress) and resume continues it; reset reboots
 * the guest; the host memory budget refuses a start with the numbers; turn-off ends a stuck
 * transition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
let v: Vmms;

beforeAll(async () => {
  image = (await testImages()).checksum;
  v = await fx.vmms({ dataDir: fx.dataDir(), limits: { memoryBudgetBytes: 48 * MiB }, operationTimeoutMs: 1500 });
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const progress = (text: string) => [...text.matchAll(/progress round=(\d+)/g)].map((m) => Number(m[1])).at(-1) ?? 0;
const LONG = 'rounds=100000000 work=20000';

describe('state-change requests', () => {
  it('refuses invalid requests with their return codes and leaves the VM as it was', async () => {
    v.defineVm({ name: 'r1', memoryBytes: 16 * MiB, imagePath: image, cmdline: LONG });
    for (const [req, code] of [
      [3, 32775],
      [6, 32775],
      [9, 32775],
      [11, 32775],
      [10, 32775],
      [4, 4097],
      [7, 4097],
      [2.5, 32773],
      [-2, 32773],
    ] as const) {
      const r = await v.requestStateChange('r1', req);
      expect(r, `Off + ${req}`).toMatchObject({ returnValue: code, error: expect.any(String), vm: { enabledState: 3 } });
    }
    expect(await v.requestStateChange('nosuch', 2)).toMatchObject({ returnValue: 32773, error: expect.stringMatching(/no VM/) });

    expect((await v.start('r1')).returnValue).toBe(0);
    const pid = v.get('r1')!.processId;
    expect(await v.start('r1')).toMatchObject({ returnValue: 32775, error: 'cannot start a VM that is Running' });
    expect(v.removeVm('r1')).toMatchObject({ returnValue: 32775 });
    expect(await v.requestStateChange('r1', 4)).toMatchObject({ returnValue: 4097, error: expect.stringMatching(/shut down needs/) });
    expect(v.get('r1')).toMatchObject({ enabledState: 2, processId: pid });

    expect((await v.pause('r1')).returnValue).toBe(0);
    expect(await v.pause('r1')).toMatchObject({ returnValue: 32775 });
    expect(v.get('r1')!.availableRequestedStates).toEqual([2, 3, 6, 11]);
  });

  it('pause stops the guest at an exit boundary; resume continues where it stopped', async () => {
    expect(v.get('r1')!.enabledState).toBe(9);
    // Console output the guest wrote before it parked may still be on its way to VMMS.
    await new Promise((r) => setTimeout(r, 300));
    const at = progress(v.console('r1'));
    const exitsPaused = (await v.counters('r1')).vps[0].Exits;
    await new Promise((r) => setTimeout(r, 300));
    expect(progress(v.console('r1'))).toBe(at);
    expect((await v.counters('r1')).vps[0].Exits).toBe(exitsPaused);
    expect((await v.resume('r1')).vm).toMatchObject({ enabledState: 2 });
    await waitFor('progress after resume', () => progress(v.console('r1')) > at);
    expect(v.console('r1')).not.toMatch(/resumed/); // a pause is not a restore: the same VP runs on
  });

  it('reset reboots the guest in the same worker', async () => {
    const pid = v.get('r1')!.processId;
    const before = progress(v.console('r1'));
    expect(before).toBeGreaterThan(0);
    expect((await v.reset('r1')).vm).toMatchObject({ enabledState: 2, processId: pid });
    await waitFor('the guest to boot again', () => v.console('r1').includes('checksum guest: 100000000 rounds'));
    await waitFor('progress from round 0', () => progress(v.console('r1')) > 0);
    expect(progress(v.console('r1'))).toBeLessThan(before + 100_000);
  });

  it('refuses a start that would exceed the host memory budget, with the numbers', async () => {
    v.defineVm({ name: 'big', memoryBytes: 40 * MiB, imagePath: image, cmdline: LONG });
    const r = await v.start('big');
    expect(r).toMatchObject({
      returnValue: 32768,
      error: 'not enough host memory: the VM needs 40 MiB, running VMs hold 16 MiB of a 48 MiB budget',
      vm: { enabledState: 3, processId: null },
    });
    expect(() => v.defineVm({ name: 'huge', memoryBytes: 64 * MiB, imagePath: image })).toThrow(/can never fit/);
  });

  it('turn-off ends a transition that is stuck (the worker stopped answering)', async () => {
    const pid = v.get('r1')!.processId!;
    process.kill(pid, 'SIGSTOP');
    const pausing = v.pause('r1');
    await waitFor('Pausing', () => v.get('r1')!.enabledState === 32776);
    expect(await v.save('r1')).toMatchObject({ returnValue: 32775 });
    const off = await v.turnOff('r1');
    expect(off).toMatchObject({ returnValue: 0, vm: { enabledState: 3, processId: null } });
    const stuck = await pausing;
    expect(stuck.returnValue).toBe(32768);
    expect(v.get('r1')).toMatchObject({ enabledState: 3 });
    expect(processAlive(pid)).toBe(false);
    expect(v.removeVm('r1').returnValue).toBe(0);
    expect(v.get('r1')).toBeUndefined();
  });
});
