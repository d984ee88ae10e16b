/**
 * Spin-then-sleep waiting on a shared Int32 word, like KVM's halt polling: a short spin catches a
 * partner that answers within microseconds on a free core (a round trip of ~0.2 µs), and the
 * futex sleep bounds the CPU burnt when it does not (a wake-up costs ~30 µs on this kind of VM,
 * measured with Atomics.wait/notify on Node 20). The spin budget is configurable: 0 means sleep at once.
 *
 * With `maxSpinIterations` above `spinIterations`, each waiter's budget adapts as KVM's
 * halt_poll_ns does (virt/kvm/kvm_main.c, grow_halt_poll_ns / shrink_halt_poll_ns): a wait that
 * slept but ended within the maximum window doubles the budget (a longer spin would have caught
 * the partner and saved the wake-up), a wait that outlasted the window (or timed out) halves it
 * back toward `spinIterations`, and a wait the spin caught leaves it alone. A 1 MiB storvsc read
 * keeps the VP halted ~50 µs (the backend's pread) and then the device thread waits for the
 * guest's next request, both past the fixed ~20 µs spin: that is the wake-up per I/O this removes.
 */
export interface WaitPolicy {
  /** Loads of the word before sleeping; ~10 ns each. 1000 ≈ 10 µs. The floor when adaptive. */
  spinIterations: number;
  /** Ceiling of the adaptive budget (KVM halt_poll_ns_max); ≤ spinIterations (or absent) = fixed spin. */
  maxSpinIterations?: number;
}

export const DEFAULT_SPIN_ITERATIONS = 2000;
/** ≈ 200 µs, KVM's default halt_poll_ns_max; a wait longer than this is idle, not a round trip. */
export const DEFAULT_MAX_SPIN_ITERATIONS = 20_000;
/** Nominal cost of one spin load, to compare a wait's length with the budget's. */
export const NOMINAL_NS_PER_SPIN = 10;
export const BLOCKING_WAIT: WaitPolicy = Object.freeze({ spinIterations: 0 });

function envInt(name: string): number | undefined {
  const env = typeof process !== 'undefined' ? process.env[name] : undefined;
  if (env === undefined) return undefined;
  const n = Number(env);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** TSVISOR_SPIN (floor, default 2000) and TSVISOR_SPIN_MAX (adaptive ceiling, default 20000; 0 = fixed spin). */
export function defaultWaitPolicy(): WaitPolicy {
  return { spinIterations: envInt('TSVISOR_SPIN') ?? DEFAULT_SPIN_ITERATIONS, maxSpinIterations: envInt('TSVISOR_SPIN_MAX') ?? DEFAULT_MAX_SPIN_ITERATIONS };
}

/** Counts what waiting cost: how often the spin sufficed and how often the thread slept. */
export class WaitCounters {
  spinHits = 0;
  sleeps = 0;
  timeouts = 0;
  /** Time inside Atomics.wait, wake-up latency included (µs). */
  sleptUs = 0;
}

/**
 * Sleeps in a row that followed a spin longer than the floor (the extra spin bought nothing)
 * before the budget drops to the floor, and waits it then stays there. KVM's rule alone grows
 * without end when the partner can run only once this thread sleeps (no free core: each sleep
 * is followed by a quick wake-up because the spin held the core); this bounds that cost to a
 * few wasted spins per BACKOFF_WAITS waits. A ramp from the floor to the ceiling wastes 3.
 */
const WASTED_SPINS_BEFORE_BACKOFF = 4;
const BACKOFF_WAITS = 64;

/** One waiter's adaptive spin budget (KVM keeps one halt_poll_ns per vCPU). */
export class SpinBudget {
  iterations: number;
  readonly min: number;
  readonly max: number;
  grows = 0;
  shrinks = 0;
  backoffs = 0;
  private wasted = 0;
  private hold = 0;

  constructor(policy: WaitPolicy) {
    this.min = policy.spinIterations;
    this.max = Math.max(this.min, policy.maxSpinIterations ?? 0);
    this.iterations = this.min;
  }

  get adaptive(): boolean {
    return this.max > this.min;
  }

  /** The spin caught the partner: whatever it cost was worth it. */
  hit(): void {
    this.wasted = 0;
    if (this.hold > 0) this.hold--;
  }

  /** After a sleep: `waitedNs` is the whole wait (spin + sleep), `timedOut` when no partner came. */
  update(waitedNs: number, timedOut: boolean): void {
    const maxNs = this.max * NOMINAL_NS_PER_SPIN;
    if (this.hold > 0) {
      this.hold--;
      return;
    }
    if (this.iterations > this.min && ++this.wasted >= WASTED_SPINS_BEFORE_BACKOFF) {
      this.wasted = 0;
      this.hold = BACKOFF_WAITS;
      this.iterations = this.min;
      this.backoffs++;
      return;
    }
    if (timedOut || waitedNs > maxNs) {
      if (this.iterations > this.min) {
        this.iterations = Math.max(this.min, this.iterations >> 1);
        this.shrinks++;
      }
    } else if (this.iterations < this.max) {
      // KVM grows from halt_poll_ns_grow_start (10 µs) by ×2: the floor here is already ~20 µs.
      this.iterations = Math.min(this.max, Math.max(this.iterations * 2, 1000));
      this.grows++;
    }
  }
}

/**
 * Waits until `i32[index]` differs from `expected` or `timeoutMs` passes.
 * Returns the word's new value, or `expected` on timeout. With `budget` (an adaptive policy),
 * the spin length is the budget's and the wait's outcome adjusts it.
 */
export function waitForChange(
  i32: Int32Array,
  index: number,
  expected: number,
  policy: WaitPolicy,
  counters?: WaitCounters,
  timeoutMs = Infinity,
  budget?: SpinBudget,
): number {
  const spin = budget ? budget.iterations : policy.spinIterations;
  for (let i = spin; i > 0; i--) {
    const v = Atomics.load(i32, index);
    if (v !== expected) {
      if (counters) counters.spinHits++;
      budget?.hit();
      return v;
    }
  }
  if (counters) counters.sleeps++;
  // Clock reads only around a sleep, which costs a wake-up anyway: the spin path stays cheap.
  const timed = counters !== undefined || budget !== undefined;
  const t0 = timed ? performance.now() : 0;
  const r = Atomics.wait(i32, index, expected, timeoutMs);
  if (timed) {
    const sleptUs = (performance.now() - t0) * 1000;
    if (counters) {
      counters.sleptUs += sleptUs;
      if (r === 'timed-out') counters.timeouts++;
    }
    budget?.update(spin * NOMINAL_NS_PER_SPIN + sleptUs * 1000, r === 'timed-out');
  }
  return Atomics.load(i32, index);
}
