/**
 * Spin-then-sleep waiting on a shared Int32 word, like KVM's halt polling: a short spin catches a
 * partner that answers within microseconds on a free core (a round trip of ~0.2 µs), and the
 * futex sleep bounds the CPU burnt when it does not (a wake-up costs ~30 µs on this kind of VM;
 * reference/performance-limits.md B2). The spin budget is configurable: 0 means sleep at once.
 */
export interface WaitPolicy {
  /** Loads of the word before sleeping; ~10 ns each. 1000 ≈ 10 µs. */
  spinIterations: number;
}

export const DEFAULT_SPIN_ITERATIONS = 2000;
export const BLOCKING_WAIT: WaitPolicy = Object.freeze({ spinIterations: 0 });

export function defaultWaitPolicy(): WaitPolicy {
  const env = typeof process !== 'undefined' ? process.env.TSVISOR_SPIN : undefined;
  const n = env === undefined ? DEFAULT_SPIN_ITERATIONS : Number(env);
  return { spinIterations: Number.isInteger(n) && n >= 0 ? n : DEFAULT_SPIN_ITERATIONS };
}

/** Counts what waiting cost: how often the spin sufficed and how often the thread slept. */
export class WaitCounters {
  spinHits = 0;
  sleeps = 0;
  timeouts = 0;
}

/**
 * Waits until `i32[index]` differs from `expected` or `timeoutMs` passes.
 * Returns the word's new value, or `expected` on timeout.
 */
export function waitForChange(
  i32: Int32Array,
  index: number,
  expected: number,
  policy: WaitPolicy,
  counters?: WaitCounters,
  timeoutMs = Infinity,
): number {
  for (let i = policy.spinIterations; i > 0; i--) {
    const v = Atomics.load(i32, index);
    if (v !== expected) {
      if (counters) counters.spinHits++;
      return v;
    }
  }
  if (counters) counters.sleeps++;
  const r = Atomics.wait(i32, index, expected, timeoutMs);
  if (r === 'timed-out' && counters) counters.timeouts++;
  return Atomics.load(i32, index);
}
