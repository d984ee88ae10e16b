/**
 * A VP's side of the scheduler: at each preemption exit the VP checks what it has used of this
 * period's budget and, when it is spent, parks until the next period — or until the partition
 * asks it to pause or stop. Runs on the VP thread; one instance per VP.
 *
 * Charging is by the thread's CPU time as the kernel counts it (thread-cpu-clock.ts), read
 * sparingly: once when a period begins and again only when the wall time since the last reading
 * says the budget could be spent (wall time never falls short of CPU time, so it is a safe
 * trigger). A VP on a free core reads the clock about twice per period; one that shares its core
 * reads it a few more times, each reading moving the estimate closer. Overshoot (the CPU used
 * past the budget before the next preemption exit, ~50–100 µs) is carried into the next period
 * as debt, so the long-run share stays exact. Periods are the VP's own: one starts at the first
 * preemption exit after the previous one ended, so a parked VP never waits on another thread
 * to refill its budget (a worker or VMMS that stops answering cannot starve it).
 *
 * A halted VP spends nothing: it is not at a preemption exit, and its thread sleeps in the halt.
 */
import { CpuBudgetBlock } from './cpu-budget-block.ts';
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

  constructor(private readonly block: CpuBudgetBlock, private readonly vp: number) {
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
    // A VP that ran past its allowance pays it back, at most one period's budget.
    const debt = this.allowUs === Infinity ? 0 : Math.min(budget, Math.max(0, prevUsed - this.allowUs));
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
