import { afterEach, describe, expect, it } from 'vitest';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';
import { PartitionCpuMeter } from '../../hypervisor/scheduler/partition-cpu-meter.ts';

// A compute-bound guest with no end in sight: smp-work's chain on one VP.
const HOG = 'rounds=4000000000 work=20000';

describe('CPU budget enforced at preemption exits', () => {
  let g: TestGuest | null = null;
  afterEach(async () => {
    await g?.dispose();
    g = null;
  });

  it('a VP capped at 5% of a CPU uses no more than that, measured as the kernel counts its thread', async () => {
    g = await bootTestGuest('smp-work', HOG);
    const p = g.partition;
    await g.waitFor('smp-work');
    p.cpu.setBudgetUs(0, p.cpu.periodUs * 0.05);
    await new Promise((r) => setTimeout(r, 120)); // the cap is in force from the VP's next period
    const meter = new PartitionCpuMeter(p.cpu);
    const [u0] = meter.sampleUs();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const [u1] = meter.sampleUs();
    const share = (u1 - u0) / ((performance.now() - t0) * 1000);
    expect(p.cpu.tid(0)).toBeGreaterThan(0);
    expect(share).toBeLessThan(0.08);
    expect(share).toBeGreaterThan(0.01);
    expect(p.cpu.parks(0)).toBeGreaterThan(5);
    // Lifting the cap lets it run again: no more parks once the current one ends.
    p.cpu.setBudgetUs(0, Infinity);
    await new Promise((r) => setTimeout(r, 100));
    const parks = p.cpu.parks(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(p.cpu.parks(0)).toBe(parks);
  });

  it('a VP parked out of budget still pauses and stops at once', async () => {
    g = await bootTestGuest('smp-work', HOG);
    const p = g.partition;
    await g.waitFor('smp-work');
    p.cpu.periodUs = 1_000_000;
    p.cpu.setBudgetUs(0, 1000); // 1 ms per second: parked nearly all the time
    const deadline = Date.now() + 3000;
    while (!p.cpu.parked(0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(p.cpu.parked(0)).toBe(true);
    const t0 = performance.now();
    const r = await p.pause(2000);
    expect(r.paused).toBe(true);
    expect(performance.now() - t0).toBeLessThan(300);
    p.resume();
  });
});
