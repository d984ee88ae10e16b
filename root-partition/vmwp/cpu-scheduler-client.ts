/**
 * The worker's side of the host CPU scheduler (docs/scheduling.md): once per period it reports
 * the VM's demand and CPU use to VMMS, and it applies the budgets VMMS grants to the VP threads'
 * budget words. It never waits for VMMS: a grant applies when it arrives, and when grants stop
 * coming (VMMS gone, restarting, or too busy) for STALE_PERIODS periods the VM falls back to its
 * own Maximum — it keeps its cap but is never starved by a scheduler that is not there.
 */
import type { CpuBudgetRecord, CpuDemandRecord } from '../ipc/bulk-codec.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import { DEFAULT_PERIOD_US } from '../../hypervisor/scheduler/cpu-budget-block.ts';
import { PartitionCpuMeter } from '../../hypervisor/scheduler/partition-cpu-meter.ts';
import { VpRunState } from '../../hypervisor/partition-control.ts';
import type { Logger } from '../host/log.ts';

/**
 * Periods without a grant after which the worker stops waiting for VMMS's budgets. VMMS sends a
 * grant when it changes and at least every GRANT_KEEPALIVE_MS (host-cpu-scheduler.ts).
 */
export const STALE_PERIODS = 100;
/**
 * An idle VM (no runnable VP, no CPU used) reports this seldom, so that its worker's main thread
 * is not woken 20 times a second for nothing (test/vmms/idle-worker.test.ts). It is not held back
 * meanwhile: VMMS gives an idle VM a budget for when it wakes.
 */
export const IDLE_REPORT_MS = 2000;
const QUIET_REPORTS = 4;
/** A VP that used this share of a report interval counts as runnable even if it is halted now. */
const BUSY_SHARE = 0.25;

export class CpuSchedulerClient {
  private timer: NodeJS.Timeout | null = null;
  private periodUs = DEFAULT_PERIOD_US;
  private meter: { p: Partition; m: PartitionCpuMeter; lastUs: number[]; lastParks: number } | null = null;
  private lastGrant: CpuBudgetRecord | null = null;
  private lastGrantAt = 0;
  private fellBack = false;
  private lastTick = performance.now();
  /** Reports in a row with nothing runnable and nothing used. */
  private quiet = 0;

  constructor(
    private readonly partition: () => Partition | null,
    private readonly send: (r: CpuDemandRecord) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(
      () => {
        this.tick();
        this.schedule();
      },
      this.quiet >= QUIET_REPORTS ? IDLE_REPORT_MS : this.periodUs / 1000,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A grant from VMMS; malformed ones are refused (logged), the previous one stays in force. */
  onGrant(g: CpuBudgetRecord): void {
    if (
      !(Number.isFinite(g.seq) && g.periodUs >= 1000 && g.periodUs <= 1_000_000 && (g.perVpUs === -1 || g.perVpUs >= 0) && (g.capUs === -1 || g.capUs >= 0))
    ) {
      this.log.warn(`refused a malformed CPU budget from VMMS: ${JSON.stringify(g)}`);
      return;
    }
    this.lastGrant = g;
    this.lastGrantAt = performance.now();
    this.periodUs = g.periodUs;
    if (this.fellBack) this.log.info('CPU budgets from VMMS again');
    this.fellBack = false;
    this.apply(g.perVpUs);
  }

  private apply(perVpUs: number): void {
    const p = this.partition();
    if (!p) return;
    p.cpu.periodUs = this.periodUs;
    p.cpu.setAllBudgetsUs(perVpUs < 0 ? Infinity : perVpUs);
  }

  /** One period: report demand and use; fall back to the VM's own cap when VMMS went quiet. */
  tick(): void {
    const p = this.partition();
    const now = performance.now();
    const intervalUs = (now - this.lastTick) * 1000;
    this.lastTick = now;
    if (p?.state !== 'active') return;
    if (this.meter?.p !== p) {
      this.meter = { p, m: new PartitionCpuMeter(p.cpu), lastUs: new Array(p.vpCount).fill(0), lastParks: 0 };
      if (this.lastGrant) this.apply(this.lastGrant.perVpUs); // a new partition (reset) gets the budgets in force
    }
    const used = this.meter.m.sampleUs();
    let parks = 0;
    let runnable = 0;
    let halted = 0;
    for (let vp = 0; vp < p.vpCount; vp++) {
      const vpParks = p.cpu.parks(vp);
      parks += vpParks;
      const busy = used[vp] - this.meter.lastUs[vp] > BUSY_SHARE * intervalUs;
      const state = p.runState(vp);
      if (state === VpRunState.Halted) halted++;
      if (state !== VpRunState.Paused && (state === VpRunState.Running || busy)) runnable++;
    }
    if (parks > this.meter.lastParks && runnable === 0) runnable = 1;
    const usedAny = used.some((u, vp) => u - this.meter!.lastUs[vp]! > 0.01 * intervalUs);
    // Quiet means halted, not merely not started yet: a booting VM reports every period.
    this.quiet = runnable === 0 && halted > 0 && !usedAny ? this.quiet + 1 : 0;
    this.meter.lastUs = used;
    this.meter.lastParks = parks;
    this.send({ kind: 'cpu-demand', runnableVps: runnable, vpUsedUs: used, parks, grantSeq: this.lastGrant?.seq ?? 0 });
    if (this.lastGrant && !this.fellBack && now - this.lastGrantAt > (STALE_PERIODS * this.periodUs) / 1000) {
      this.fellBack = true;
      this.log.warn(`no CPU budget from VMMS for ${STALE_PERIODS} periods: the VM runs on its own Maximum until VMMS grants again`);
      this.apply(this.lastGrant.capUs);
    }
  }

  /** CPU time per VP since the partition was created (µs), for counters. */
  usedUs(): number[] {
    return this.meter?.m.sampleUs() ?? [];
  }
}
