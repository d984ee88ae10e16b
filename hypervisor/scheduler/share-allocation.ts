/**
 * One scheduling period's CPU allocation for every running VM, from each VM's reserve, limit and
 * weight — the decision of a proportional-share scheduler as ESX's resource manager and Hyper-V
 * make it (Msvm_ProcessorSettingData Reservation / Limit / Weight). A pure function: the part of
 * the host's scheduler that can be reasoned about and tested without threads.
 *
 * Every VM that wants CPU gets `clamp(λ · weight, floor, cap)`:
 *   cap    what it can use: its runnable VPs (one CPU each) and its limit (Maximum, a fraction of
 *          its processors), whichever is less;
 *   floor  its reserve (a fraction of its processors), never more than its cap;
 *   λ      one number for all VMs, chosen so the allocations fill the host's capacity — or every
 *          VM's cap when together they want less (work-conserving).
 * So reserves are served first, limits are hard caps, and the rest is shared in proportion to
 * weight among the VMs that still want more ("water-filling"). Were the reserves of the running
 * VMs ever to exceed the capacity (admission control keeps them from it), the floors are scaled
 * down in proportion, so the sum never exceeds what the host has.
 *
 * ESX charges each VM virtual time (CPU used ÷ shares) and runs the VM furthest behind; over a
 * period that is the same proportion this allocation hands out in one go. Its budgets are
 * enforced by parking a VP at its next preemption point once its share of the period is spent.
 */

export interface VmCpuSettings {
  /** Relative weight, 1..10,000 (Set-VMProcessor -RelativeWeight; Hyper-V's default 100). */
  weight: number;
  /** Reserve: the fraction of the VM's processors it is guaranteed, 0..1 (Reservation ÷ 100,000). */
  reserve: number;
  /** Maximum: the fraction of the VM's processors it may use at most, 0..1 (Limit ÷ 100,000). */
  limit: number;
}

export const DEFAULT_CPU_SETTINGS: VmCpuSettings = { weight: 100, reserve: 0, limit: 1 };

export interface VmDemand extends VmCpuSettings {
  id: string;
  vpCount: number;
  /** VPs that want to run this period (not halted, not paused). */
  runnableVps: number;
}

export interface VmAllocation {
  id: string;
  /** CPU time for the whole VM in this period, µs (at most runnableVps × periodUs). */
  budgetUs: number;
  /** The same spread over its runnable VPs, µs each (at most periodUs: a VP runs on one CPU). */
  perVpUs: number;
}

export class CpuSettingsError extends Error {}

/** Checks settings as a user or a definition gives them; throws with the field and its range. */
export function checkCpuSettings(s: VmCpuSettings): void {
  if (!(Number.isInteger(s.weight) && s.weight >= 1 && s.weight <= 10_000)) throw new CpuSettingsError(`weight ${s.weight} must be a whole number 1..10000`);
  if (!(s.reserve >= 0 && s.reserve <= 1)) throw new CpuSettingsError(`reserve ${s.reserve} must be 0..1 (0%..100% of the VM's processors)`);
  if (!(s.limit > 0 && s.limit <= 1)) throw new CpuSettingsError(`limit ${s.limit} must be above 0 and at most 1 (up to 100% of the VM's processors)`);
  if (s.reserve > s.limit) throw new CpuSettingsError(`reserve ${s.reserve} is above the limit ${s.limit}`);
}

/**
 * Admission control, as Hyper-V does it: the reserves of the running VMs (in CPUs) may not add up
 * to more than the host's CPUs given to guests. Returns null when `candidate` fits, else why not.
 */
export function admissionRefusal(
  running: readonly (VmCpuSettings & { vpCount: number })[],
  candidate: VmCpuSettings & { vpCount: number },
  hostCpus: number,
): string | null {
  const reserved = running.reduce((n, v) => n + v.reserve * v.vpCount, 0);
  const wanted = candidate.reserve * candidate.vpCount;
  if (reserved + wanted <= hostCpus + 1e-9) return null;
  return `the VM reserves ${fmt(wanted)} CPUs but only ${fmt(Math.max(0, hostCpus - reserved))} of the host's ${fmt(hostCpus)} are not reserved by running VMs`;
}

const fmt = (x: number) => String(Math.round(x * 100) / 100);

/** The allocation for one period of `periodUs` on `hostCpus` CPUs. */
export function allocatePeriod(vms: readonly VmDemand[], hostCpus: number, periodUs: number): VmAllocation[] {
  const capacity = hostCpus * periodUs;
  const caps = vms.map((v) => Math.max(0, Math.min(v.runnableVps, v.limit * v.vpCount) * periodUs));
  let floors = vms.map((v, i) => Math.min(v.reserve * v.vpCount * periodUs, caps[i]));
  const floorSum = floors.reduce((a, b) => a + b, 0);
  if (floorSum > capacity) floors = floors.map((f) => (f * capacity) / floorSum);
  const capSum = caps.reduce((a, b) => a + b, 0);
  const target = Math.min(capacity, capSum);
  const alloc = (lambda: number) => vms.map((v, i) => Math.min(caps[i], Math.max(floors[i], lambda * v.weight)));
  const total = (lambda: number) => alloc(lambda).reduce((a, b) => a + b, 0);
  // total(λ) is continuous and non-decreasing: find the λ that fills the target by bisection.
  let lo = 0,
    hi = 1;
  while (total(hi) < target - 1e-6 && hi < 1e15) hi *= 2;
  for (let i = 0; i < 100 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (total(mid) < target) lo = mid;
    else hi = mid;
  }
  const budgets = alloc(hi);
  // The bisection may overshoot the target by a hair: scale back what is above the floors.
  const over = budgets.reduce((a, b) => a + b, 0) - target;
  if (over > 0) {
    const above = budgets.reduce((n, b, i) => n + (b - floors[i]), 0);
    if (above > 0) for (let i = 0; i < budgets.length; i++) budgets[i] -= (over * (budgets[i] - floors[i])) / above;
  }
  return vms.map((v, i) => ({ id: v.id, budgetUs: budgets[i], perVpUs: v.runnableVps > 0 ? budgets[i] / v.runnableVps : 0 }));
}
