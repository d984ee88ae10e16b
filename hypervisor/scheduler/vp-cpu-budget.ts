/**
 * A VP's side of the scheduler: at each preemption exit the VP checks what it has used of this
 * period's budget and, when it is spent, parks until the next period — or until the partition
 * asks it to pause or stop. Runs on the VP thread; one instance per VP.
 *
 * Charging is by the thread's CPU time as the kernel counts it (thread-cpu-clock.ts), read
 * sparingly: once when a period begins and again only when the last reading plus the wall time
 * since says the budget could be spent (wall time never falls short of CPU time, so the VP never
 * runs past its budget by more than one exit interval). A VP on a free core reads the clock about
 * twice per period; one that shares its core with others more often, each reading halving what
 * is left to check (measured: ~5–10 readings per period at load average 10 on 2 cores, ~30 µs
 * each). Extrapolating at the share of the wall clock the thread got so far was tried and
 * dropped: the kernel hands out CPU in slices of milliseconds, so a VP descheduled early in a
 * period looked slow and then overshot its budget several times over. Overshoot (the CPU used
 * past the budget before the next preemption exit, ~50–100 µs) is carried into the next period
 * as debt, so the long-run share stays exact. Periods are the VP's own: one starts at the first
 * preemption exit after the previous one ended, so a parked VP never waits on another thread
 * to refill its budget (a worker or VMMS that stops answering cannot starve it).
 *
 * A halted VP spends nothing: it is not at a preemption exit, and its thread sleeps in the halt.
 */
import type { CpuBudgetBlock } from './cpu-budget-block.ts';
import { ThreadCpuClock } from './thread-cpu-clock.ts';

/** Left of a budget that is not worth running for (below one preemption interval). */
const SLACK_US = 50;

export class VpCpuBudget {
  private readonly clock = new ThreadCpuClock();
  private periodEndMs = 0;
  /** CPU time at the start of this period, and at the last reading (ns), with the wall time of that reading (ms). */
  private baseNs = 0;
  private lastNs = 0;
  private lastAtMs = 0;
  /** What this period allows: the budget less the debt carried over (µs). */
  private allowUs = Infinity;

  constructor(
    private readonly block: CpuBudgetBlock,
    private readonly vp: number,
  ) {
    block.setTid(vp, this.clock.tid);
  }

  /**
   * At a preemption exit. Returns at once while the budget lasts (one clock read of ~30 ns for
   * performance.now), else parks: `wait` sleeps on the VP's wake word for at most the given
   * milliseconds and returns true if the VP must leave the park (pause, stop) before the period ends.
   */
  check(wait: (ms: number) => boolean): void {
    const budget = this.block.budgetUs(this.vp);
    if (budget === Infinity) {
      this.periodEndMs = 0;
      return;
    }
    let now = performance.now();
    if (now >= this.periodEndMs) this.beginPeriod(now, budget);
    if ((this.lastNs - this.baseNs) / 1000 + (now - this.lastAtMs) * 1000 < this.allowUs - SLACK_US) return;
    this.read(now);
    if ((this.lastNs - this.baseNs) / 1000 < this.allowUs - SLACK_US) return;
    // Spent: park until the period ends.
    const t0 = now;
    this.block.setParked(this.vp, true);
    try {
      while (now < this.periodEndMs) {
        if (wait(this.periodEndMs - now)) break;
        now = performance.now();
      }
    } finally {
      this.block.setParked(this.vp, false);
      this.block.addPark(this.vp, (performance.now() - t0) * 1000);
      this.block.setCpuReads(this.vp, this.clock.reads);
    }
  }

  private beginPeriod(now: number, budget: number): void {
    const periodMs = this.block.periodUs / 1000;
    const prevUsed = this.periodEndMs === 0 ? 0 : (this.read(now), (this.lastNs - this.baseNs) / 1000);
    // A VP that ran past its allowance pays it back (at most one period's worth: a VP stuck in a
    // long host call is not parked for many periods after).
    const debt = this.allowUs === Infinity ? 0 : Math.min(this.block.periodUs, Math.max(0, prevUsed - this.allowUs));
    if (this.periodEndMs === 0) this.read(now);
    this.baseNs = this.lastNs;
    this.allowUs = budget - debt;
    this.periodEndMs = now + periodMs;
  }

  private read(now: number): void {
    this.lastNs = this.clock.nowNs();
    this.lastAtMs = now;
  }

  close(): void {
    this.clock.close();
  }
}
