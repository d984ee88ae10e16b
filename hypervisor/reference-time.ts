/**
 * The partition reference counter (HV_X64_MSR_TIME_REF_COUNT): 100 ns units since the partition
 * was created, monotonic, the same on every thread. Each thread maps it onto its own
 * performance.now() once, so a read costs no BigInt arithmetic; the shared epoch is an hrtime
 * value, which every thread of the process reads from one monotonic clock. While the partition
 * is paused or saved the counter is frozen (TLFS: it counts while a VP is not suspended).
 */
import { P_REF_EPOCH_NS, P_REF_FROZEN_AT, type PartitionControl } from './partition-control.ts';

export class ReferenceClock {
  private perfAtZero: number;

  constructor(private readonly ctl: PartitionControl) {
    this.perfAtZero = this.computePerfAtZero();
  }

  /** Sets the epoch so that the counter now reads `ref100ns`. */
  static start(ctl: PartitionControl, ref100ns = 0n): void {
    ctl.i64[P_REF_EPOCH_NS >> 3] = process.hrtime.bigint() - ref100ns * 100n;
    ctl.i64[P_REF_FROZEN_AT >> 3] = -1n;
  }

  static freeze(ctl: PartitionControl): void {
    const now = (process.hrtime.bigint() - ctl.i64[P_REF_EPOCH_NS >> 3]) / 100n;
    Atomics.store(ctl.i64, P_REF_FROZEN_AT >> 3, now);
  }

  static thaw(ctl: PartitionControl): void {
    const frozen = Atomics.load(ctl.i64, P_REF_FROZEN_AT >> 3);
    if (frozen < 0n) return;
    ReferenceClock.start(ctl, frozen);
  }

  /** Re-reads the epoch (after a thaw or restore moved it). */
  resync(): void {
    this.perfAtZero = this.computePerfAtZero();
  }

  /** Reference time in 100 ns units, as a double (exact below 2^53, i.e. ~28 years). */
  now(): number {
    const frozen = Atomics.load(this.ctl.i64, P_REF_FROZEN_AT >> 3);
    if (frozen >= 0n) return Number(frozen);
    return Math.floor((performance.now() - this.perfAtZero) * 10_000);
  }

  /** Milliseconds of this thread's performance clock until reference time `ref100ns`. */
  msUntil(ref100ns: number): number {
    return (ref100ns - this.now()) / 10_000;
  }

  private computePerfAtZero(): number {
    const epoch = this.ctl.i64[P_REF_EPOCH_NS >> 3];
    const sinceEpochNs = Number(process.hrtime.bigint() - epoch);
    return performance.now() - sinceEpochNs / 1e6;
  }
}
