/**
 * CPUID as the hypervisor answers it (TLFS feature-discovery.md): leaf 1 says a hypervisor is
 * present, 0x40000000–0x40000006 describe it and the partition's privileges. Other leaves are the
 * root partition's to answer (a CPUID intercept); without a handler they read as zero.
 */
import * as C from '../../abi/hv-cpuid.ts';

export const HYPERVISOR_BUILD = 1;
export const HYPERVISOR_VERSION_MAJOR = 10;
export const HYPERVISOR_VERSION_MINOR = 0;

// CPUID 0x40000003 EDX: bit 10 guest crash MSRs (the only optional feature implemented).
export const HV_FEATURE_GUEST_CRASH_MSRS = 1 << 10;

export interface CpuidContext {
  privilegesLo: number;
  privilegesHi: number;
  vpCount: number;
}

export type CpuidResult = [eax: number, ebx: number, ecx: number, edx: number];

/** Returns the hypervisor's answer, or null when the leaf is the root partition's to answer. */
export function hypervisorCpuid(leaf: number, _subleaf: number, ctx: CpuidContext): CpuidResult | null {
  switch (leaf >>> 0) {
    case 0x00000000:
      // Max standard leaf 1; vendor "tsvisorwasm " in EBX, EDX, ECX order as x86 reports it.
      return [1, 0x69767374, 0x206d7361, 0x77726f73];
    case 0x00000001:
      return [0, 0, C.CPUID_1_ECX_HYPERVISOR >>> 0, 0];
    case C.HV_CPUID_VENDOR_AND_MAX_FUNCTIONS:
      return [C.HV_CPUID_MAX_LEAF, C.HV_VENDOR_EBX, C.HV_VENDOR_ECX, C.HV_VENDOR_EDX];
    case C.HV_CPUID_INTERFACE:
      return [C.HV_INTERFACE_SIGNATURE, 0, 0, 0];
    case C.HV_CPUID_VERSION:
      return [HYPERVISOR_BUILD, ((HYPERVISOR_VERSION_MAJOR << 16) | HYPERVISOR_VERSION_MINOR) >>> 0, 0, 0];
    case C.HV_CPUID_FEATURES:
      return [ctx.privilegesLo >>> 0, ctx.privilegesHi >>> 0, 0, HV_FEATURE_GUEST_CRASH_MSRS];
    case C.HV_CPUID_ENLIGHTENMENT_INFO:
      // No recommendations; never notify long spin waits (0xFFFFFFFF); 32 physical address bits.
      return [0, 0xffffffff, 32, 0];
    case C.HV_CPUID_IMPLEMENT_LIMITS:
      return [ctx.vpCount, ctx.vpCount, 0, 0];
    case C.HV_CPUID_HARDWARE_FEATURES:
      return [0, 0, 0, 0];
    default:
      if (leaf >>> 0 >= 0x40000000 && leaf >>> 0 <= 0x4000ffff) return [0, 0, 0, 0];
      return null;
  }
}
