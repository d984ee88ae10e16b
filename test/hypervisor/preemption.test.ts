/**
 * Preemption points in rewritten images (hypervisor/rewrite/): a VP that computes without a
 * single exit still gets its timer interrupts, parks for pause and leaves for stop without its
 * thread being terminated. The same guest run unmodified shows what the rewrite fixes.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VpRunState } from '../../hypervisor/partition-control.ts';
import { NO_REWRITE } from '../../hypervisor/rewrite/rewrite-abi.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

const RESULT_GPA = 0x3000;
const open: TestGuest[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.dispose()));
});

async function boot(cmdline: string, opts: Parameters<typeof bootTestGuest>[2] = {}): Promise<TestGuest> {
  const g = await bootTestGuest('cpu-kernels', cmdline, opts);
  open.push(g);
  return g;
}

const progress = (g: TestGuest) => Atomics.load(g.partition.mem.u32, RESULT_GPA >> 2);
const ticks = (g: TestGuest) => Atomics.load(g.partition.mem.u32, (RESULT_GPA + 4) >> 2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: () => boolean, timeoutMs = 15_000): Promise<void> {
  await vi.waitFor(
    () => {
      if (!what()) throw new Error('condition not reached in time');
    },
    { timeout: timeoutMs, interval: 5 },
  );
}

describe('preemption points', () => {
  it('a VP computing without exits gets its periodic timer interrupts', async () => {
    const g = await boot('spin ticks=5 period=10000'); // 1 ms period
    // The guest stops at 5 or more: a tick can land between its last check and its print.
    await until(() => /ticks=\d+\n/.test(g.console()), 20_000);
    expect(g.values().ticks).toBeGreaterThanOrEqual(5);
    const c = g.partition.counters(0);
    expect(c.PreemptionExits).toBeGreaterThan(0);
    expect(c.InterruptsDelivered).toBeGreaterThanOrEqual(5);
    expect(progress(g)).toBeGreaterThan(0); // it computed between the interrupts
  });

  it('the same image unmodified never sees the timer while it computes (what the rewrite fixes)', async () => {
    const g = await boot('spin ticks=5 period=10000', { config: { rewrite: NO_REWRITE } });
    await until(() => progress(g) > 50);
    await sleep(100);
    expect(ticks(g)).toBe(0);
    expect(g.partition.counters(0).PreemptionExits).toBe(0);
  });

  it('pause parks a computing VP, resume continues it, stop ends it without terminating its thread', async () => {
    const g = await boot('spin ticks=0');
    await until(() => progress(g) > 10);
    expect(await g.partition.pause(5000)).toEqual({ paused: true, notParked: [] });
    expect(g.partition.runState(0)).toBe(VpRunState.Paused);
    const parked = progress(g);
    await sleep(50);
    expect(progress(g)).toBe(parked);
    g.partition.resume();
    await until(() => progress(g) > parked + 10);
    await g.partition.stop();
    expect(g.partition.vpExit(0)).toEqual({ reason: 'stopped' });
    expect(g.partition.threadsTerminated).toBe(0);
  });

  it('an unmodified computing VP can only be stopped by terminating its thread', async () => {
    const g = await boot('spin ticks=0', { config: { rewrite: NO_REWRITE } });
    await until(() => progress(g) > 10);
    expect(await g.partition.pause(100)).toEqual({ paused: false, notParked: [0] }); // and undone: the VP runs on
    await g.partition.stop(100);
    expect(g.partition.threadsTerminated).toBe(1);
  });
});
