/**
 * The Hyper-V enlightenments of an x86 VP (TLFS; Linux arch/x86/kernel/cpu/mshyperv.c and
 * arch/x86/hyperv/hv_init.c): CPUID 0x40000000–0x400000FF answered by the hypervisor's CPUID
 * code, the synthetic MSRs a Linux guest needs to enable the hypervisor interface, and the
 * hypercall page filled with a trap sequence.
 *
 * The hypercall page holds `out HYPERCALL_TRAP_PORT, al; ret`: the guest calls into it with the
 * TLFS 32-bit convention (EDX:EAX control, EBX:ECX input GPA, EDI:ESI output GPA), the OUT reaches
 * `hypercall()` with those registers in v86's register file, and EDX:EAX is the result when the
 * RET returns to the guest. With a SynIC (`attach(partition)`) the SynIC MSRs and the hypercalls
 * go to the partition (x86-partition.ts); without one every hypercall completes with
 * HV_STATUS_INVALID_HYPERCALL_CODE, as Hyper-V answers a code it lacks.
 */
import * as C from '../../abi/hv-cpuid.ts';
import * as M from '../../abi/hv-msr.ts';
import { HvStatus } from '../../abi/hv-status.ts';
import { hypervisorCpuid } from '../vp/cpuid.ts';
import { Reg } from './v86-internals.ts';
import type { V86HookName } from './v86-hook-abi.ts';
import { V86_HOOK_MODULE } from './v86-hook-abi.ts';
import { isSynicMsr, type X86Partition } from './x86-partition.ts';
import type { X86Vp } from './x86-vp.ts';

/** A port nothing on a PC decodes, and v86 leaves empty; the hypercall page's OUT targets it. */
export const HYPERCALL_TRAP_PORT = 0xea;

/** `out 0xEA, al` (E6 ib) then `ret` (C3). */
export const HYPERCALL_TRAP_CODE = Uint8Array.of(0xe6, HYPERCALL_TRAP_PORT, 0xc3);

/**
 * CPUID 0x40000004 EAX bit 9, HV_DEPRECATING_AEOI_RECOMMENDED (Linux hyperv-tlfs.h): the guest
 * clears SINT AutoEOI and acknowledges the callback vector at the local APIC itself. Given with
 * the SynIC: v86's local APIC has no auto-EOI, so a vector the guest never acknowledged would
 * stay in service and block every later one.
 */
export const HV_DEPRECATING_AEOI_RECOMMENDED = 1 << 9;

/**
 * CPUID 0x40000003 EDX bit 19, HV_STIMER_DIRECT_MODE_AVAILABLE (Linux hyperv-tlfs.h): a synthetic
 * timer may assert an APIC vector itself instead of posting a message. Given with the SynIC:
 * Linux then runs its clockevent on STIMER0 in direct mode (vector 0xED, HYPERV_STIMER0_VECTOR)
 * from boot, before hv_vmbus loads (drivers/clocksource/hyperv_timer.c).
 */
export const HV_STIMER_DIRECT_MODE_AVAILABLE = 1 << 19;

/** HV_X64_MSR_VP_ASSIST_PAGE (TLFS; Linux hvgdk_mini.h): Linux 6.1 writes it on every CPU. */
export const HV_X64_MSR_VP_ASSIST_PAGE = 0x40000073;

/** The synthetic MSR range handed to the hypervisor (the crash MSRs sit at 0x40000100–0x40000105). */
const MSR_FIRST = 0x40000000;
const MSR_LAST = 0x400001ff;
const CPUID_FIRST = 0x40000000;
const CPUID_LAST = 0x400000ff;

/**
 * What this VP kind grants without a SynIC (CPUID 0x40000003 EAX): the hypercall MSRs, the VP
 * index and the partition reference counter (Linux's MSR clocksource). With one attached, the
 * partition's privileges apply (x86-partition.ts adds the SynIC, HvPostMessage, HvSignalEvent).
 */
export const X86_PRIVILEGES_LO = C.HV_ACCESS_HYPERCALL_MSRS | C.HV_ACCESS_VP_INDEX | C.HV_ACCESS_PARTITION_REFERENCE_COUNTER;

export interface X86EnlightenmentCounters {
  cpuid: number;
  rdmsr: number;
  wrmsr: number;
  hypercalls: number;
}

export interface X86EnlightenmentOptions {
  /** The partition reference time, in 100 ns units. */
  referenceTime(): number;
  /** The guest wrote CRASH_CTL with CrashNotify: the five crash parameters. */
  onCrash?(params: bigint[]): void;
  /** Accesses to synthetic MSRs this VP kind does not implement (read as 0, writes dropped). */
  onUnknownMsr?(msr: number, write: boolean): void;
}

export class X86Enlightenments {
  readonly counters: X86EnlightenmentCounters = { cpuid: 0, rdmsr: 0, wrmsr: 0, hypercalls: 0 };
  guestOsId = 0n;
  hypercallMsr = 0n;
  vpAssistMsr = 0n;
  private readonly crashParams: bigint[] = [0n, 0n, 0n, 0n, 0n];
  /** The SynIC and hypercalls, once attached. */
  partition: X86Partition | undefined;

  constructor(
    private readonly vp: () => X86Vp,
    private readonly opts: X86EnlightenmentOptions,
  ) {}

  /** The Wasm imports a prepared v86.wasm needs (v86-hyperv-rewrite.ts). */
  imports(): WebAssembly.Imports {
    const hooks: Record<V86HookName, () => number> = {
      cpuid: () => this.cpuid(),
      rdmsr: () => this.rdmsr(),
      wrmsr: () => this.wrmsr(),
    };
    return { [V86_HOOK_MODULE]: hooks };
  }

  /** Claims the hypercall trap port, with the SynIC of `partition` if given; call before the VP starts. */
  attach(partition?: X86Partition): void {
    this.partition = partition;
    const taken = this.vp().cpu.io.ports[HYPERCALL_TRAP_PORT]?.device;
    if (taken !== undefined) throw new Error(`x86 VP: the hypercall trap port 0x${HYPERCALL_TRAP_PORT.toString(16)} is used by v86`);
    this.vp().ports.attach({
      name: 'hypercall-trap',
      ports: [{ base: HYPERCALL_TRAP_PORT, length: 1 }],
      read: () => 0xff,
      write: () => this.hypercall(),
    });
  }

  private cpuid(): number {
    const r = this.vp().views.reg32;
    const leaf = r[Reg.EAX]! >>> 0;
    if (leaf < CPUID_FIRST || leaf > CPUID_LAST) return 0;
    this.counters.cpuid++;
    const [lo, hi] = this.partition?.privileges ?? [X86_PRIVILEGES_LO, 0];
    const res = hypervisorCpuid(leaf, r[Reg.ECX]! >>> 0, { privilegesLo: lo, privilegesHi: hi, vpCount: 1 }) ?? [0, 0, 0, 0];
    if (leaf === C.HV_CPUID_ENLIGHTENMENT_INFO && this.partition) res[0] |= HV_DEPRECATING_AEOI_RECOMMENDED;
    if (leaf === C.HV_CPUID_FEATURES && this.partition) res[3] |= HV_STIMER_DIRECT_MODE_AVAILABLE;
    r[Reg.EAX] = res[0];
    r[Reg.EBX] = res[1];
    r[Reg.ECX] = res[2];
    r[Reg.EDX] = res[3];
    return 1;
  }

  /** Declines (v86 then raises #GP) outside ring 0, as RDMSR/WRMSR fault there on hardware. */
  private ours(msr: number): boolean {
    return msr >= MSR_FIRST && msr <= MSR_LAST && this.vp().views.cpl === 0;
  }

  private rdmsr(): number {
    const r = this.vp().views.reg32;
    const msr = r[Reg.ECX]! >>> 0;
    if (!this.ours(msr)) return 0;
    this.counters.rdmsr++;
    const v = BigInt.asUintN(64, this.read(msr));
    r[Reg.EAX] = Number(v & 0xffffffffn) | 0;
    r[Reg.EDX] = Number(v >> 32n) | 0;
    return 1;
  }

  private wrmsr(): number {
    const r = this.vp().views.reg32;
    const msr = r[Reg.ECX]! >>> 0;
    if (!this.ours(msr)) return 0;
    this.counters.wrmsr++;
    this.write(msr, (BigInt(r[Reg.EDX]! >>> 0) << 32n) | BigInt(r[Reg.EAX]! >>> 0));
    return 1;
  }

  read(msr: number): bigint {
    if (this.partition && isSynicMsr(msr)) return this.partition.readMsr(msr);
    switch (msr) {
      case M.HV_X64_MSR_GUEST_OS_ID:
        return this.guestOsId;
      case M.HV_X64_MSR_HYPERCALL:
        return this.hypercallMsr;
      case M.HV_X64_MSR_VP_INDEX:
        return 0n;
      // One clock with the SynIC side's (time sync samples carry it): the partition's once attached.
      case M.HV_X64_MSR_TIME_REF_COUNT:
        return BigInt(Math.floor(this.partition?.referenceTime() ?? this.opts.referenceTime()));
      case HV_X64_MSR_VP_ASSIST_PAGE:
        return this.vpAssistMsr;
      case M.HV_X64_MSR_CRASH_CTL:
        return 0x3n << 62n; // CrashNotify and CrashMessage supported
    }
    if (msr >= M.HV_X64_MSR_CRASH_P0 && msr < M.HV_X64_MSR_CRASH_CTL) return this.crashParams[msr - M.HV_X64_MSR_CRASH_P0]!;
    this.opts.onUnknownMsr?.(msr, false);
    return 0n;
  }

  write(msr: number, value: bigint): void {
    if (this.partition && isSynicMsr(msr)) return this.partition.writeMsr(msr, value);
    switch (msr) {
      case M.HV_X64_MSR_GUEST_OS_ID:
        this.guestOsId = value;
        // Zeroing the guest OS id disables the hypercall page (TLFS "Establishing the interface").
        if (value === 0n) this.hypercallMsr &= ~1n;
        return;
      case M.HV_X64_MSR_HYPERCALL:
        this.writeHypercallMsr(value);
        return;
      case HV_X64_MSR_VP_ASSIST_PAGE:
        // Accepted and kept: nothing in the page is used (no enlightened VMCS, no lazy EOI).
        this.vpAssistMsr = value;
        return;
      case M.HV_X64_MSR_CRASH_CTL:
        if ((value >> 63n) & 1n) this.opts.onCrash?.([...this.crashParams]);
        return;
      case M.HV_X64_MSR_VP_INDEX:
      case M.HV_X64_MSR_TIME_REF_COUNT:
        return; // read-only: the write is dropped
    }
    if (msr >= M.HV_X64_MSR_CRASH_P0 && msr < M.HV_X64_MSR_CRASH_CTL) {
      this.crashParams[msr - M.HV_X64_MSR_CRASH_P0] = value;
      return;
    }
    this.opts.onUnknownMsr?.(msr, true);
  }

  /** Bit 0 enable, bit 1 locked, 11:2 reserved (preserved), 63:12 the page's GPA >> 12. */
  private writeHypercallMsr(value: bigint): void {
    const cur = this.hypercallMsr;
    if ((cur & 2n) !== 0n) return; // locked: writes are ignored
    let v = (value & ~0xffcn) | (cur & 0xffcn);
    if (this.guestOsId === 0n) v &= ~1n; // no guest OS id: the enable bit stays 0
    if ((v & 1n) !== 0n) {
      const gpa = Number(v >> 12n) * 4096;
      const ram = this.vp().guestMemory.length;
      if (gpa + 4096 > ram) {
        this.opts.onUnknownMsr?.(M.HV_X64_MSR_HYPERCALL, true);
        v &= ~1n; // a page outside guest RAM is not enabled
      } else {
        const page = new Uint8Array(4096);
        page.set(HYPERCALL_TRAP_CODE);
        this.vp().writeGuest(gpa, page);
      }
    }
    this.hypercallMsr = v;
  }

  /** The OUT of the hypercall page: TLFS 32-bit convention, registers as the guest left them. */
  private hypercall(): void {
    const r = this.vp().views.reg32;
    this.counters.hypercalls++;
    // Result: status in EAX 15:0, reps completed in EDX 11:0 (bits 43:32 of the 64-bit result).
    if (!this.partition) {
      r[Reg.EAX] = HvStatus.InvalidHypercallCode;
      r[Reg.EDX] = 0;
      return;
    }
    const out = this.partition.hypercall({
      eax: r[Reg.EAX]!,
      edx: r[Reg.EDX]!,
      ebx: r[Reg.EBX]!,
      ecx: r[Reg.ECX]!,
      edi: r[Reg.EDI]!,
      esi: r[Reg.ESI]!,
    });
    r[Reg.EAX] = out.eax;
    r[Reg.EDX] = out.edx;
  }
}
