import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { defaultWaitPolicy, SpinBudget, waitForChange, WaitCounters, NOMINAL_NS_PER_SPIN } from '../../hypervisor/adaptive-wait.ts';

describe('adaptive spin budget (KVM-style halt polling)', () => {
  it('stays fixed without a ceiling above the floor', () => {
    const b = new SpinBudget({ spinIterations: 2000 });
    expect(b.adaptive).toBe(false);
    b.update(30_000, false);
    b.update(10_000_000, true);
    expect(b.iterations).toBe(2000);
    expect(b.grows + b.shrinks).toBe(0);
  });

  it('grows by doubling when a sleep ended within the window, up to the ceiling', () => {
    const b = new SpinBudget({ spinIterations: 2000, maxSpinIterations: 20_000 });
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      b.update(50_000, false); // 50 µs: a longer spin would have caught it
      seen.push(b.iterations);
    }
    expect(seen).toEqual([4000, 8000, 16000, 20000]);
    b.hit(); // the partner is caught by the spin: the budget stays
    b.update(50_000, false);
    expect(b.iterations).toBe(20000);
  });

  it('falls back to the floor and holds there when longer spins keep failing (no free core)', () => {
    const b = new SpinBudget({ spinIterations: 2000, maxSpinIterations: 20_000 });
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.update(60_000, false); // every wait sleeps, however long the spin was
      seen.push(b.iterations);
    }
    expect(seen).toEqual([4000, 8000, 16000, 20000, 2000, 2000]);
    expect(b.backoffs).toBe(1);
    for (let i = 0; i < 64; i++) b.update(60_000, false);
    expect(b.iterations).toBe(4000); // the hold ran out: it may try again
  });

  it('shrinks by halving to the floor when a wait outlasts the window or times out', () => {
    const b = new SpinBudget({ spinIterations: 2000, maxSpinIterations: 20_000 });
    b.iterations = 20_000;
    b.update(20_000 * NOMINAL_NS_PER_SPIN + 1, false);
    expect(b.iterations).toBe(10_000);
    b.update(1000, true);
    expect(b.iterations).toBe(5000);
    for (let i = 0; i < 5; i++) b.update(5_000_000, false);
    expect(b.iterations).toBe(2000);
  });

  it('a floor of 0 (sleep at once) can still grow', () => {
    const b = new SpinBudget({ spinIterations: 0, maxSpinIterations: 8000 });
    b.update(40_000, false);
    expect(b.iterations).toBe(1000);
  });

  it('reads TSVISOR_SPIN_MAX (0 = fixed spin)', () => {
    const old = process.env.TSVISOR_SPIN_MAX;
    try {
      process.env.TSVISOR_SPIN_MAX = '0';
      expect(defaultWaitPolicy().maxSpinIterations).toBe(0);
      delete process.env.TSVISOR_SPIN_MAX;
      expect(defaultWaitPolicy().maxSpinIterations).toBe(20_000);
    } finally {
      if (old === undefined) delete process.env.TSVISOR_SPIN_MAX;
      else process.env.TSVISOR_SPIN_MAX = old;
    }
  });

  it('a timed-out wait counts its sleep and shrinks the budget', () => {
    const i32 = new Int32Array(new SharedArrayBuffer(4));
    const b = new SpinBudget({ spinIterations: 10, maxSpinIterations: 100_000 });
    b.iterations = 40;
    const c = new WaitCounters();
    expect(waitForChange(i32, 0, 0, { spinIterations: 10 }, c, 1, b)).toBe(0);
    expect(c.sleeps).toBe(1);
    expect(c.timeouts).toBe(1);
    expect(c.sleptUs).toBeGreaterThan(0);
    expect(b.iterations).toBe(20);
  });

  it('a partner answering after the spin wakes the sleeper, which then grows its budget', async () => {
    const sab = new SharedArrayBuffer(8);
    const i32 = new Int32Array(sab);
    const b = new SpinBudget({ spinIterations: 0, maxSpinIterations: 1_000_000 });
    const w = new Worker(
      `const { workerData } = require('node:worker_threads'); const a = new Int32Array(workerData); Atomics.wait(a, 1, 0); Atomics.store(a, 0, 7); Atomics.notify(a, 0);`,
      { eval: true, workerData: sab },
    );
    try {
      await new Promise((r) => setTimeout(r, 50));
      Atomics.store(i32, 1, 1);
      Atomics.notify(i32, 1);
      const c = new WaitCounters();
      expect(waitForChange(i32, 0, 0, { spinIterations: 0 }, c, 5000, b)).toBe(7);
      expect(c.sleeps + c.spinHits).toBe(1);
      // Woken within the 10 ms window the budget grows; on a loaded host the wake-up itself can
      // outlast the window, and then the budget (at its floor) stays where it was.
      const withinWindow = c.sleptUs * 1000 <= 1_000_000 * NOMINAL_NS_PER_SPIN;
      if (c.sleeps === 1) expect(b.iterations).toBe(withinWindow ? 1000 : 0);
    } finally {
      await w.terminate();
    }
  });
});
