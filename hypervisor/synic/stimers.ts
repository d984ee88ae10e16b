/**
 * Synthetic timers (TLFS timers.md), four per VP. Evaluated on the VP's own thread at exits and
 * while it halts, so expiry is never early and arrives at the next exit boundary. Expiry posts
 * HVMSG_TIMER_EXPIRED (payload: TimerIndex u32, Reserved u32, ExpirationTime u64, DeliveryTime u64)
 * to the configured SINT, or asserts the APIC vector in direct mode.
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { HV_MESSAGE_SIZE } from '../../abi/hv-hypercall.ts';
import { HV_STIMER_AUTO_ENABLE, HV_STIMER_DIRECT, HV_STIMER_ENABLE, HV_STIMER_PERIODIC, HV_STIMER_SINT_SHIFT, HVMSG_TIMER_EXPIRED } from '../../abi/hv-msr.ts';
import type { GuestMemory } from '../guest-memory.ts';
import { assertVector } from '../interrupts.ts';
import { type PartitionControl, VP_COUNTERS, VP_STIMER_CONFIG, VP_STIMER_COUNT, VP_STIMER_DUE, VpCounter, vpBase } from '../partition-control.ts';
import type { ReferenceClock } from '../reference-time.ts';
import { postToSint } from './synic-delivery.ts';

const RSVD_MASK = 0xfff0e000n | 0xffffffff00000000n; // bits 15:13 and 63:20

export class SyntheticTimers {
  private readonly base: number;
  private readonly message = new Uint8Array(HV_MESSAGE_SIZE);
  private readonly messageView = new DataView(this.message.buffer);
  /** Earliest due time of any armed timer (100 ns), or Infinity. */
  nextDue = Infinity;

  constructor(
    private readonly ctl: PartitionControl,
    private readonly mem: GuestMemory,
    private readonly vp: number,
    private readonly clock: ReferenceClock,
  ) {
    this.base = vpBase(vp);
    this.recompute();
  }

  config(n: number): bigint {
    return this.ctl.i64[(this.base + VP_STIMER_CONFIG + 8 * n) >> 3];
  }

  count(n: number): bigint {
    return this.ctl.i64[(this.base + VP_STIMER_COUNT + 8 * n) >> 3];
  }

  /** Returns false for a write that takes #GP (reserved bits). */
  writeConfig(n: number, value: bigint): boolean {
    if ((value & RSVD_MASK) !== 0n) return false;
    let v = value;
    const sint = Number((v >> BigInt(HV_STIMER_SINT_SHIFT)) & 0xfn);
    // Enabling a message-mode timer with SINTx = 0 clears Enable (TLFS timers.md).
    if ((v & BigInt(HV_STIMER_ENABLE)) !== 0n && (v & BigInt(HV_STIMER_DIRECT)) === 0n && sint === 0) v &= ~BigInt(HV_STIMER_ENABLE);
    this.ctl.i64[(this.base + VP_STIMER_CONFIG + 8 * n) >> 3] = v;
    this.arm(n);
    return true;
  }

  writeCount(n: number, value: bigint): void {
    const ci = (this.base + VP_STIMER_CONFIG + 8 * n) >> 3;
    this.ctl.i64[(this.base + VP_STIMER_COUNT + 8 * n) >> 3] = value;
    if (value === 0n) this.ctl.i64[ci] &= ~BigInt(HV_STIMER_ENABLE);
    else if ((this.ctl.i64[ci] & BigInt(HV_STIMER_AUTO_ENABLE)) !== 0n) this.ctl.i64[ci] |= BigInt(HV_STIMER_ENABLE);
    this.arm(n);
  }

  private setDue(n: number, due: number): void {
    this.ctl.f64[(this.base + VP_STIMER_DUE + 8 * n) >> 3] = due;
    this.recompute();
  }

  private due(n: number): number {
    return this.ctl.f64[(this.base + VP_STIMER_DUE + 8 * n) >> 3];
  }

  private arm(n: number): void {
    const cfg = this.config(n),
      cnt = this.count(n);
    if ((cfg & BigInt(HV_STIMER_ENABLE)) === 0n || cnt === 0n) return this.setDue(n, -1);
    const periodic = (cfg & BigInt(HV_STIMER_PERIODIC)) !== 0n;
    this.setDue(n, periodic ? this.clock.now() + Number(cnt) : Number(cnt));
  }

  /** Re-arms after a restore moved the clock. */
  rearmAll(): void {
    for (let n = 0; n < 4; n++) if (this.due(n) >= 0) this.arm(n);
  }

  recompute(): void {
    let next = Infinity;
    for (let n = 0; n < 4; n++) {
      const d = this.due(n);
      if (d >= 0 && d < next) next = d;
    }
    this.nextDue = next;
  }

  /** Fires every timer whose time has come. Returns how many fired. */
  poll(): number {
    const now = this.clock.now();
    if (now < this.nextDue) return 0;
    let fired = 0;
    for (let n = 0; n < 4; n++) {
      const due = this.due(n);
      if (due < 0 || due > now) continue;
      if (this.expire(n, due, now)) fired++;
    }
    this.recompute();
    return fired;
  }

  private expire(n: number, due: number, now: number): boolean {
    const cfg = this.config(n);
    if ((cfg & BigInt(HV_STIMER_DIRECT)) !== 0n) {
      assertVector(this.ctl, this.vp, Number((cfg >> 4n) & 0xffn));
    } else {
      this.message.fill(0);
      this.messageView.setUint32(0, HVMSG_TIMER_EXPIRED >>> 0, true);
      this.message[4] = 24;
      this.messageView.setUint32(16, n, true);
      this.messageView.setBigUint64(24, BigInt(Math.floor(due)), true);
      this.messageView.setBigUint64(32, BigInt(Math.floor(now)), true);
      const sint = Number((cfg >> BigInt(HV_STIMER_SINT_SHIFT)) & 0xfn);
      // A full queue leaves the timer due: it is retried at the next exit, so no expiry is lost.
      if (postToSint(this.ctl, this.mem, this.vp, sint, this.message, -1) !== HvStatus.Success) return false;
    }
    this.ctl.f64[(this.base + VP_COUNTERS + 8 * VpCounter.TimerExpiries) >> 3]++;
    if ((cfg & BigInt(HV_STIMER_PERIODIC)) !== 0n) {
      const period = Number(this.count(n));
      // Missed periods are dropped rather than delivered in a burst.
      let next = due + period;
      if (next <= now) next = now + period;
      this.setDue(n, next);
    } else {
      this.ctl.i64[(this.base + VP_STIMER_CONFIG + 8 * n) >> 3] = cfg & ~BigInt(HV_STIMER_ENABLE);
      this.setDue(n, -1);
    }
    return true;
  }
}
