/**
 * The scheduler's decision for one period (hypervisor/scheduler/share-allocation.ts): reserves
 * first, limits as caps, the rest by weight, never more than the host has, work-conserving —
 * as properties over random VMs, and the cases the CPU bench measures.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admissionRefusal, allocatePeriod, checkCpuSettings, type VmDemand } from '../../hypervisor/scheduler/share-allocation.ts';

const P = 10_000;
const vm = (id: string, o: Partial<VmDemand> = {}): VmDemand => ({ id, vpCount: 1, runnableVps: 1, weight: 100, reserve: 0, limit: 1, ...o });
const budgets = (a: { budgetUs: number }[]) => a.map((x) => Math.round(x.budgetUs));

const arbVm = fc
  .record({
    vpCount: fc.integer({ min: 1, max: 8 }),
    weight: fc.integer({ min: 1, max: 10_000 }),
    reserve: fc.double({ min: 0, max: 1, noNaN: true }),
    limitExtra: fc.double({ min: 0, max: 1, noNaN: true }),
    runnable: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map((r) => {
    const limit = Math.min(1, r.reserve + r.limitExtra * (1 - r.reserve)) || 0.01;
    return { vpCount: r.vpCount, weight: r.weight, reserve: Math.min(r.reserve, limit), limit, runnableVps: Math.round(r.runnable * r.vpCount) };
  });

describe('one period of CPU allocation', () => {
  it('weights 1:2:3 on one CPU, every VM wanting all of it: 1/6, 2/6, 3/6', () => {
    expect(budgets(allocatePeriod([vm('a', { weight: 1 }), vm('b', { weight: 2 }), vm('c', { weight: 3 })], 1, 6000))).toEqual([1000, 2000, 3000]);
  });

  it('a cap of 25% holds; what it leaves goes to the others by weight', () => {
    expect(budgets(allocatePeriod([vm('capped', { limit: 0.25 }), vm('b'), vm('c')], 1, P))).toEqual([2500, 3750, 3750]);
  });

  it('a 50% reserve holds against four competitors of any weight', () => {
    const a = allocatePeriod([vm('r', { reserve: 0.5, weight: 1 }), ...['w', 'x', 'y', 'z'].map((id) => vm(id, { weight: 10_000 }))], 1, P);
    expect(Math.round(a[0].budgetUs)).toBe(5000);
    expect(budgets(a.slice(1))).toEqual([1250, 1250, 1250, 1250]);
  });

  it('an idle VM gets nothing; a lone busy VP gets its whole CPU, not more', () => {
    expect(budgets(allocatePeriod([vm('idle', { runnableVps: 0, reserve: 0.5 }), vm('busy', { vpCount: 2, runnableVps: 1 })], 2, P))).toEqual([0, P]);
  });

  it('settings are checked with their ranges; admission control counts reserves in CPUs', () => {
    expect(() => checkCpuSettings({ weight: 0, reserve: 0, limit: 1 })).toThrow(/weight 0 must be a whole number 1..10000/);
    expect(() => checkCpuSettings({ weight: 100, reserve: 0.6, limit: 0.5 })).toThrow(/reserve 0.6 is above the limit 0.5/);
    expect(admissionRefusal([{ weight: 100, reserve: 0.5, limit: 1, vpCount: 2 }], { weight: 100, reserve: 1, limit: 1, vpCount: 1 }, 2)).toBeNull();
    expect(admissionRefusal([{ weight: 100, reserve: 0.5, limit: 1, vpCount: 2 }], { weight: 100, reserve: 0.75, limit: 1, vpCount: 2 }, 2)).toMatch(
      /reserves 1.5 CPUs but only 1 of the host's 2/,
    );
  });

  it('reserves over capacity are scaled down together (the case admission control prevents)', () => {
    const vms = [
      vm('small', { weight: 1, reserve: 0.002, limit: 0.002 }),
      vm('big', { vpCount: 6, runnableVps: 6, weight: 1, reserve: 0.9995, limit: 0.9995 }),
      vm('idle', { runnableVps: 0, limit: 0.01 }),
    ];
    const a = allocatePeriod(vms, 3, P);
    expect(budgets(a)).toEqual([10, 29990, 0]);
  });

  it('for any VMs: within capacity and caps, floors honoured, work-conserving, proportional to weight in between', () => {
    fc.assert(
      fc.property(fc.array(arbVm, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 8 }), (raw, cpus) => {
        const vms = raw.map((r, i) => vm(`v${i}`, r));
        const a = allocatePeriod(vms, cpus, P);
        const eps = 1e-3 * P;
        const cap = vms.map((v) => Math.min(v.runnableVps, v.limit * v.vpCount) * P);
        // Reserves over the host's capacity (admission control prevents it) are scaled down together.
        const rawFloors = vms.map((v, i) => Math.min(v.reserve * v.vpCount * P, cap[i]));
        const floorSum = rawFloors.reduce((n, f) => n + f, 0);
        const floors = floorSum <= cpus * P ? rawFloors : rawFloors.map((f) => (f * cpus * P) / floorSum);
        const sum = a.reduce((n, x) => n + x.budgetUs, 0);
        expect(sum).toBeLessThanOrEqual(cpus * P + eps);
        a.forEach((x, i) => {
          expect(x.budgetUs).toBeGreaterThanOrEqual(-eps);
          expect(x.budgetUs).toBeLessThanOrEqual(cap[i] + eps);
          expect(x.perVpUs).toBeLessThanOrEqual(P + eps);
          expect(x.budgetUs).toBeGreaterThanOrEqual(floors[i] - eps);
        });
        // Work-conserving: capacity left over only when every VM is at its cap.
        if (
          sum <
          Math.min(
            cpus * P,
            cap.reduce((m, c) => m + c, 0),
          ) -
            eps
        )
          throw new Error('capacity left while a VM wants more');
        // Between floor and cap, budget ÷ weight is the same for every VM.
        const free = a
          .map((x, i) => ({ r: x.budgetUs / vms[i].weight, i }))
          .filter(({ i }) => {
            return a[i].budgetUs > floors[i] + eps && a[i].budgetUs < cap[i] - eps;
          });
        for (const f of free) expect(Math.abs(f.r - free[0].r)).toBeLessThanOrEqual(1e-3 * free[0].r + 1e-9);
      }),
      { numRuns: Number(process.env.TSVISOR_PROPERTY_RUNS ?? 500) },
    );
  });
});
