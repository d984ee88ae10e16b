/**
 * The hypervisor's host part for CPU (docs/scheduling.md): once per period it takes the demand
 * every running VM's worker reported, decides each VM's share with allocatePeriod (reserves
 * first, limits as caps, the rest by weight), and sends each worker its budget per VP. It never
 * waits for a worker: a worker that does not report keeps its last demand, one that does not read
 * is skipped (its socket backlog is bounded), so one stuck worker delays nobody. It also keeps
 * each VM's CPU use for metering (LoadPercentage, `vm list`, Measure-VM) and admission control.
 */
import { availableParallelism } from 'node:os';
import type { CpuDemandRecord } from '../ipc/bulk-codec.ts';
import { DEFAULT_PERIOD_US } from '../../hypervisor/scheduler/cpu-budget-block.ts';
import { admissionRefusal, allocatePeriod, type VmCpuSettings } from '../../hypervisor/scheduler/share-allocation.ts';
import type { VmwpConnection } from './vmwp-connection.ts';
import type { VmDefinition } from './vm-definition.ts';
import type { Logger } from '../host/log.ts';

export interface HostCpuOptions {
  /** CPUs given to guests (default: all the host's). */
  hostCpus?: number;
  periodUs?: number;
}

/** A VM's CPU use as metering reports it. */
export interface CpuLoad {
  /** Percent of the VM's processors used over the last LOAD_WINDOW_MS (Msvm_Processor LoadPercentage). */
  percent: number;
  /** The same per VP. */
  vpPercent: number[];
}

export interface CpuMeasurement {
  /** Average percent of the VM's processors since metering was reset (or the VM started). */
  averagePercent: number;
  /** CPU time used since then, ms. */
  usedMs: number;
  /** How long that is, ms. */
  sinceMs: number;
}

export interface SchedulerStats {
  periods: number;
  /** Time one period's decision and sends took in VMMS, µs. */
  meanPeriodUs: number;
  maxPeriodUs: number;
  grantsSent: number;
  /** Grants not sent because the worker had not read the previous ones. */
  grantsSkipped: number;
}

const LOAD_WINDOW_MS = 1000;
/** A grant that did not change is sent again this often (the worker falls back after STALE_PERIODS without one). */
export const GRANT_KEEPALIVE_MS = 2000;

/** A definition's processor settings (percent of its processors) as the allocation takes them (fractions). */
export function cpuSettingsOf(d: Pick<VmDefinition, 'cpuReserve' | 'cpuMaximum' | 'cpuWeight'>): VmCpuSettings {
  return { reserve: (d.cpuReserve ?? 0) / 100, limit: (d.cpuMaximum ?? 100) / 100, weight: d.cpuWeight ?? 100 };
}

interface ScheduledVm {
  id: string;
  vpCount: number;
  settings: VmCpuSettings;
  conn: VmwpConnection | null;
  demand: CpuDemandRecord | null;
  /** When the last report arrived (ms): metering divides by report times, so a late report does not skew it. */
  reportAt: number;
  seq: number;
  /** The last grant sent (budget per VP, cap) and when: an unchanged grant is not sent every period. */
  sent: { perVpUs: number; capUs: number; at: number } | null;
  /** (time ms, per-VP used µs) samples over the last LOAD_WINDOW_MS and a little more. */
  history: { at: number; used: number[] }[];
  /** Metering base: when it was reset and the use then. */
  base: { at: number; usedUs: number };
  onDemand?: (d: CpuDemandRecord) => void;
}

export class HostCpuScheduler {
  readonly hostCpus: number;
  readonly periodUs: number;
  private readonly vms = new Map<string, ScheduledVm>();
  private readonly timer: NodeJS.Timeout;
  private periods = 0;
  private totalUs = 0;
  private maxUs = 0;
  private sent = 0;
  private skipped = 0;

  constructor(opts: HostCpuOptions, _log: Logger) {
    this.hostCpus = opts.hostCpus ?? availableParallelism();
    this.periodUs = opts.periodUs ?? DEFAULT_PERIOD_US;
    if (!(this.hostCpus > 0 && this.hostCpus <= 4096)) throw new RangeError(`host CPUs for guests must be above 0, not ${this.hostCpus}`);
    if (!(this.periodUs >= 1000 && this.periodUs <= 1_000_000)) throw new RangeError(`a scheduling period of ${this.periodUs} µs is outside 1 ms..1 s`);
    this.timer = setInterval(() => this.tick(), this.periodUs / 1000);
    this.timer.unref();
  }

  /**
   * Admission control at start: null and the VM counted from now on, or why it cannot start
   * (its reserve does not fit beside the running VMs' reserves).
   */
  admit(id: string, vpCount: number, settings: VmCpuSettings): string | null {
    const running = [...this.vms.values()].filter((v) => v.id !== id).map((v) => ({ ...v.settings, vpCount: v.vpCount }));
    const refusal = admissionRefusal(running, { ...settings, vpCount }, this.hostCpus);
    if (refusal) return refusal;
    this.entry(id, vpCount, settings);
    return null;
  }

  /** The VM's worker is connected (after a start, or found running when VMMS starts). */
  attach(id: string, vpCount: number, settings: VmCpuSettings, conn: VmwpConnection): void {
    const v = this.entry(id, vpCount, settings);
    if (v.conn && v.onDemand) v.conn.off('cpu-demand', v.onDemand);
    v.conn = conn;
    v.onDemand = (d: CpuDemandRecord) => this.onDemand(v, d);
    conn.on('cpu-demand', v.onDemand);
  }

  private entry(id: string, vpCount: number, settings: VmCpuSettings): ScheduledVm {
    let v = this.vms.get(id);
    if (!v) {
      v = { id, vpCount, settings, conn: null, demand: null, reportAt: Date.now(), seq: 0, sent: null, history: [], base: { at: Date.now(), usedUs: 0 } };
      this.vms.set(id, v);
    }
    v.vpCount = vpCount;
    v.settings = settings;
    return v;
  }

  /** The VM stopped (or its start failed): it no longer counts. */
  detach(id: string): void {
    const v = this.vms.get(id);
    if (v?.conn && v.onDemand) v.conn.off('cpu-demand', v.onDemand);
    this.vms.delete(id);
  }

  /**
   * New settings for a running VM, applied at the next period. A higher reserve is admitted like
   * a start; returns why not, or null.
   */
  changeSettings(id: string, settings: VmCpuSettings): string | null {
    const v = this.vms.get(id);
    if (!v) return null;
    if (settings.reserve > v.settings.reserve) {
      const running = [...this.vms.values()].filter((o) => o !== v).map((o) => ({ ...o.settings, vpCount: o.vpCount }));
      const refusal = admissionRefusal(running, { ...settings, vpCount: v.vpCount }, this.hostCpus);
      if (refusal) return refusal;
    }
    v.settings = settings;
    return null;
  }

  private onDemand(v: ScheduledVm, d: CpuDemandRecord): void {
    // The worker is the host's own process, but its numbers still get bounds before use.
    if (
      !(
        Number.isInteger(d.runnableVps) &&
        Array.isArray(d.vpUsedUs) &&
        d.vpUsedUs.length === v.vpCount &&
        d.vpUsedUs.every((u) => Number.isFinite(u) && u >= 0)
      )
    )
      return;
    const now = Date.now();
    // Metering starts at the first report (after a VMMS restart too, whatever the VM used before).
    if (v.demand === null) v.base = { at: now, usedUs: d.vpUsedUs.reduce((a, b) => a + b, 0) };
    v.demand = { ...d, runnableVps: Math.min(v.vpCount, Math.max(0, d.runnableVps)) };
    v.reportAt = now;
    v.history.push({ at: now, used: d.vpUsedUs.slice() });
    while (v.history.length > 2 && v.history[1].at <= now - LOAD_WINDOW_MS) v.history.shift();
  }

  /** One period: decide every VM's share and send each worker its budget. */
  tick(): void {
    const t0 = performance.now();
    const vms = [...this.vms.values()].filter((v) => v.conn && !v.conn.isClosed);
    if (vms.length > 0) {
      const demands = vms.map((v) => ({ id: v.id, vpCount: v.vpCount, runnableVps: v.demand ? v.demand.runnableVps : v.vpCount, ...v.settings }));
      const alloc = allocatePeriod(demands, this.hostCpus, this.periodUs);
      const capacity = this.hostCpus * this.periodUs;
      const wanted = demands.reduce((n, d) => n + Math.min(d.runnableVps, d.limit * d.vpCount) * this.periodUs, 0);
      const contended = wanted > capacity;
      vms.forEach((v, i) => {
        const d = demands[i];
        const capUs = v.settings.limit < 1 ? v.settings.limit * this.periodUs : -1;
        // Uncontended and uncapped: no budget at all, so the VPs never read their clocks. A VM
        // that wants nothing now may run up to its cap when it wakes; its next report counts it.
        let perVpUs: number;
        if (d.runnableVps === 0) perVpUs = this.wakeBudgetUs(d, demands, wanted, capUs);
        else if (!contended && capUs < 0) perVpUs = -1;
        else perVpUs = Math.min(this.periodUs, Math.round(alloc[i].perVpUs / 10) * 10);
        const now = Date.now();
        if (v.sent && v.sent.perVpUs === perVpUs && v.sent.capUs === capUs && now - v.sent.at < GRANT_KEEPALIVE_MS) return;
        if (v.conn!.sendBulk({ kind: 'cpu-budget', seq: ++v.seq, periodUs: this.periodUs, perVpUs, capUs })) {
          this.sent++;
          v.sent = { perVpUs, capUs, at: now };
        } else this.skipped++;
      });
    }
    const us = (performance.now() - t0) * 1000;
    this.periods++;
    this.totalUs += us;
    this.maxUs = Math.max(this.maxUs, us);
  }

  /**
   * The budget of a VM that wants nothing now, for when it wakes (an interrupt) before its worker
   * reports again: all it may use if one more VP fits beside the others' demand, else the share
   * its weight would get against the runnable VMs (never above its cap).
   */
  private wakeBudgetUs(
    d: { weight: number; limit: number },
    demands: { runnableVps: number; weight: number; limit: number; vpCount: number }[],
    wanted: number,
    capUs: number,
  ): number {
    if (wanted + Math.min(1, d.limit) * this.periodUs <= this.hostCpus * this.periodUs) return capUs;
    const weights = demands.reduce((n, o) => n + (o.runnableVps > 0 ? o.weight : 0), 0);
    const share = Math.min(this.periodUs, (this.hostCpus * this.periodUs * d.weight) / (d.weight + weights));
    return Math.round((capUs < 0 ? share : Math.min(capUs, share)) / 10) * 10;
  }

  /** CPU use over the last second (null: not running or no report yet). */
  load(id: string): CpuLoad | null {
    const v = this.vms.get(id);
    if (!v || v.history.length < 2) return null;
    const a = v.history[0];
    const b = v.history[v.history.length - 1];
    const wallUs = (b.at - a.at) * 1000;
    if (wallUs <= 0) return null;
    const vpPercent = b.used.map((u, i) => Math.max(0, Math.min(100, ((u - a.used[i]) / wallUs) * 100)));
    return { percent: vpPercent.reduce((s, x) => s + x, 0) / v.vpCount, vpPercent };
  }

  private usedUs(v: ScheduledVm): number {
    return v.demand ? v.demand.vpUsedUs.reduce((s, x) => s + x, 0) : 0;
  }

  /** Measure-VM: average CPU since metering was reset; `reset` starts a new interval afterwards. */
  measure(id: string, reset = false): CpuMeasurement | null {
    const v = this.vms.get(id);
    if (!v) return null;
    const now = v.reportAt;
    const used = this.usedUs(v);
    const sinceMs = now - v.base.at;
    const usedMs = (used - v.base.usedUs) / 1000;
    const out = { averagePercent: sinceMs > 0 ? Math.min(100, (usedMs / sinceMs / v.vpCount) * 100) : 0, usedMs, sinceMs };
    if (reset) v.base = { at: now, usedUs: used };
    return out;
  }

  /** The budget last sent to a VM's worker (µs per VP per period, -1: unlimited) and its cap (-1: none). */
  grant(id: string): { perVpUs: number; capUs: number; periodUs: number } | null {
    const sent = this.vms.get(id)?.sent;
    return sent ? { perVpUs: sent.perVpUs, capUs: sent.capUs, periodUs: this.periodUs } : null;
  }

  settings(id: string): VmCpuSettings | null {
    return this.vms.get(id)?.settings ?? null;
  }

  stats(): SchedulerStats {
    return {
      periods: this.periods,
      meanPeriodUs: this.periods ? this.totalUs / this.periods : 0,
      maxPeriodUs: this.maxUs,
      grantsSent: this.sent,
      grantsSkipped: this.skipped,
    };
  }

  close(): void {
    clearInterval(this.timer);
    for (const id of [...this.vms.keys()]) this.detach(id);
  }
}
