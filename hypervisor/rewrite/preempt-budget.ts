/**
 * The fuel a VP of a rewritten image spends between two visits to the hypervisor. A unit is
 * about one Wasm instruction of a loop body or function (preemption-points.ts charges by size),
 * so the default, calibrated with `tsvisor bench cpu` on this kind of machine, puts a check
 * about every 50-100 µs of guest compute: interrupt latency for a computing guest is that plus
 * the host's wake-up. TSVISOR_PREEMPT_BUDGET overrides it for every partition; the partition
 * option preemptBudget for one.
 */
export const DEFAULT_PREEMPT_BUDGET = 1_000_000;
const MIN = 100;
const MAX = 0x7fff_0000;

export function preemptBudget(requested?: number): number {
  const env = Number(process.env.TSVISOR_PREEMPT_BUDGET);
  const v = requested ?? (Number.isFinite(env) && env > 0 ? env : DEFAULT_PREEMPT_BUDGET);
  return Math.min(MAX, Math.max(MIN, Math.floor(v)));
}
