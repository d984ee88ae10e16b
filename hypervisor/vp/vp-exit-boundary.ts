/**
 * The end of every exit: a pause or stop honoured, due timers fired, interrupts delivered (by
 * the host for a plain image, by the image's own code after the exit for a rewritten one), the
 * halt, the CPU budget's park, and a requested capture begun there (Asyncify unwind) or a rewind
 * finished at the exit it was captured in (vp-capture.ts, stack-capture.ts).
 */
import { waitForChange } from '../adaptive-wait.ts';
import { takeHighestVector } from '../interrupts.ts';
import { P_CAPTURE_VP, P_PAUSED_VPS, RequestedState, VP_RUN_STATE, VP_WAKE, VpCounter, VpRunState } from '../partition-control.ts';
import { GuestFault, VpStop } from './guest-fault.ts';
import { assertVector } from '../interrupts.ts';
import { CaptureRequested, type ExitResult, type VpCapture } from './vp-capture.ts';
import type { VpEntry } from './vp-events.ts';
import { VpExitHandlers } from './vp-exit-handlers.ts';

export abstract class VpExitBoundary extends VpExitHandlers {
  /** Wraps a parkable exit: during a rewind it is where the VP was captured. */
  protected resumable<F extends (...a: never[]) => unknown>(f: F): F {
    return ((...a: never[]) => (this.rewinding ? this.finishRewind() : f(...a))) as F;
  }

  /**
   * Every exit ends here: pause/stop, timers, interrupts (afterExit). A capture requested while
   * the VP is parked in it begins the unwind, remembering the value this exit returns.
   */
  protected leave<T extends number | bigint | undefined>(r: T): T {
    try {
      // Out of CPU budget: park here, where a pause or capture can still take the VP.
      this.cpu?.check(this.parkOutOfBudget);
      this.afterExit();
    } catch (e) {
      if (!(e instanceof CaptureRequested)) throw e;
      this.beginUnwind(
        r === undefined
          ? { kind: 'none' }
          : typeof r === 'bigint'
            ? { kind: 'i64', value: BigInt.asUintN(64, r).toString() }
            : { kind: 'i32', value: r as number },
      );
    }
    return r;
  }

  protected beginUnwind(result: ExitResult): void {
    // A vector taken for delivery but not yet delivered goes back into the IRR with the VP's state.
    if (this.stashedVector >= 0) assertVector(this.ctl, this.vp, this.stashedVector);
    this.stashedVector = -1;
    this.unwoundResult = result;
    this.stack!.startUnwind();
  }

  protected finishUnwind(entry: VpEntry): VpCapture {
    const { stack, globals } = this.stack!.finishUnwind();
    return { vp: this.vp, entry, stack, globals, result: this.unwoundResult!, interruptsEnabled: this.interruptsEnabled, runtime100ns: this.runtime100ns() };
  }

  protected beginRewind(c: VpCapture): void {
    if (!this.stack) throw new GuestFault('trap', 'a captured VP needs a capturable image');
    this.stack.startRewind(c.stack, c.globals);
    this.interruptsEnabled = c.interruptsEnabled;
    this.runtimeBase = c.runtime100ns;
    this.rewinding = c;
  }

  /** The rewind reached the exit the VP was captured in: hand back its result and go on from there. */
  protected finishRewind(): never {
    const c = this.rewinding!;
    this.rewinding = null;
    this.stack!.finishRewind();
    this.opts.notify({ type: 'rewound', vp: this.vp });
    const r = c.result;
    if (r.kind === 'halt') return this.halt() as never;
    return this.leave(r.kind === 'none' ? undefined : r.kind === 'i32' ? r.value : BigInt.asIntN(64, BigInt(r.value))) as never;
  }

  /** After an exit: honour pause/stop requests, fire due timers, deliver interrupts. */
  protected afterExit(): void {
    if (Atomics.load(this.i32, this.reqIdx) !== RequestedState.Run) this.checkRequests();
    if (this.timers.nextDue !== Infinity) this.timers.poll();
    if (this.interruptsEnabled && Atomics.load(this.i32, this.summaryIdx) !== 0) this.interruptPoint();
  }

  /**
   * A preemption point of a rewritten image ran out of fuel: the same work as after an exit
   * (park for pause, leave for stop, fire timers, raise the interrupt flag), then a new budget.
   */
  protected preempt(): number {
    this.count(VpCounter.PreemptionExits);
    return this.leave(this.budget);
  }

  /** Out of CPU budget: sleep on the wake word; true when a pause or stop needs the VP now. */
  protected readonly parkOutOfBudget = (ms: number): boolean => {
    const wake = (this.base + VP_WAKE) >> 2;
    const seq = Atomics.load(this.i32, wake);
    if (Atomics.load(this.i32, this.reqIdx) !== RequestedState.Run) return true;
    Atomics.wait(this.i32, wake, seq, ms);
    return Atomics.load(this.i32, this.reqIdx) !== RequestedState.Run;
  };

  /**
   * An interrupt delivery point: a plain image gets its handler called from here; a rewritten
   * one gets its flag raised, and its own code calls the handler when this exit returns.
   * Returns whether an interrupt is (being) delivered.
   */
  protected interruptPoint(): boolean {
    if (!this.rewritten) return this.deliverInterrupts();
    if (!this.interruptsEnabled) return false;
    if (this.stashedVector < 0) this.stashedVector = takeHighestVector(this.ctl, this.vp);
    if (this.stashedVector < 0) return false;
    this.irqFlag!.value = 1;
    return true;
  }

  /** The rewritten image's delivery loop asks for the next vector; -1 ends the loop. */
  protected takeInterrupt(): number {
    this.irqFlag!.value = 0;
    if (!this.interruptsEnabled) return -1;
    let v = this.stashedVector;
    this.stashedVector = -1;
    if (v < 0) v = takeHighestVector(this.ctl, this.vp);
    if (v < 0) return -1;
    this.count(VpCounter.InterruptsDelivered);
    this.interruptsEnabled = false; // an interrupt gate clears IF; iret restores it
    return v;
  }

  protected checkRequests(): void {
    const wake = (this.base + VP_WAKE) >> 2;
    for (;;) {
      const req = Atomics.load(this.i32, this.reqIdx);
      if (req === RequestedState.Stop) throw new VpStop('stopped');
      if (req !== RequestedState.Pause) return;
      if (this.stack && Atomics.load(this.i32, P_CAPTURE_VP >> 2) === this.vp) throw new CaptureRequested();
      const seq = Atomics.load(this.i32, wake);
      Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Paused);
      Atomics.add(this.i32, P_PAUSED_VPS >> 2, 1);
      Atomics.notify(this.i32, P_PAUSED_VPS >> 2);
      if (Atomics.load(this.i32, this.reqIdx) === RequestedState.Pause) Atomics.wait(this.i32, wake, seq, 100);
      Atomics.sub(this.i32, P_PAUSED_VPS >> 2, 1);
      Atomics.notify(this.i32, P_PAUSED_VPS >> 2);
      Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Running);
      this.clock.resync();
      this.timers.rearmAll();
    }
  }

  protected deliverInterrupts(): boolean {
    let delivered = false;
    while (this.interruptsEnabled) {
      const v = takeHighestVector(this.ctl, this.vp);
      if (v < 0) break;
      delivered = true;
      this.count(VpCounter.InterruptsDelivered);
      const handler = this.exports.interrupt;
      if (typeof handler !== 'function') continue; // no IDT entry: the interrupt is dropped
      this.interruptsEnabled = false; // an interrupt gate clears IF; the return restores it
      try {
        handler(v);
      } finally {
        this.interruptsEnabled = true;
      }
    }
    return delivered;
  }

  protected halt(): void {
    this.exit(VpCounter.HaltExits);
    if (!this.interruptsEnabled) throw new VpStop('halted'); // cli; hlt: nothing can wake it
    try {
      this.haltUntilInterrupt();
    } catch (e) {
      if (!(e instanceof CaptureRequested)) throw e;
      this.beginUnwind({ kind: 'halt' });
    }
  }

  protected haltUntilInterrupt(): void {
    const wake = (this.base + VP_WAKE) >> 2;
    const state = (this.base + VP_RUN_STATE) >> 2;
    for (;;) {
      if (Atomics.load(this.i32, this.reqIdx) !== RequestedState.Run) this.checkRequests();
      if (this.timers.nextDue !== Infinity) this.timers.poll();
      const seq = Atomics.load(this.i32, wake);
      if (this.interruptPoint()) return;
      const timeout = this.timers.nextDue === Infinity ? Infinity : Math.max(0, this.clock.msUntil(this.timers.nextDue));
      const t0 = performance.now();
      Atomics.store(this.i32, state, VpRunState.Halted);
      waitForChange(this.i32, wake, seq, this.policy, this.waits, timeout, this.haltBudget);
      Atomics.store(this.i32, state, VpRunState.Running);
      this.haltedMs += performance.now() - t0;
    }
  }
}
