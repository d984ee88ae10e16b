// CPUID and hypervisor discovery (TLFS feature-discovery.md): a guest is enlightened only if it
// finds "Microsoft Hv" and interface "Hv#1", and uses what CPUID 0x40000003 grants.
import { cpuid, VP_INDEX } from "../platform/hv";
import * as C from "../../abi/hv-cpuid";

const OUT: usize = memory.data(16 * 64, 16);

// @ts-ignore: decorator
@inline function out(): usize { return OUT + (<usize>VP_INDEX << 4); }

/** Runs CPUID; read the registers with cpuidEax()..cpuidEdx() on the same VP. */
export function cpuidQuery(leaf: u32, subleaf: u32 = 0): void { cpuid(leaf, subleaf, out()); }
/** EAX of this VP's last cpuidQuery. */
export function cpuidEax(): u32 { return load<u32>(out(), 0); }
/** EBX of this VP's last cpuidQuery. */
export function cpuidEbx(): u32 { return load<u32>(out(), 4); }
/** ECX of this VP's last cpuidQuery. */
export function cpuidEcx(): u32 { return load<u32>(out(), 8); }
/** EDX of this VP's last cpuidQuery. */
export function cpuidEdx(): u32 { return load<u32>(out(), 12); }

/** True when a Hyper-V-compatible hypervisor with the Hv#1 interface is present. */
export function hypervisorPresent(): bool {
  cpuidQuery(1);
  if ((cpuidEcx() & C.CPUID_1_ECX_HYPERVISOR) == 0) return false;
  cpuidQuery(C.HV_CPUID_VENDOR_AND_MAX_FUNCTIONS);
  if (cpuidEax() < 0x40000005 || cpuidEbx() != C.HV_VENDOR_EBX || cpuidEcx() != C.HV_VENDOR_ECX || cpuidEdx() != C.HV_VENDOR_EDX) return false;
  cpuidQuery(C.HV_CPUID_INTERFACE);
  return cpuidEax() == C.HV_INTERFACE_SIGNATURE;
}

/** The partition privilege mask, low half (CPUID 0x40000003 EAX). */
export function privilegesLow(): u32 { cpuidQuery(C.HV_CPUID_FEATURES); return cpuidEax(); }
/** High half (EBX). */
export function privilegesHigh(): u32 { cpuidQuery(C.HV_CPUID_FEATURES); return cpuidEbx(); }
