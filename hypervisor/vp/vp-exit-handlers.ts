/**
 * What a VP is made of (its control block, memory, clock, timers, synthetic MSRs, hypercall
 * dispatcher, intercept mailbox, counters) and the exits handled on its own thread: CPUID, MSRs,
 * MMIO and port I/O sent to the root partition through the intercept mailbox, starting another VP.
 * Every exit ends in `leave` (vp-exit-boundary.ts). VpRuntime (vp-runtime.ts) builds on it.
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { HvCall } from '../../abi/hv-hypercall.ts';
import { BLOCKING_WAIT, SpinBudget, WaitCounters, type WaitPolicy } from '../adaptive-wait.ts';
import { GuestMemory } from '../guest-memory.ts';
import { HypercallDispatcher } from '../hypercall/dispatcher.ts';
import { childCallHandlers } from '../hypercall/child-calls.ts';
import { InterceptClient, InterceptKind, InterceptResult } from '../intercept-mailbox.ts';
import {
  P_PRIV_HI,
  P_PRIV_LO,
  P_REQUESTED_STATE,
  PartitionControl,
  VP_COUNTERS,
  VP_PENDING_SUMMARY,
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
import { isRewritten } from '../rewrite/rewrite-abi.ts';
import { preemptBudget } from '../rewrite/preempt-budget.ts';
import type { ExitResult, VpCapture } from './vp-capture.ts';
import type { StackCapture } from './stack-capture.ts';
import { CpuBudgetBlock } from '../scheduler/cpu-budget-block.ts';
import { VpCpuBudget } from '../scheduler/vp-cpu-budget.ts';
import type { VpEvent } from './vp-events.ts';

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

export interface GuestExports {
  boot?: () => number | undefined;
  vp_start?: (rip: number) => number | undefined;
  interrupt?: (vector: number) => void;
}

export abstract class VpExitHandlers {
  readonly ctl: PartitionControl;
  readonly mem: GuestMemory;
  readonly vp: number;
  protected readonly base: number;
  protected readonly i32: Int32Array;
  protected readonly f64: Float64Array;
  protected readonly clock: ReferenceClock;
  protected readonly timers: SyntheticTimers;
  protected readonly msrs: SyntheticMsrs;
  protected readonly dispatcher: HypercallDispatcher;
  protected readonly intercepts: InterceptClient;
  protected readonly waits = new WaitCounters();
  protected readonly policy: WaitPolicy;
  /** The halt's adaptive spin (KVM's per-vCPU halt_poll_ns). */
  protected readonly haltBudget: SpinBudget;
  protected readonly reqIdx = P_REQUESTED_STATE >> 2;
  protected readonly summaryIdx: number;
  protected readonly counterBase: number;
  protected exports: GuestExports = {};
  protected interruptsEnabled = false;
  /** The image carries preemption points and delivers interrupts from Wasm. */
  protected readonly rewritten: boolean;
  protected readonly budget: number;
  /** The rewritten image's interrupt flag: 1 = run the delivery loop after this exit. */
  protected irqFlag: WebAssembly.Global | null = null;
  /** A vector halt took to decide to wake; the delivery loop gets it first. */
  protected stashedVector = -1;
  protected haltedMs = 0;
  protected startedMs = performance.now();
  /** VP runtime carried over from a capture (100 ns). */
  protected runtimeBase = 0;
  /** The image can unwind and rewind its stack (rewrite option `capturable`). */
  protected readonly capturable: boolean;
  /** Asyncify on this VP's instance, for a capturable image. */
  protected stack: StackCapture | null = null;
  /** Set while a rewind is under way: the first parkable exit called is the one captured in. */
  protected rewinding: VpCapture | null = null;
  /** Set when an unwind began: what the exit returns when the VP continues. */
  protected unwoundResult: ExitResult | null = null;
  protected readonly startedVps = new Set<number>();
  /** The scheduler's budget for this VP: parks it at a preemption exit once the period's share is spent. */
  protected readonly cpu: VpCpuBudget | null;

  constructor(protected readonly opts: VpRuntimeOptions) {
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

  protected count(c: number, n = 1): void {
    this.f64[this.counterBase + c] += n;
  }

  protected countCall(controlLo: number): void {
    const code = controlLo & 0xffff;
    if (code === HvCall.PostMessage) this.count(VpCounter.PostMessageCalls);
    else if (code === HvCall.SignalEvent) this.count(VpCounter.SignalEventCalls);
  }

  protected exit(c: number): void {
    this.f64[this.counterBase + VpCounter.Exits]++;
    this.f64[this.counterBase + c]++;
  }

  /** Every exit ends here (vp-exit-boundary.ts): pause/stop, timers, interrupts, capture. */
  protected abstract leave<T extends number | bigint | undefined>(r: T): T;

  /** HV_X64_MSR_VP_RUNTIME: 100 ns the VP ran, not halted (carried over a capture). */
  protected runtime100ns(): number {
    return this.runtimeBase + (performance.now() - this.startedMs - this.haltedMs) * 10_000;
  }

  protected utf16(ptr: number, bytes: number): string {
    if (!this.mem.contains(ptr >>> 0, bytes >>> 0) || bytes > 4096) return '<unreadable>';
    return Buffer.from(this.mem.read(ptr >>> 0, bytes >>> 0)).toString('utf16le');
  }

  protected forward(
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

  protected requireHypercallPage(): void {
    if (!this.msrs.hypercallEnabled()) throw new GuestFault('ud', 'hypercall before the hypercall page was enabled (#UD)');
  }

  protected cpuid(leaf: number, subleaf: number, outGpa: number): void {
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

  protected rdmsr(msr: number): bigint {
    this.exit(VpCounter.MsrExits);
    let v = this.msrs.read(msr);
    if (v === NOT_SYNTHETIC) {
      if (this.forward(InterceptKind.MsrRead, msr, 8, 0, 0, 0, 0) !== InterceptResult.Handled) v = GP;
      else v = (BigInt(this.intercepts.out(1) >>> 0) << 32n) | BigInt(this.intercepts.out(0) >>> 0);
    }
    if (v === GP) throw new GuestFault('gp', `rdmsr 0x${msr.toString(16)}: #GP`);
    return this.leave(BigInt.asIntN(64, v));
  }

  protected wrmsr(msr: number, value: bigint): void {
    this.exit(VpCounter.MsrExits);
    let r = this.msrs.write(msr, value);
    if (r === NOT_SYNTHETIC) {
      const u = BigInt.asUintN(64, value);
      r = this.forward(InterceptKind.MsrWrite, msr, 8, Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, 0, 0) === InterceptResult.Handled ? true : GP;
    }
    if (r === GP) throw new GuestFault('gp', `wrmsr 0x${msr.toString(16)} = 0x${BigInt.asUintN(64, value).toString(16)}: #GP`);
    this.leave(undefined);
  }

  protected mmio(read: boolean, gpa: number, size: number, value: number): number {
    this.exit(VpCounter.MmioExits);
    if (size !== 1 && size !== 2 && size !== 4) throw new GuestFault('gp', `MMIO access of ${size} bytes`);
    if (this.mem.contains(gpa, size)) throw new GuestFault('memory', `MMIO access to RAM at 0x${gpa.toString(16)}`);
    const r = this.forward(read ? InterceptKind.MmioRead : InterceptKind.MmioWrite, gpa, size, value, 0, 0, 0);
    // Nothing decodes an unclaimed physical address: reads float high, writes vanish.
    const v = read ? (r === InterceptResult.Handled ? this.intercepts.out(0) : -1) >>> 0 : 0;
    return this.leave(size === 4 ? v : v & ((1 << (size * 8)) - 1));
  }

  protected requestStartVp(index: number, rip: number): HvStatus {
    if (index === this.vp || this.startedVps.has(index) || this.ctl.runState(index) !== VpRunState.NotStarted) return HvStatus.InvalidVpState;
    this.startedVps.add(index);
    this.opts.notify({ type: 'start-vp', vp: this.vp, target: index, rip });
    return HvStatus.Success;
  }
}
