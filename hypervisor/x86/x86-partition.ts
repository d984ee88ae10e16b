/**
 * The hypervisor's partition state for an x86 VP (one VP): the same control block, port table,
 * SynIC delivery, hypercall dispatcher and root inbox as every partition (hypervisor/), over guest
 * RAM that is a window of v86's Wasm memory. Everything here runs on the VP thread, between
 * v86's instructions (in a CPUID/MSR hook or the hypercall trap) or between its slices (the
 * root's work: VMBus, timers); v86 never runs concurrently, so its non-atomic view of the message
 * and event-flag pages sees every host write whole.
 *
 * SynIC interrupts: delivery asserts a vector in the control block as for any VP (interrupts.ts);
 * `deliver()` moves them into v86's local APIC IRR. Inside an instruction that is all (v86 looks
 * for interrupts after the instruction); between slices the APIC is asked to deliver at once,
 * which also wakes a halted processor.
 *
 * Synthetic timers (TLFS timers.md) are the hypervisor's own (synic/stimers.ts): a timer in
 * direct mode asserts its APIC vector, one in message mode posts HVMSG_TIMER_EXPIRED to its
 * SINT. They are looked at when the guest writes a synthetic MSR and at the earliest due time
 * by a host timer on the VP thread (x86-timer-wakeup.ts).
 */
import * as C from '../../abi/hv-cpuid.ts';
import * as M from '../../abi/hv-msr.ts';
import { HvCall } from '../../abi/hv-hypercall.ts';
import { HvStatus } from '../../abi/hv-status.ts';
import { GuestMemory } from '../guest-memory.ts';
import { HvError } from '../hv-error.ts';
import { HypercallDispatcher } from '../hypercall/dispatcher.ts';
import { childCallHandlers } from '../hypercall/child-calls.ts';
import { decodeControl, resultReps, resultStatus } from '../hypercall/control-word.ts';
import { assertVector, takeHighestVector } from '../interrupts.ts';
import type { ChildPartitionAccess } from '../partition-handle.ts';
import { Owner, P_PRIV_HI, P_PRIV_LO, PartitionControl } from '../partition-control.ts';
import { PortTable } from '../ports.ts';
import { ReferenceClock } from '../reference-time.ts';
import { RootInbox } from '../root-inbox.ts';
import { SyntheticTimers } from '../synic/stimers.ts';
import { GP, NOT_SYNTHETIC, SyntheticMsrs } from '../vp/synthetic-msrs.ts';
import { TimerWakeup } from './x86-timer-wakeup.ts';

/**
 * What an x86 VP with a SynIC grants (CPUID 0x40000003 EAX/EBX): the hypercall MSRs, the VP index,
 * the partition reference counter, the SynIC registers and the synthetic timers; HvPostMessage
 * and HvSignalEvent. Not granted: the reference TSC page, the frequency MSRs.
 */
export const X86_SYNIC_PRIVILEGES_LO =
  C.HV_ACCESS_HYPERCALL_MSRS | C.HV_ACCESS_VP_INDEX | C.HV_ACCESS_PARTITION_REFERENCE_COUNTER | C.HV_ACCESS_SYNIC_REGS | C.HV_ACCESS_SYNTHETIC_TIMER_REGS;
export const X86_SYNIC_PRIVILEGES_HI = C.HV_POST_MESSAGES | C.HV_SIGNAL_EVENTS;

/** The SynIC MSRs, SCONTROL .. SINT15, and the synthetic timers' STIMER0_CONFIG .. STIMER3_COUNT. */
export function isSynicMsr(msr: number): boolean {
  return (msr >= M.HV_X64_MSR_SCONTROL && msr <= M.HV_X64_MSR_SINT15) || isTimerMsr(msr);
}

function isTimerMsr(msr: number): boolean {
  return msr >= M.HV_X64_MSR_STIMER0_CONFIG && msr <= M.HV_X64_MSR_STIMER3_COUNT;
}

/** Where SynIC vectors go: the VP's local APIC. */
export interface X86InterruptSink {
  /** Marks `vector` pending (the IRR bit). */
  raise(vector: number): void;
  /** Delivers the highest pending interrupt now if the guest accepts interrupts (outside an instruction only). */
  deliverNow(): void;
}

export interface X86PartitionOptions {
  name: string;
  id?: number;
  /** The Wasm memory that holds guest RAM at [ramOffset, ramOffset + ramBytes). */
  memory: WebAssembly.Memory;
  ramOffset: number;
  ramBytes: number;
  apic: X86InterruptSink;
  /** The guest posted a message to, or signalled, a root-owned port: the inbox has work. */
  onRootWork?: () => void;
  /** A SynIC MSR access that takes #GP on Hyper-V (this VP kind drops it instead: v86 has no way to fault from the hook). */
  onFault?: (msr: number, write: boolean) => void;
}

export interface X86HypercallRegisters {
  eax: number;
  edx: number;
  ebx: number;
  ecx: number;
  edi: number;
  esi: number;
}

export class X86Partition implements ChildPartitionAccess {
  readonly id: number;
  readonly name: string;
  readonly vpCount = 1;
  readonly ctl: PartitionControl;
  readonly mem: GuestMemory;
  readonly ports: PortTable;
  readonly inbox: RootInbox;
  readonly counters = { postMessage: 0, signalEvent: 0, vectorsRaised: 0, synicMsrFaults: 0 };
  private readonly clock: ReferenceClock;
  private readonly msrs: SyntheticMsrs;
  private readonly timers: SyntheticTimers;
  private readonly timerWakeup: TimerWakeup;
  private readonly dispatcher: HypercallDispatcher;
  private readonly apic: X86InterruptSink;
  /** Set while a hook runs inside one of v86's instructions. */
  private inInstruction = false;
  /** The memory's buffer the views were made on: growing a non-shared memory detaches it. */
  private readonly buffer: ArrayBufferLike;

  constructor(private readonly opts: X86PartitionOptions) {
    this.id = opts.id ?? 1;
    this.name = opts.name;
    this.apic = opts.apic;
    this.ctl = PartitionControl.create(1, this.id);
    this.ctl.i32[P_PRIV_LO >> 2] = X86_SYNIC_PRIVILEGES_LO;
    this.ctl.i32[P_PRIV_HI >> 2] = X86_SYNIC_PRIVILEGES_HI;
    ReferenceClock.start(this.ctl);
    this.clock = new ReferenceClock(this.ctl);
    this.mem = GuestMemory.window(opts.memory, opts.ramOffset, opts.ramBytes);
    this.buffer = opts.memory.buffer;
    this.ports = new PortTable(this.ctl, this.mem);
    this.inbox = new RootInbox(this.ctl, this.mem, this.ports);
    this.timers = new SyntheticTimers(this.ctl, this.mem, 0, this.clock);
    this.timerWakeup = new TimerWakeup(this.timers, this.clock, () => this.fireTimers());
    this.msrs = new SyntheticMsrs(this.ctl, this.mem, 0, this.clock, this.timers, {
      reset: () => {},
      crash: () => {},
      runtime100ns: () => 0,
    });
    const handlers = childCallHandlers({
      partitionId: this.id,
      vp: 0,
      vpCount: 1,
      ports: this.ports,
      getRegister: () => HvStatus.InvalidParameter,
      setRegister: () => HvStatus.InvalidParameter,
      startVp: () => HvStatus.InvalidVpIndex,
    });
    this.dispatcher = new HypercallDispatcher(this.mem, handlers, () => [this.ctl.i32[P_PRIV_LO >> 2]!, this.ctl.i32[P_PRIV_HI >> 2]!]);
  }

  get privileges(): [lo: number, hi: number] {
    return [this.ctl.i32[P_PRIV_LO >> 2]! >>> 0, this.ctl.i32[P_PRIV_HI >> 2]! >>> 0];
  }

  /** A SynIC MSR read from the guest (ring 0). */
  readMsr(msr: number): bigint {
    const v = this.inside(() => this.msrs.read(msr));
    if (v === GP || v === NOT_SYNTHETIC) {
      this.fault(msr, false);
      return 0n;
    }
    return v;
  }

  /**
   * A SynIC MSR write from the guest (ring 0): SIMP/SIEFP/SCONTROL/EOM may deliver a waiting
   * message; a timer's CONFIG or COUNT arms or disarms it, and one due already (a one-shot time
   * in the past) fires now; EOM frees the slot a timer's expiry may be waiting for.
   */
  writeMsr(msr: number, value: bigint): void {
    const r = this.inside(() => {
      const done = this.msrs.write(msr, value);
      if (this.timers.nextDue !== Infinity) this.timers.poll();
      return done;
    });
    if (r !== true) this.fault(msr, true);
    if (isTimerMsr(msr) || msr === M.HV_X64_MSR_EOM) this.timerWakeup.schedule();
  }

  /**
   * The hypercall page's trap, TLFS 32-bit convention: EDX:EAX control, EBX:ECX input GPA (fast:
   * the first input value), EDI:ESI output GPA (fast: the second). Returns EDX:EAX, the result.
   */
  hypercall(r: X86HypercallRegisters): { eax: number; edx: number } {
    const c = decodeControl(r.eax, r.edx);
    const result = this.inside(() => {
      if (c.fast) return this.dispatcher.callFast(r.eax, r.edx, r.ecx, r.ebx, r.esi, r.edi);
      // A GPA at or above 4 GiB is outside RAM: an address that fails the block checks stands for it.
      const input = (r.ebx | 0) === 0 ? r.ecx >>> 0 : 0xffffffff;
      const output = (r.edi | 0) === 0 ? r.esi >>> 0 : 0xffffffff;
      return this.dispatcher.call(r.eax, r.edx, input, output);
    });
    const status = resultStatus(result);
    if (status === HvStatus.Success) {
      if (c.code === HvCall.PostMessage) this.counters.postMessage++;
      else if (c.code === HvCall.SignalEvent) this.counters.signalEvent++;
      if (c.code === HvCall.PostMessage || c.code === HvCall.SignalEvent) this.opts.onRootWork?.();
    }
    return { eax: status, edx: resultReps(result) };
  }

  assertInterrupt(vp: number, vector: number): HvStatus {
    if (vp !== 0) return HvStatus.InvalidVpIndex;
    if (!Number.isInteger(vector) || vector < 16 || vector > 255) return HvStatus.InvalidParameter;
    assertVector(this.ctl, 0, vector);
    this.deliver();
    return HvStatus.Success;
  }

  postMessage(connectionId: number, messageType: number, payload: Uint8Array): HvStatus {
    this.checkMemory();
    const s = this.ports.postMessage(Owner.Root, connectionId, messageType, payload);
    this.deliver();
    return s;
  }

  signalEvent(connectionId: number, flagNumber: number): HvStatus {
    this.checkMemory();
    const s = this.ports.signalEvent(Owner.Root, connectionId, flagNumber);
    this.deliver();
    return s;
  }

  referenceTime(): number {
    return this.clock.now();
  }

  /** Serves the root's inbox (VMBus messages and signals from the guest); call between v86's slices. */
  pump(): number {
    this.checkMemory();
    const n = this.inbox.pump();
    this.deliver();
    return n;
  }

  /** Stops the synthetic timers' host timer (the VM is ending). */
  dispose(): void {
    this.timerWakeup.dispose();
  }

  /** The host timer for the synthetic timers: fires what is due, between v86's slices. */
  private fireTimers(): void {
    // Grown memory: the VMBus side reports it and ends the VM; nothing is written meanwhile.
    if (this.opts.memory.buffer !== this.buffer) return;
    this.timers.poll();
    this.deliver();
  }

  /** Moves the vectors SynIC delivery asserted into the local APIC. */
  deliver(): void {
    let raised = false;
    for (let v = takeHighestVector(this.ctl, 0); v >= 0; v = takeHighestVector(this.ctl, 0)) {
      this.apic.raise(v);
      this.counters.vectorsRaised++;
      raised = true;
    }
    if (raised && !this.inInstruction) this.apic.deliverNow();
  }

  /**
   * Refuses to touch guest RAM once the Wasm memory has grown: every view of it is detached, and
   * the host would read nothing and write nowhere. Sticky: the buffer never comes back.
   */
  private checkMemory(): void {
    if (this.opts.memory.buffer !== this.buffer) {
      throw new HvError('X86_MEMORY_GREW', `the Wasm memory holding ${this.name}'s RAM grew; the host's views of guest RAM are detached`);
    }
  }

  private inside<T>(fn: () => T): T {
    this.checkMemory();
    this.inInstruction = true;
    try {
      return fn();
    } finally {
      this.deliver();
      this.inInstruction = false;
    }
  }

  private fault(msr: number, write: boolean): void {
    this.counters.synicMsrFaults++;
    this.opts.onFault?.(msr, write);
  }
}
