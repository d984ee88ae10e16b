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
  P_PAUSED_VPS, P_PRIV_HI, P_PRIV_LO, P_REQUESTED_STATE, PartitionControl, RequestedState, VP_COUNTERS, VP_PENDING_SUMMARY,
  VP_REGISTERS, VP_RUN_STATE, VP_WAKE, VpCounter, VpRunState, vpBase,
} from '../partition-control.ts';
import { PortTable } from '../ports.ts';
import { ReferenceClock } from '../reference-time.ts';
import { SyntheticTimers } from '../synic/stimers.ts';
import { hypervisorCpuid } from './cpuid.ts';
import { GuestFault, VpStop } from './guest-fault.ts';
import { registerSlot, registerToMsr, HvRegister } from './registers.ts';
import { GP, NOT_SYNTHETIC, SyntheticMsrs } from './synthetic-msrs.ts';
import { IRQ_FLAG_EXPORT, IRET_IMPORT, isRewritten, PREEMPT_IMPORT, REWRITE_MODULE, TAKE_INTERRUPT_IMPORT } from '../rewrite/rewrite-abi.ts';
import { preemptBudget } from '../rewrite/preempt-budget.ts';

export type VpEvent =
  | { type: 'start-vp'; vp: number; target: number; rip: number }
  /** The image instantiated and its entry is about to run: the VP is past what can fail at load. */
  | { type: 'entered'; vp: number }
  | { type: 'reset'; vp: number }
  | { type: 'crash'; vp: number; params: string[] };

export type VpExitReason =
  | { reason: 'returned'; value: number }
  | { reason: 'halted' | 'stopped' | 'reset' }
  | { reason: 'fault'; kind: string; message: string };

/** Where a VP enters the image: boot (VP 0), vp_start (an AP), or resume (VP 0 after a restore). */
export type VpEntry = { kind: 'boot' } | { kind: 'ap'; rip: number } | { kind: 'resume' };

export interface VpRuntimeOptions {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  vp: number;
  policy?: WaitPolicy;
  /** Fuel between two preemption points of a rewritten image (preempt-budget.ts). */
  preemptBudget?: number;
  notify: (e: VpEvent) => void;
}

interface GuestExports {
  boot?: () => number | void;
  vp_start?: (rip: number) => number | void;
  /** Re-entry after a restore: the call stack of the saved VP is gone, its state is in memory. */
  resume?: () => number | void;
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
  private readonly startedMs = performance.now();
  private readonly startedVps = new Set<number>();

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
    this.budget = preemptBudget(opts.preemptBudget);
    this.clock = new ReferenceClock(this.ctl);
    this.timers = new SyntheticTimers(this.ctl, this.mem, this.vp, this.clock);
    this.msrs = new SyntheticMsrs(this.ctl, this.mem, this.vp, this.clock, this.timers, {
      reset: () => { throw new VpStop('reset'); },
      crash: (params) => opts.notify({ type: 'crash', vp: this.vp, params: params.map((p) => '0x' + p.toString(16)) }),
      runtime100ns: () => (performance.now() - this.startedMs - this.haltedMs) * 10_000,
    });
    const ports = new PortTable(this.ctl, this.mem);
    this.dispatcher = new HypercallDispatcher(
      this.mem,
      childCallHandlers({
        partitionId: this.ctl.i32[2],
        vp: this.vp,
        vpCount: this.ctl.vpCount,
        ports,
        getRegister: (name, out, at) => this.getRegister(name, out, at),
        setRegister: (name, value, at) => this.setRegister(name, value, at),
        startVp: (index, rip) => this.requestStartVp(index, rip),
      }),
      () => [this.i32[P_PRIV_LO >> 2], this.i32[P_PRIV_HI >> 2]],
    );
    this.intercepts = new InterceptClient(this.ctl, this.vp, this.policy, this.waits);
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
      const v = (this.intercepts.out(0) & mask) >>> 0;
      this.afterExit();
      return v;
    };
    const out = (size: 1 | 2 | 4) => (port: number, value: number) => {
      this.exit(VpCounter.IoExits);
      this.forward(InterceptKind.IoWrite, port & 0xffff, size, value & (size === 4 ? -1 : (1 << (size * 8)) - 1), 0, 0, 0);
      this.afterExit();
    };
    const ins = (size: 1 | 2 | 4, kind: number) => (port: number, gpa: number, count: number) => {
      this.exit(VpCounter.StringIoExits);
      count >>>= 0;
      gpa >>>= 0;
      if (!this.mem.contains(gpa, count * size)) throw new GuestFault('memory', `string I/O buffer 0x${gpa.toString(16)}+${count * size} is outside guest memory`);
      this.count(VpCounter.StringIoBytes, count * size);
      this.forward(kind as 3 | 4, port & 0xffff, size, 0, 0, gpa, count);
      this.afterExit();
      return count;
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
          const r = this.dispatcher.call(lo, hi, inGpa, outGpa);
          this.afterExit();
          return r;
        },
        hypercall_fast: (lo: number, hi: number, a: number, b: number, c: number, d: number) => {
          this.exit(VpCounter.HypercallExits);
          this.countCall(lo);
          this.requireHypercallPage();
          const r = this.dispatcher.callFast(lo, hi, a, b, c, d);
          this.afterExit();
          return r;
        },
        inb: io(1), inw: io(2), inl: io(4),
        outb: out(1), outw: out(2), outl: out(4),
        insb: ins(1, InterceptKind.IoReadString), insw: ins(2, InterceptKind.IoReadString), insl: ins(4, InterceptKind.IoReadString),
        outsb: ins(1, InterceptKind.IoWriteString), outsw: ins(2, InterceptKind.IoWriteString), outsl: ins(4, InterceptKind.IoWriteString),
        mmio_read: (gpa: number, size: number) => this.mmio(true, gpa >>> 0, size, 0),
        mmio_write: (gpa: number, size: number, value: number) => { this.mmio(false, gpa >>> 0, size, value); },
        halt: () => this.halt(),
        sti: () => { this.interruptsEnabled = true; this.interruptPoint(); },
        cli: () => { this.interruptsEnabled = false; },
        panic: (m: number, mn: number, f: number, fn: number, line: number, col: number) => {
          throw new GuestFault('panic', `guest panic: ${this.utf16(m, mn)} at ${this.utf16(f, fn)}:${line}:${col}`);
        },
      },
    };
    if (this.rewritten) {
      imports[REWRITE_MODULE] = {
        [PREEMPT_IMPORT]: () => this.preempt(),
        [TAKE_INTERRUPT_IMPORT]: () => this.takeInterrupt(),
        [IRET_IMPORT]: () => { this.interruptsEnabled = true; },
      };
    }
    return imports;
  }

  /** Instantiates the image and runs the entry until the guest returns, faults or is stopped. */
  run(entry: VpEntry): VpExitReason {
    Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Running);
    try {
      const instance = new WebAssembly.Instance(this.opts.module, this.imports());
      this.exports = instance.exports as GuestExports;
      if (this.rewritten) this.irqFlag = instance.exports[IRQ_FLAG_EXPORT] as WebAssembly.Global;
      const name = entry.kind === 'boot' ? 'boot' : entry.kind === 'resume' ? 'resume' : 'vp_start';
      const fn = this.exports[name];
      if (typeof fn !== 'function') throw new GuestFault('ud', `guest image has no ${name} export`);
      this.opts.notify({ type: 'entered', vp: this.vp });
      const value = entry.kind === 'ap' ? (fn as (r: number) => number)(entry.rip) : (fn as () => number)();
      return { reason: 'returned', value: typeof value === 'number' ? value : 0 };
    } catch (e) {
      if (e instanceof VpStop) return { reason: e.reason };
      if (e instanceof GuestFault) return { reason: 'fault', kind: e.kind, message: e.message };
      if (e instanceof WebAssembly.RuntimeError) return { reason: 'fault', kind: 'trap', message: `guest trap: ${e.message}` };
      return { reason: 'fault', kind: 'host', message: e instanceof Error ? e.message : String(e) };
    } finally {
      this.count(VpCounter.WaitSpinHits, this.waits.spinHits);
      this.count(VpCounter.WaitSleeps, this.waits.sleeps);
      this.waits.spinHits = this.waits.sleeps = 0;
      Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Stopped);
      Atomics.notify(this.i32, (this.base + VP_RUN_STATE) >> 2);
    }
  }

  private utf16(ptr: number, bytes: number): string {
    if (!this.mem.contains(ptr >>> 0, bytes >>> 0) || bytes > 4096) return '<unreadable>';
    return Buffer.from(this.mem.read(ptr >>> 0, bytes >>> 0)).toString('utf16le');
  }

  private forward(kind: (typeof InterceptKind)[keyof typeof InterceptKind], port: number, size: number, lo: number, hi: number, gpa: number, count: number): number {
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
    this.afterExit();
    return this.budget;
  }

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
    if ((outGpa & 3) !== 0 || !this.mem.contains(outGpa, 16)) throw new GuestFault('memory', `cpuid output 0x${outGpa.toString(16)} is outside guest memory or misaligned`);
    const r = hypervisorCpuid(leaf, subleaf, { privilegesLo: this.i32[P_PRIV_LO >> 2], privilegesHi: this.i32[P_PRIV_HI >> 2], vpCount: this.ctl.vpCount });
    const at = outGpa >>> 2; // unsigned: the output may lie at or above 2 GiB
    if (r) {
      for (let k = 0; k < 4; k++) this.mem.i32[at + k] = r[k] | 0;
    } else if (this.forward(InterceptKind.Cpuid, leaf, subleaf, 0, 0, 0, 0) === InterceptResult.Handled) {
      for (let k = 0; k < 4; k++) this.mem.i32[at + k] = this.intercepts.out(k);
    } else {
      this.mem.i32.fill(0, at, at + 4);
    }
    this.afterExit();
  }

  private rdmsr(msr: number): bigint {
    this.exit(VpCounter.MsrExits);
    let v = this.msrs.read(msr);
    if (v === NOT_SYNTHETIC) {
      if (this.forward(InterceptKind.MsrRead, msr, 8, 0, 0, 0, 0) !== InterceptResult.Handled) v = GP;
      else v = (BigInt(this.intercepts.out(1) >>> 0) << 32n) | BigInt(this.intercepts.out(0) >>> 0);
    }
    if (v === GP) throw new GuestFault('gp', `rdmsr 0x${msr.toString(16)}: #GP`);
    this.afterExit();
    return BigInt.asIntN(64, v);
  }

  private wrmsr(msr: number, value: bigint): void {
    this.exit(VpCounter.MsrExits);
    let r = this.msrs.write(msr, value);
    if (r === NOT_SYNTHETIC) {
      const u = BigInt.asUintN(64, value);
      r = this.forward(InterceptKind.MsrWrite, msr, 8, Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, 0, 0) === InterceptResult.Handled ? true : GP;
    }
    if (r === GP) throw new GuestFault('gp', `wrmsr 0x${msr.toString(16)} = 0x${BigInt.asUintN(64, value).toString(16)}: #GP`);
    this.afterExit();
  }

  private mmio(read: boolean, gpa: number, size: number, value: number): number {
    this.exit(VpCounter.MmioExits);
    if (size !== 1 && size !== 2 && size !== 4) throw new GuestFault('gp', `MMIO access of ${size} bytes`);
    if (this.mem.contains(gpa, size)) throw new GuestFault('memory', `MMIO access to RAM at 0x${gpa.toString(16)}`);
    const r = this.forward(read ? InterceptKind.MmioRead : InterceptKind.MmioWrite, gpa, size, value, 0, 0, 0);
    // Nothing decodes an unclaimed physical address: reads float high, writes vanish.
    const v = read ? (r === InterceptResult.Handled ? this.intercepts.out(0) : -1) >>> 0 : 0;
    this.afterExit();
    return size === 4 ? v : v & ((1 << (size * 8)) - 1);
  }

  private requestStartVp(index: number, rip: number): HvStatus {
    if (index === this.vp || this.startedVps.has(index) || this.ctl.runState(index) !== VpRunState.NotStarted) return HvStatus.InvalidVpState;
    this.startedVps.add(index);
    this.opts.notify({ type: 'start-vp', vp: this.vp, target: index, rip });
    return HvStatus.Success;
  }

  private getRegister(name: number, out: DataView, at: number): HvStatus {
    out.setBigUint64(at, 0n, true);
    out.setBigUint64(at + 8, 0n, true);
    const msr = registerToMsr(name);
    if (msr !== null) {
      const v = this.msrs.read(msr);
      if (typeof v !== 'bigint') return HvStatus.InvalidParameter;
      out.setBigUint64(at, v, true);
      return HvStatus.Success;
    }
    if (name === HvRegister.ExplicitSuspend || name === HvRegister.InterceptSuspend) return HvStatus.Success;
    if (name === HvRegister.HypervisorVersion || name === HvRegister.PrivilegesAndFeaturesInfo) {
      const r = hypervisorCpuid(name === HvRegister.HypervisorVersion ? 0x40000002 : 0x40000003, 0, {
        privilegesLo: this.i32[P_PRIV_LO >> 2], privilegesHi: this.i32[P_PRIV_HI >> 2], vpCount: this.ctl.vpCount,
      })!;
      for (let k = 0; k < 4; k++) out.setUint32(at + 4 * k, r[k] >>> 0, true);
      return HvStatus.Success;
    }
    const slot = registerSlot(name);
    if (slot < 0) return HvStatus.InvalidParameter;
    const from = this.base + VP_REGISTERS + slot * 16;
    for (let k = 0; k < 16; k++) out.setUint8(at + k, this.ctl.u8[from + k]);
    return HvStatus.Success;
  }

  private setRegister(name: number, value: DataView, at: number): HvStatus {
    const msr = registerToMsr(name);
    if (msr !== null) return this.msrs.write(msr, value.getBigUint64(at, true)) === true ? HvStatus.Success : HvStatus.InvalidParameter;
    const slot = registerSlot(name);
    if (slot < 0) return HvStatus.InvalidParameter;
    const to = this.base + VP_REGISTERS + slot * 16;
    for (let k = 0; k < 16; k++) this.ctl.u8[to + k] = value.getUint8(at + k);
    return HvStatus.Success;
  }
}
