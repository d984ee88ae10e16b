/**
 * The worker's scheduler client against a real partition: it reports demand and CPU use, applies
 * VMMS's grants to the VP, and when grants stop coming it falls back to the VM's own Maximum
 * (never starving the VM, never dropping its cap).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';
import { CpuSchedulerClient, STALE_PERIODS } from '../../root-partition/vmwp/cpu-scheduler-client.ts';
import type { CpuDemandRecord } from '../../root-partition/ipc/bulk-codec.ts';
import winston from 'winston';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the worker side of the CPU scheduler', () => {
  let g: TestGuest | null = null;
  let client: CpuSchedulerClient | null = null;
  afterEach(async () => {
    client?.stop();
    await g?.dispose();
    g = null;
  });

  it("reports a busy VP, applies grants, and falls back to the VM's Maximum when VMMS goes quiet", async () => {
    g = await bootTestGuest('smp-work', 'rounds=4000000000 work=20000');
    const p = g.partition;
    await g.waitFor('smp-work');
    const reports: CpuDemandRecord[] = [];
    client = new CpuSchedulerClient(
      () => p,
      (r) => reports.push(r),
      winston.createLogger({ silent: true }),
    );
    const periodUs = 10_000;
    client.onGrant({ kind: 'cpu-budget', seq: 1, periodUs, perVpUs: 500, capUs: 4000 });
    expect(p.cpu.budgetUs(0)).toBe(500);
    expect(p.cpu.periodUs).toBe(periodUs);
    client.start();
    for (let t = 0; t < 100 && reports.length < 4; t++) await sleep(20);
    expect(reports.length).toBeGreaterThan(3);
    const last = reports.at(-1)!;
    expect(last).toMatchObject({ kind: 'cpu-demand', runnableVps: 1, grantSeq: 1 });
    expect(last.vpUsedUs[0]).toBeGreaterThan(reports[0].vpUsedUs[0]);
    expect(last.parks).toBeGreaterThan(0);
    // A malformed grant is refused; the one in force stays.
    client.onGrant({ kind: 'cpu-budget', seq: 2, periodUs: 5, perVpUs: -7, capUs: 0 });
    expect(p.cpu.budgetUs(0)).toBe(500);
    // No grant for STALE_PERIODS periods: the VM's own Maximum, not the last (small) budget.
    await sleep((STALE_PERIODS * periodUs) / 1000 + 150);
    expect(p.cpu.budgetUs(0)).toBe(4000);
    client.onGrant({ kind: 'cpu-budget', seq: 3, periodUs, perVpUs: -1, capUs: -1 });
    expect(p.cpu.budgetUs(0)).toBe(Infinity);
  });
});
