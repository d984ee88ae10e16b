/**
 * The CPU scheduler across processes: VMMS deciding budgets for real worker processes, admission
 * control by reserve, a cap and a live change of it measured as the kernel counts the VP threads,
 * and a stopped worker not holding up the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, testImages, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;

beforeAll(async () => {
  ({ checksum: image } = await testImages());
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('host CPU scheduler', () => {
  it('refuses an over-reserved start, caps a VM, applies a new cap live, and keeps going while a worker is stopped', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir(), hostCpus: 1 });
    const hog = 'rounds=100000000';
    v.defineVm({ name: 'reserved', memoryBytes: 16 * MiB, imagePath: image, cmdline: hog, cpuReserve: 60 });
    v.defineVm({ name: 'greedy', memoryBytes: 16 * MiB, imagePath: image, cmdline: hog, cpuReserve: 50 });
    v.defineVm({ name: 'capped', memoryBytes: 16 * MiB, imagePath: image, cmdline: hog, cpuMaximum: 20 });
    expect((await v.start('reserved')).returnValue).toBe(0);
    const refused = await v.start('greedy');
    expect(refused.returnValue).toBe(32768);
    expect(refused.error).toBe("not enough unreserved CPU: the VM reserves 0.5 CPUs but only 0.4 of the host's 1 are not reserved by running VMs");
    expect(v.get('greedy')!.enabledState).toBe(3);
    expect((await v.start('capped')).returnValue).toBe(0);

    await waitFor('metering of the capped VM', () => v.get('capped')!.cpuUsage !== null, 5000);
    await sleep(300); // past the VP thread's start (instantiating the image is CPU the VM used, uncapped)
    v.measureCpu('capped', true);
    await sleep(1200);
    const capped = v.measureCpu('capped');
    expect(capped.averagePercent).toBeLessThan(24);
    expect(capped.averagePercent).toBeGreaterThan(1);
    expect(v.get('capped')).toMatchObject({ cpuMaximum: 20, cpuReserve: 0, cpuWeight: 100 });

    // One worker stops answering (SIGSTOP): the others still get their budgets every period.
    const stopped = v.get('reserved')!.processId!;
    process.kill(stopped, 'SIGSTOP');
    try {
      const periods = v.schedulerStats().periods;
      expect(v.modifyVm('capped', { cpuMaximum: 5 }).returnValue).toBe(0);
      await sleep(150); // applied from the VP's next period
      v.measureCpu('capped', true);
      await sleep(1200);
      const lowered = v.measureCpu('capped');
      expect(lowered.averagePercent).toBeLessThan(8);
      expect(v.schedulerStats().periods).toBeGreaterThan(periods + 15);
    } finally {
      process.kill(stopped, 'SIGCONT');
    }
    // Its cost in VMMS: the decision and the sends, per period (the max is at the mercy of a loaded host).
    expect(v.schedulerStats().meanPeriodUs).toBeLessThan(5000);
    // A reserve above what is free is refused for a running VM too, and the old one kept.
    expect(v.modifyVm('capped', { cpuReserve: 5 }).returnValue).toBe(0);
    const raise = v.modifyVm('capped', { cpuMaximum: 100, cpuReserve: 50 });
    expect(raise.returnValue).toBe(32773); // InvalidParameter
    expect(raise.error).toMatch(/the CPU reserve cannot be raised: the VM reserves 0.5 CPUs but only 0.4/);
    expect(v.get('capped')).toMatchObject({ cpuReserve: 5, cpuMaximum: 5 });
  }, 60_000);

  it('honours a reservation against rivals of any weight', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir(), hostCpus: 1 });
    const hog = 'rounds=100000000';
    v.defineVm({ name: 'reserved', memoryBytes: 16 * MiB, imagePath: image, cmdline: hog, cpuReserve: 60, cpuWeight: 1 });
    for (const n of ['rival1', 'rival2']) v.defineVm({ name: n, memoryBytes: 16 * MiB, imagePath: image, cmdline: hog, cpuWeight: 10_000 });
    for (const n of ['reserved', 'rival1', 'rival2']) expect((await v.start(n)).returnValue).toBe(0);
    await waitFor('metering of every VM', () => ['reserved', 'rival1', 'rival2'].every((n) => v.get(n)!.cpuUsage !== null), 5000);
    await sleep(300);
    for (const n of ['reserved', 'rival1', 'rival2']) v.measureCpu(n, true);
    await sleep(1500);
    const [reserved, r1, r2] = ['reserved', 'rival1', 'rival2'].map((n) => v.measureCpu(n).averagePercent);
    // By weight alone it would get 0.005% of the CPU (0.5 µs of a 10 ms period); its reserve gives
    // it 60%, the rivals 20% each. The grants are the scheduler's decision, exact; what the kernel
    // then gives each thread depends on what else this host runs: a grant is a cap (load only
    // lowers use), and on a host loaded by other work the three capped threads get about equal
    // slices of what is left (a CI run measured 13% against the rivals' 17%), so the reserve is
    // proven by the reserved VM running at all, far above what its weight would allow.
    const grant = (n: string) => v.cpuGrant(n)!;
    expect(grant('reserved').perVpUs).toBeGreaterThanOrEqual(0.6 * grant('reserved').periodUs - 10);
    for (const n of ['rival1', 'rival2']) expect(grant(n).perVpUs).toBeLessThanOrEqual(0.2 * grant(n).periodUs + 10);
    expect(Math.max(r1, r2)).toBeLessThan(26);
    expect(reserved).toBeLessThan(66);
    expect(reserved).toBeGreaterThan(2);
  }, 60_000);
});
