/**
 * The hypervisor's synthetic MSRs (TLFS SynIC and timers; Linux hvgdk_mini.h). Each needs its privilege
 * bit (CPUID 0x40000003 EAX); without it, or for a reserved-bit violation, the access takes #GP.
 * MSRs outside this set are not the hypervisor's: the VP forwards them to the root partition.
 * Values are kept at their full 64 bits. Enabling an overlay page (hypercall page, SIMP, SIEFP)
 * whose GPA, bits 63:12 of the value, is not wholly inside guest RAM takes #GP: a GPA beyond the
 * partition's memory is beyond its physical address space, and a write that sets such address
 * bits faults (TLFS: reserved bits of synthetic MSRs; Intel SDM: setting bits above MAXPHYADDR
 * in an address MSR is #GP). The check is repeated at every delivery, so a page that is not
 * valid is never touched.
 */
import * as M from '../../abi/hv-msr.ts';
import * as P from '../../abi/hv-cpuid.ts';
import type { GuestMemory } from '../guest-memory.ts';
import { P_GUEST_OS_ID, P_HYPERCALL_MSR, P_PRIV_LO, type PartitionControl, VP_SCONTROL, VP_SIEFP, VP_SIMP, VP_SINT, vpBase } from '../partition-control.ts';
import type { ReferenceClock } from '../reference-time.ts';
import { overlayPageGpa, retryDelivery } from '../synic/synic-delivery.ts';
import type { SyntheticTimers } from '../synic/stimers.ts';

/** Not a synthetic MSR: the root partition decides. */
export const NOT_SYNTHETIC = Symbol('not-synthetic');
/** The access takes a general-protection fault. */
export const GP = Symbol('gp');

export interface MsrHooks {
  reset(): void;
  crash(params: bigint[]): void;
  runtime100ns(): number;
}

export class SyntheticMsrs {
  private readonly base: number;
  private readonly crashParams: bigint[] = [0n, 0n, 0n, 0n, 0n];

  constructor(
    private readonly ctl: PartitionControl,
    private readonly mem: GuestMemory,
    private readonly vp: number,
    private readonly clock: ReferenceClock,
    private readonly timers: SyntheticTimers,
    private readonly hooks: MsrHooks,
  ) {
    this.base = vpBase(vp);
  }

  private can(bit: number): boolean {
    return (this.ctl.i32[P_PRIV_LO >> 2] & bit) !== 0;
  }

  private privilegeFor(msr: number): number | null {
    if (msr === M.HV_X64_MSR_GUEST_OS_ID || msr === M.HV_X64_MSR_HYPERCALL) return P.HV_ACCESS_HYPERCALL_MSRS;
    if (msr === M.HV_X64_MSR_VP_INDEX) return P.HV_ACCESS_VP_INDEX;
    if (msr === M.HV_X64_MSR_RESET) return P.HV_ACCESS_RESET_REG;
    if (msr === M.HV_X64_MSR_VP_RUNTIME) return P.HV_ACCESS_VP_RUNTIME_REG;
    if (msr === M.HV_X64_MSR_TIME_REF_COUNT) return P.HV_ACCESS_PARTITION_REFERENCE_COUNTER;
    if (msr === M.HV_X64_MSR_REFERENCE_TSC) return P.HV_ACCESS_PARTITION_REFERENCE_TSC;
    if (msr === M.HV_X64_MSR_TSC_FREQUENCY || msr === M.HV_X64_MSR_APIC_FREQUENCY) return P.HV_ACCESS_FREQUENCY_REGS;
    if (msr >= M.HV_X64_MSR_SCONTROL && msr <= M.HV_X64_MSR_SINT15) return P.HV_ACCESS_SYNIC_REGS;
    if (msr >= M.HV_X64_MSR_STIMER0_CONFIG && msr <= M.HV_X64_MSR_STIMER3_COUNT) return P.HV_ACCESS_SYNTHETIC_TIMER_REGS;
    if (msr >= M.HV_X64_MSR_CRASH_P0 && msr <= M.HV_X64_MSR_CRASH_CTL) return 0; // advertised by CPUID EDX bit 10
    return null;
  }

  read(msr: number): bigint | typeof GP | typeof NOT_SYNTHETIC {
    msr >>>= 0;
    const priv = this.privilegeFor(msr);
    if (priv === null) return NOT_SYNTHETIC;
    if (priv !== 0 && !this.can(priv)) return GP;
    const i64 = this.ctl.i64;
    switch (msr) {
      case M.HV_X64_MSR_GUEST_OS_ID:
        return i64[P_GUEST_OS_ID >> 3];
      case M.HV_X64_MSR_HYPERCALL:
        return i64[P_HYPERCALL_MSR >> 3];
      case M.HV_X64_MSR_VP_INDEX:
        return BigInt(this.vp);
      case M.HV_X64_MSR_RESET:
        return 0n;
      case M.HV_X64_MSR_VP_RUNTIME:
        return BigInt(Math.floor(this.hooks.runtime100ns()));
      case M.HV_X64_MSR_TIME_REF_COUNT:
        return BigInt(this.clock.now());
      case M.HV_X64_MSR_SCONTROL:
        return BigInt(this.ctl.i32[(this.base + VP_SCONTROL) >> 2]);
      case M.HV_X64_MSR_SVERSION:
        return 1n;
      case M.HV_X64_MSR_SIEFP:
        return i64[(this.base + VP_SIEFP) >> 3];
      case M.HV_X64_MSR_SIMP:
        return i64[(this.base + VP_SIMP) >> 3];
      case M.HV_X64_MSR_EOM:
        return 0n;
      case M.HV_X64_MSR_CRASH_CTL:
        return 0x3n << 62n; // CrashNotify and CrashMessage supported
    }
    if (msr >= M.HV_X64_MSR_SINT0 && msr <= M.HV_X64_MSR_SINT15) return i64[(this.base + VP_SINT + 8 * (msr - M.HV_X64_MSR_SINT0)) >> 3];
    if (msr >= M.HV_X64_MSR_STIMER0_CONFIG && msr <= M.HV_X64_MSR_STIMER3_COUNT) {
      const n = (msr - M.HV_X64_MSR_STIMER0_CONFIG) >> 1;
      return (msr & 1) === 0 ? this.timers.config(n) : this.timers.count(n);
    }
    if (msr >= M.HV_X64_MSR_CRASH_P0 && msr < M.HV_X64_MSR_CRASH_CTL) return this.crashParams[msr - M.HV_X64_MSR_CRASH_P0];
    return GP; // the reference TSC page and frequency MSRs are not implemented: never granted
  }

  /** Returns true when done, GP for a fault, NOT_SYNTHETIC when the root must decide. */
  write(msr: number, value: bigint): true | typeof GP | typeof NOT_SYNTHETIC {
    msr >>>= 0;
    value = BigInt.asUintN(64, value);
    const priv = this.privilegeFor(msr);
    if (priv === null) return NOT_SYNTHETIC;
    if (priv !== 0 && !this.can(priv)) return GP;
    const i64 = this.ctl.i64;
    switch (msr) {
      case M.HV_X64_MSR_GUEST_OS_ID:
        i64[P_GUEST_OS_ID >> 3] = value;
        // Zeroing the guest OS id disables the hypercall page (TLFS "Establishing the interface").
        if (value === 0n) i64[P_HYPERCALL_MSR >> 3] &= ~1n;
        return true;
      case M.HV_X64_MSR_HYPERCALL: {
        const cur = i64[P_HYPERCALL_MSR >> 3];
        if ((cur & 2n) !== 0n) return true; // locked: writes are ignored
        let v = (value & ~0xffcn) | (cur & 0xffcn); // bits 11:2 RsvdP
        if (i64[P_GUEST_OS_ID >> 3] === 0n) v &= ~1n; // no guest OS id: the enable bit stays 0
        if ((v & 1n) !== 0n && overlayPageGpa(v, this.mem) < 0) return GP;
        i64[P_HYPERCALL_MSR >> 3] = v;
        return true;
      }
      case M.HV_X64_MSR_RESET:
        if ((value & 1n) !== 0n) this.hooks.reset();
        return true;
      case M.HV_X64_MSR_SCONTROL:
        Atomics.store(this.ctl.i32, (this.base + VP_SCONTROL) >> 2, Number(value & 1n));
        retryDelivery(this.ctl, this.mem, this.vp);
        return true;
      case M.HV_X64_MSR_SIEFP:
      case M.HV_X64_MSR_SIMP: {
        if ((value & 1n) !== 0n && overlayPageGpa(value, this.mem) < 0) return GP;
        const off = msr === M.HV_X64_MSR_SIMP ? VP_SIMP : VP_SIEFP;
        Atomics.store(i64, (this.base + off) >> 3, value & ~0xffen);
        retryDelivery(this.ctl, this.mem, this.vp);
        return true;
      }
      case M.HV_X64_MSR_EOM:
        retryDelivery(this.ctl, this.mem, this.vp);
        return true;
      case M.HV_X64_MSR_CRASH_CTL:
        if ((value >> 63n) & 1n) this.hooks.crash([...this.crashParams]);
        return true;
      case M.HV_X64_MSR_VP_INDEX:
      case M.HV_X64_MSR_VP_RUNTIME:
      case M.HV_X64_MSR_TIME_REF_COUNT:
      case M.HV_X64_MSR_SVERSION:
        return GP; // read-only
    }
    if (msr >= M.HV_X64_MSR_SINT0 && msr <= M.HV_X64_MSR_SINT15) {
      const vector = Number(value & 0xffn);
      if (vector < 16 && (value & BigInt(M.HV_SINT_MASKED)) === 0n) return GP;
      Atomics.store(i64, (this.base + VP_SINT + 8 * (msr - M.HV_X64_MSR_SINT0)) >> 3, value & 0x700ffn);
      return true;
    }
    if (msr >= M.HV_X64_MSR_STIMER0_CONFIG && msr <= M.HV_X64_MSR_STIMER3_COUNT) {
      const n = (msr - M.HV_X64_MSR_STIMER0_CONFIG) >> 1;
      if ((msr & 1) === 0) return this.timers.writeConfig(n, value) ? true : GP;
      this.timers.writeCount(n, value);
      return true;
    }
    if (msr >= M.HV_X64_MSR_CRASH_P0 && msr < M.HV_X64_MSR_CRASH_CTL) {
      this.crashParams[msr - M.HV_X64_MSR_CRASH_P0] = value;
      return true;
    }
    return GP;
  }

  hypercallEnabled(): boolean {
    return (this.ctl.i64[P_HYPERCALL_MSR >> 3] & 1n) !== 0n;
  }
}
