/**
 * One virtual processor: the guest image's instance on this thread plus the hypervisor's VP part
 * (docs/guest-abi.md). Every import is an exit: CPUID, MSRs and hypercalls are handled here, on
 * the VP's own thread, as a hypervisor handles them on the CPU that trapped; port I/O, MMIO,
 * unknown MSRs and foreign CPUID leaves go to the root partition through the intercept mailbox.
 * Interrupts are delivered at exit boundaries: on halt, on sti, and on return from any exit while
 * interrupts are enabled; in a rewritten image (../rewrite/) also at preemption points, and the
 * delivery runs in Wasm: the host only raises the image's interrupt flag, and the code the
 * rewrite placed after the exit calls the handler, so no JavaScript frame sits inside the stack.
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { HvCall } from '../../abi/hv-hypercall.ts';
import { BLOCKING_WAIT, SpinBudget, waitForChange, WaitCounters, type WaitPolicy } from '../adaptive-wait.ts';
import { GuestMemory } from '../guest-memory.ts';
import { HypercallDispatcher } from '../hypercall/dispatcher.ts';
import { childCallHandlers } from '../hypercall/child-calls.ts';
import { InterceptClient, InterceptKind, InterceptResult } from '../intercept-mailbox.ts';
import { takeHighestVector } from '../interrupts.ts';
import {
  P_CAPTURE_VP,
  P_PAUSED_VPS,
  P_PRIV_HI,
  P_PRIV_LO,
  P_REQUESTED_STATE,
  PartitionControl,
  RequestedState,
  VP_COUNTERS,
  VP_PENDING_SUMMARY,
  VP_RUN_STATE,
  VP_WAKE,
  VpCounter,
  VpRunState,
  vpBase,
} from '../partition-control.ts';
import { PortTable } from '../ports.ts';
import { ReferenceClock } from '../reference-time.ts';
import { SyntheticTimers } from '../synic/stimers.ts';
import { hypervisorCpuid } from './cpuid.ts';
import { GuestFault, VpStop } from './guest-fault.ts';
import { VpRegisterFile } from './vp-register-file.ts';
import { GP, NOT_SYNTHETIC, SyntheticMsrs } from './synthetic-msrs.ts';
import { IRQ_FLAG_EXPORT, IRET_IMPORT, isRewritten, PREEMPT_IMPORT, REWRITE_MODULE, TAKE_INTERRUPT_IMPORT } from '../rewrite/rewrite-abi.ts';
import { preemptBudget } from '../rewrite/preempt-budget.ts';
import { assertVector } from '../interrupts.ts';
import { CaptureRequested, PARK_POINTS, type ExitResult, type VpCapture } from './vp-capture.ts';
import { StackCapture } from './stack-capture.ts';
import { CpuBudgetBlock } from '../scheduler/cpu-budget-block.ts';
import { VpCpuBudget } from '../scheduler/vp-cpu-budget.ts';
import type { VpEntry, VpEvent, VpExitReason } from './vp-events.ts';

export interface VpRuntimeOptions {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  vp: number;
  policy?: WaitPolicy;
  /** Fuel between two preemption points of a rewritten image (preempt-budget.ts). */
  preemptBudget?: number;
  /** Continue a captured VP: its entry is called again and Asyncify rewinds it to its exit. */
  rewind?: VpCapture;
  /** The partition's CPU budgets (../scheduler/cpu-budget-block.ts): checked at preemption exits. */
  cpuBudget?: SharedArrayBuffer;
  notify: (e: VpEvent) => void;
}

interface GuestExports {
  boot?: () => number | undefined;
  vp_start?: (rip: number) => number | undefined;
  interrupt?: (vector: number) => void;
}

export class VpRuntime {
  readonly ctl: PartitionControl;
  readonly mem: GuestMemory;
  readonly vp: number;
  private readonly base: number;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly clock: ReferenceClock;
  private readonly timers: SyntheticTimers;
  private readonly msrs: SyntheticMsrs;
  private readonly dispatcher: HypercallDispatcher;
  private readonly intercepts: InterceptClient;
  private readonly waits = new WaitCounters();
  private readonly policy: WaitPolicy;
  /** The halt's adaptive spin (KVM's per-vCPU halt_poll_ns). */
  private readonly haltBudget: SpinBudget;
  private readonly reqIdx = P_REQUESTED_STATE >> 2;
  private readonly summaryIdx: number;
  private readonly counterBase: number;
  private exports: GuestExports = {};
  private interruptsEnabled = false;
  /** The image carries preemption points and delivers interrupts from Wasm. */
  private readonly rewritten: boolean;
  private readonly budget: number;
  /** The rewritten image's interrupt flag: 1 = run the delivery loop after this exit. */
  private irqFlag: WebAssembly.Global | null = null;
  /** A vector halt took to decide to wake; the delivery loop gets it first. */
  private stashedVector = -1;
  private haltedMs = 0;
  private startedMs = performance.now();
  /** VP runtime carried over from a capture (100 ns). */
  private runtimeBase = 0;
  /** The image can unwind and rewind its stack (rewrite option `capturable`). */
  private readonly capturable: boolean;
  /** Asyncify on this VP's instance, for a capturable image. */
  private stack: StackCapture | null = null;
  /** Set while a rewind is under way: the first parkable exit called is the one captured in. */
  private rewinding: VpCapture | null = null;
  /** Set when an unwind began: what the exit returns when the VP continues. */
  private unwoundResult: ExitResult | null = null;
  private readonly startedVps = new Set<number>();
  /** The scheduler's budget for this VP: parks it at a preemption exit once the period's share is spent. */
  private readonly cpu: VpCpuBudget | null;

  constructor(private readonly opts: VpRuntimeOptions) {
    this.ctl = new PartitionControl(opts.control);
    this.mem = GuestMemory.attach(opts.memory);
    this.vp = opts.vp;
    this.base = vpBase(opts.vp);
    this.i32 = this.ctl.i32;
    this.f64 = this.ctl.f64;
    this.summaryIdx = (this.base + VP_PENDING_SUMMARY) >> 2;
    this.counterBase = (this.base + VP_COUNTERS) >> 3;
    this.policy = opts.policy ?? BLOCKING_WAIT;
    this.haltBudget = new SpinBudget(this.policy);
    this.rewritten = isRewritten(opts.module);
    this.capturable = WebAssembly.Module.exports(opts.module).some((e) => e.name === 'asyncify_start_unwind');
    this.budget = preemptBudget(opts.preemptBudget);
    this.clock = new ReferenceClock(this.ctl);
    this.timers = new SyntheticTimers(this.ctl, this.mem, this.vp, this.clock);
    this.msrs = new SyntheticMsrs(this.ctl, this.mem, this.vp, this.clock, this.timers, {
      reset: () => {
        throw new VpStop('reset');
      },
      crash: (params) => opts.notify({ type: 'crash', vp: this.vp, params: params.map((p) => '0x' + p.toString(16)) }),
      runtime100ns: () => this.runtime100ns(),
    });
    const ports = new PortTable(this.ctl, this.mem);
    const registers = new VpRegisterFile(this.ctl, this.vp, this.msrs);
    this.dispatcher = new HypercallDispatcher(
      this.mem,
      childCallHandlers({
        partitionId: this.ctl.i32[2],
        vp: this.vp,
        vpCount: this.ctl.vpCount,
        ports,
        getRegister: (name, out, at) => registers.get(name, out, at),
        setRegister: (name, value, at) => registers.set(name, value, at),
        startVp: (index, rip) => this.requestStartVp(index, rip),
      }),
      () => [this.i32[P_PRIV_LO >> 2], this.i32[P_PRIV_HI >> 2]],
    );
    this.intercepts = new InterceptClient(this.ctl, this.vp, this.policy, this.waits);
    this.cpu = opts.cpuBudget ? new VpCpuBudget(new CpuBudgetBlock(opts.cpuBudget), this.vp) : null;
  }

  private count(c: number, n = 1): void {
    this.f64[this.counterBase + c] += n;
  }

  private countCall(controlLo: number): void {
    const code = controlLo & 0xffff;
    if (code === HvCall.PostMessage) this.count(VpCounter.PostMessageCalls);
    else if (code === HvCall.SignalEvent) this.count(VpCounter.SignalEventCalls);
  }

  private exit(c: number): void {
    this.f64[this.counterBase + VpCounter.Exits]++;
    this.f64[this.counterBase + c]++;
  }

  /** The import object every guest image instantiates with (docs/guest-abi.md). */
  imports(): WebAssembly.Imports {
    const io = (size: 1 | 2 | 4) => (port: number) => {
      this.exit(VpCounter.IoExits);
      this.forward(InterceptKind.IoRead, port & 0xffff, size, 0, 0, 0, 0);
      const mask = size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
      return this.leave((this.intercepts.out(0) & mask) >>> 0);
    };
    const out = (size: 1 | 2 | 4) => (port: number, value: number) => {
      this.exit(VpCounter.IoExits);
      this.forward(InterceptKind.IoWrite, port & 0xffff, size, value & (size === 4 ? -1 : (1 << (size * 8)) - 1), 0, 0, 0);
      this.leave(undefined);
    };
    const ins = (size: 1 | 2 | 4, kind: number) => (port: number, gpa: number, count: number) => {
      this.exit(VpCounter.StringIoExits);
      count >>>= 0;
      gpa >>>= 0;
      if (!this.mem.contains(gpa, count * size))
        throw new GuestFault('memory', `string I/O buffer 0x${gpa.toString(16)}+${count * size} is outside guest memory`);
      this.count(VpCounter.StringIoBytes, count * size);
      this.forward(kind as 3 | 4, port & 0xffff, size, 0, 0, gpa, count);
      return this.leave(count);
    };
    const imports: WebAssembly.Imports = {
      env: { memory: this.opts.memory },
      hv: {
        vp_index: new WebAssembly.Global({ value: 'i32', mutable: false }, this.vp),
        cpuid: (leaf: number, subleaf: number, outGpa: number) => this.cpuid(leaf >>> 0, subleaf >>> 0, outGpa >>> 0),
        rdmsr: (msr: number) => this.rdmsr(msr >>> 0),
        wrmsr: (msr: number, value: bigint) => this.wrmsr(msr >>> 0, value),
        hypercall: (lo: number, hi: number, inGpa: number, outGpa: number) => {
          this.exit(VpCounter.HypercallExits);
          this.countCall(lo);
          this.requireHypercallPage();
          return this.leave(this.dispatcher.call(lo, hi, inGpa, outGpa));
        },
        hypercall_fast: (lo: number, hi: number, a: number, b: number, c: number, d: number) => {
          this.exit(VpCounter.HypercallExits);
          this.countCall(lo);
          this.requireHypercallPage();
          return this.leave(this.dispatcher.callFast(lo, hi, a, b, c, d));
        },
        inb: io(1),
        inw: io(2),
        inl: io(4),
        outb: out(1),
        outw: out(2),
        outl: out(4),
        insb: ins(1, InterceptKind.IoReadString),
        insw: ins(2, InterceptKind.IoReadString),
        insl: ins(4, InterceptKind.IoReadString),
        outsb: ins(1, InterceptKind.IoWriteString),
        outsw: ins(2, InterceptKind.IoWriteString),
        outsl: ins(4, InterceptKind.IoWriteString),
        mmio_read: (gpa: number, size: number) => this.mmio(true, gpa >>> 0, size, 0),
        mmio_write: (gpa: number, size: number, value: number) => {
          this.mmio(false, gpa >>> 0, size, value);
        },
        halt: () => this.halt(),
        sti: () => {
          this.interruptsEnabled = true;
          this.interruptPoint();
        },
        cli: () => {
          this.interruptsEnabled = false;
        },
        panic: (m: number, mn: number, f: number, fn: number, line: number, col: number) => {
          throw new GuestFault('panic', `guest panic: ${this.utf16(m, mn)} at ${this.utf16(f, fn)}:${line}:${col}`);
        },
      },
    };
    if (this.rewritten) {
      imports[REWRITE_MODULE] = {
        [PREEMPT_IMPORT]: () => this.preempt(),
        [TAKE_INTERRUPT_IMPORT]: () => this.takeInterrupt(),
        [IRET_IMPORT]: () => {
          this.interruptsEnabled = true;
        },
      };
    }
    if (this.capturable) {
      // A rewind re-enters the exit the VP was captured in: it returns what it had computed.
      const hv = imports.hv as Record<string, unknown>;
      for (const name of PARK_POINTS) hv[name] = this.resumable(hv[name] as (...a: never[]) => unknown);
      const t = imports[REWRITE_MODULE] as Record<string, unknown>;
      t[PREEMPT_IMPORT] = this.resumable(t[PREEMPT_IMPORT] as () => number);
    }
    return imports;
  }

  private instantiated = false;

  /**
   * Instantiates the image (once): before run() when the thread is started ahead of the state it
   * continues from (a live migration's destination), so the switch-over does not wait for it.
   * The image's memory is imported and it has no start function: guest memory is not touched.
   */
  instantiate(): void {
    if (this.instantiated) return;
    const instance = new WebAssembly.Instance(this.opts.module, this.imports());
    this.exports = instance.exports as GuestExports;
    if (this.rewritten) this.irqFlag = instance.exports[IRQ_FLAG_EXPORT] as WebAssembly.Global;
    if (this.capturable) this.stack = new StackCapture(this.mem, instance);
    this.instantiated = true;
  }

  /**
   * Instantiates the image and runs the entry until the guest returns, faults, is stopped, or is
   * captured. With `rewind` the entry is called again and Asyncify rewinds the captured stack.
   */
  run(entry: VpEntry, rewind: VpCapture | undefined = this.opts.rewind): VpExitReason {
    Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Running);
    this.startedMs = performance.now();
    try {
      this.instantiate();
      const name = entry.kind === 'boot' ? 'boot' : 'vp_start';
      const fn = this.exports[name];
      if (typeof fn !== 'function') throw new GuestFault('ud', `guest image has no ${name} export`);
      this.opts.notify({ type: 'entered', vp: this.vp });
      if (rewind) this.beginRewind(rewind);
      const value = entry.kind === 'ap' ? (fn as (r: number) => number)(entry.rip) : (fn as () => number)();
      if (this.unwoundResult) return { reason: 'captured', capture: this.finishUnwind(entry) };
      if (this.rewinding) throw new GuestFault('trap', 'the captured stack did not lead back to the exit it was captured in');
      return { reason: 'returned', value: typeof value === 'number' ? value : 0 };
    } catch (e) {
      if (e instanceof VpStop) return { reason: e.reason };
      if (e instanceof GuestFault) return { reason: 'fault', kind: e.kind, message: e.message };
      if (e instanceof WebAssembly.RuntimeError) return { reason: 'fault', kind: 'trap', message: `guest trap: ${e.message}` };
      return { reason: 'fault', kind: 'host', message: e instanceof Error ? e.message : String(e) };
    } finally {
      // Whatever happened, the capture area holds the guest's bytes again.
      this.stack?.putBack();
      this.count(VpCounter.WaitSpinHits, this.waits.spinHits);
      this.count(VpCounter.WaitSleeps, this.waits.sleeps);
      this.waits.spinHits = this.waits.sleeps = 0;
      this.cpu?.close();
      Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Stopped);
      Atomics.notify(this.i32, (this.base + VP_RUN_STATE) >> 2);
    }
  }

  // ---- capture and rewind (vp-capture.ts, stack-capture.ts) -------------------------------

  /** Wraps a parkable exit: during a rewind it is where the VP was captured. */
  private resumable<F extends (...a: never[]) => unknown>(f: F): F {
    return ((...a: never[]) => (this.rewinding ? this.finishRewind() : f(...a))) as F;
  }

  /**
   * Every exit ends here: pause/stop, timers, interrupts (afterExit). A capture requested while
   * the VP is parked in it begins the unwind, remembering the value this exit returns.
   */
  private leave<T extends number | bigint | undefined>(r: T): T {
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

  private beginUnwind(result: ExitResult): void {
    // A vector taken for delivery but not yet delivered goes back into the IRR with the VP's state.
    if (this.stashedVector >= 0) assertVector(this.ctl, this.vp, this.stashedVector);
    this.stashedVector = -1;
    this.unwoundResult = result;
    this.stack!.startUnwind();
  }

  private finishUnwind(entry: VpEntry): VpCapture {
    const { stack, globals } = this.stack!.finishUnwind();
    return { vp: this.vp, entry, stack, globals, result: this.unwoundResult!, interruptsEnabled: this.interruptsEnabled, runtime100ns: this.runtime100ns() };
  }

  private beginRewind(c: VpCapture): void {
    if (!this.stack) throw new GuestFault('trap', 'a captured VP needs a capturable image');
    this.stack.startRewind(c.stack, c.globals);
    this.interruptsEnabled = c.interruptsEnabled;
    this.runtimeBase = c.runtime100ns;
    this.rewinding = c;
  }

  /** The rewind reached the exit the VP was captured in: hand back its result and go on from there. */
  private finishRewind(): never {
    const c = this.rewinding!;
    this.rewinding = null;
    this.stack!.finishRewind();
    this.opts.notify({ type: 'rewound', vp: this.vp });
    const r = c.result;
    if (r.kind === 'halt') return this.halt() as never;
    return this.leave(r.kind === 'none' ? undefined : r.kind === 'i32' ? r.value : BigInt.asIntN(64, BigInt(r.value))) as never;
  }

  /** HV_X64_MSR_VP_RUNTIME: 100 ns the VP ran, not halted (carried over a capture). */
  private runtime100ns(): number {
    return this.runtimeBase + (performance.now() - this.startedMs - this.haltedMs) * 10_000;
  }

  private utf16(ptr: number, bytes: number): string {
    if (!this.mem.contains(ptr >>> 0, bytes >>> 0) || bytes > 4096) return '<unreadable>';
    return Buffer.from(this.mem.read(ptr >>> 0, bytes >>> 0)).toString('utf16le');
  }

  private forward(
    kind: (typeof InterceptKind)[keyof typeof InterceptKind],
    port: number,
    size: number,
    lo: number,
    hi: number,
    gpa: number,
    count: number,
  ): number {
    this.count(VpCounter.InterceptsToRoot);
    const r = this.intercepts.forward(kind, port, size, lo, hi, gpa, count);
    if (r === InterceptResult.Fault) throw new GuestFault('memory', `intercept ${kind} at 0x${port.toString(16)} refused by the root partition`);
    return r;
  }

  /** After an exit: honour pause/stop requests, fire due timers, deliver interrupts. */
  private afterExit(): void {
    if (Atomics.load(this.i32, this.reqIdx) !== RequestedState.Run) this.checkRequests();
    if (this.timers.nextDue !== Infinity) this.timers.poll();
    if (this.interruptsEnabled && Atomics.load(this.i32, this.summaryIdx) !== 0) this.interruptPoint();
  }

  /**
   * A preemption point of a rewritten image ran out of fuel: the same work as after an exit
   * (park for pause, leave for stop, fire timers, raise the interrupt flag), then a new budget.
   */
  private preempt(): number {
    this.count(VpCounter.PreemptionExits);
    return this.leave(this.budget);
  }

  /** Out of CPU budget: sleep on the wake word; true when a pause or stop needs the VP now. */
  private readonly parkOutOfBudget = (ms: number): boolean => {
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
  private interruptPoint(): boolean {
    if (!this.rewritten) return this.deliverInterrupts();
    if (!this.interruptsEnabled) return false;
    if (this.stashedVector < 0) this.stashedVector = takeHighestVector(this.ctl, this.vp);
    if (this.stashedVector < 0) return false;
    this.irqFlag!.value = 1;
    return true;
  }

  /** The rewritten image's delivery loop asks for the next vector; -1 ends the loop. */
  private takeInterrupt(): number {
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

  private checkRequests(): void {
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

  private deliverInterrupts(): boolean {
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

  private halt(): void {
    this.exit(VpCounter.HaltExits);
    if (!this.interruptsEnabled) throw new VpStop('halted'); // cli; hlt: nothing can wake it
    try {
      this.haltUntilInterrupt();
    } catch (e) {
      if (!(e instanceof CaptureRequested)) throw e;
      this.beginUnwind({ kind: 'halt' });
    }
  }

  private haltUntilInterrupt(): void {
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

  private requireHypercallPage(): void {
    if (!this.msrs.hypercallEnabled()) throw new GuestFault('ud', 'hypercall before the hypercall page was enabled (#UD)');
  }

  private cpuid(leaf: number, subleaf: number, outGpa: number): void {
    this.exit(VpCounter.CpuidExits);
    if ((outGpa & 3) !== 0 || !this.mem.contains(outGpa, 16))
      throw new GuestFault('memory', `cpuid output 0x${outGpa.toString(16)} is outside guest memory or misaligned`);
    const r = hypervisorCpuid(leaf, subleaf, { privilegesLo: this.i32[P_PRIV_LO >> 2], privilegesHi: this.i32[P_PRIV_HI >> 2], vpCount: this.ctl.vpCount });
    const at = outGpa >>> 2; // unsigned: the output may lie at or above 2 GiB
    if (r) {
      for (let k = 0; k < 4; k++) this.mem.i32[at + k] = r[k] | 0;
    } else if (this.forward(InterceptKind.Cpuid, leaf, subleaf, 0, 0, 0, 0) === InterceptResult.Handled) {
      for (let k = 0; k < 4; k++) this.mem.i32[at + k] = this.intercepts.out(k);
    } else {
      this.mem.i32.fill(0, at, at + 4);
    }
    this.leave(undefined);
  }

  private rdmsr(msr: number): bigint {
    this.exit(VpCounter.MsrExits);
    let v = this.msrs.read(msr);
    if (v === NOT_SYNTHETIC) {
      if (this.forward(InterceptKind.MsrRead, msr, 8, 0, 0, 0, 0) !== InterceptResult.Handled) v = GP;
      else v = (BigInt(this.intercepts.out(1) >>> 0) << 32n) | BigInt(this.intercepts.out(0) >>> 0);
    }
    if (v === GP) throw new GuestFault('gp', `rdmsr 0x${msr.toString(16)}: #GP`);
    return this.leave(BigInt.asIntN(64, v));
  }

  private wrmsr(msr: number, value: bigint): void {
    this.exit(VpCounter.MsrExits);
    let r = this.msrs.write(msr, value);
    if (r === NOT_SYNTHETIC) {
      const u = BigInt.asUintN(64, value);
      r = this.forward(InterceptKind.MsrWrite, msr, 8, Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, 0, 0) === InterceptResult.Handled ? true : GP;
    }
    if (r === GP) throw new GuestFault('gp', `wrmsr 0x${msr.toString(16)} = 0x${BigInt.asUintN(64, value).toString(16)}: #GP`);
    this.leave(undefined);
  }

  private mmio(read: boolean, gpa: number, size: number, value: number): number {
    this.exit(VpCounter.MmioExits);
    if (size !== 1 && size !== 2 && size !== 4) throw new GuestFault('gp', `MMIO access of ${size} bytes`);
    if (this.mem.contains(gpa, size)) throw new GuestFault('memory', `MMIO access to RAM at 0x${gpa.toString(16)}`);
    const r = this.forward(read ? InterceptKind.MmioRead : InterceptKind.MmioWrite, gpa, size, value, 0, 0, 0);
    // Nothing decodes an unclaimed physical address: reads float high, writes vanish.
    const v = read ? (r === InterceptResult.Handled ? this.intercepts.out(0) : -1) >>> 0 : 0;
    return this.leave(size === 4 ? v : v & ((1 << (size * 8)) - 1));
  }

  private requestStartVp(index: number, rip: number): HvStatus {
    if (index === this.vp || this.startedVps.has(index) || this.ctl.runState(index) !== VpRunState.NotStarted) return HvStatus.InvalidVpState;
    this.startedVps.add(index);
    this.opts.notify({ type: 'start-vp', vp: this.vp, target: index, rip });
    return HvStatus.Success;
  }
}
