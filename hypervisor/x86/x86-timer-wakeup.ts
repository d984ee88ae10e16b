/**
 * When the x86 VP's synthetic timers are looked at. A WebAssembly VP polls its timers at every
 * exit and while it halts (vp-runtime.ts); v86 runs the x86 processor in slices on the VP
 * thread's event loop and sleeps there while the guest halts, so the partition keeps one host
 * timer set for the earliest due synthetic timer. It fires between v86's slices (a halted
 * processor is woken by the interrupt it raises), and is moved whenever a timer is armed,
 * fired or disarmed.
 */
import type { ReferenceClock } from '../reference-time.ts';
import type { SyntheticTimers } from '../synic/stimers.ts';

/** A due timer whose expiry could not be delivered (its SINT's slot is full) is retried this often. */
const RETRY_MS = 1;

export class TimerWakeup {
  private handle: NodeJS.Timeout | undefined;
  /** The due time (100 ns reference time) the host timer is set for, or Infinity. */
  private setFor = Infinity;
  private disposed = false;

  constructor(
    private readonly timers: SyntheticTimers,
    private readonly clock: ReferenceClock,
    /** Fires the due timers and delivers what they raised (between v86's slices). */
    private readonly fire: () => void,
  ) {}

  /** Sets the host timer for the earliest due synthetic timer (none when none is armed). */
  schedule(): void {
    const due = this.timers.nextDue;
    if (this.disposed || due === this.setFor) return;
    this.cancel();
    if (due === Infinity) return;
    this.setFor = due;
    const ms = Math.max(RETRY_MS, Math.ceil(this.clock.msUntil(due)));
    this.handle = setTimeout(() => {
      this.handle = undefined;
      this.setFor = Infinity;
      this.fire();
      this.schedule();
    }, ms);
  }

  dispose(): void {
    this.disposed = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
    this.setFor = Infinity;
  }
}
