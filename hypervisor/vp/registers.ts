/**
 * HV_REGISTER_NAME values and where each register lives (TLFS; Linux hvgdk_mini.h). Synthetic registers are
 * views of the MSR state (Sint0 is SINT0, and so on); architectural registers (general purpose,
 * control, segment) are stored per VP for HvCallGet/SetVpRegisters round trips — a WebAssembly
 * guest's execution state is not observable through them.
 */
import * as M from '../../abi/hv-msr.ts';

export const HvRegister = {
  ExplicitSuspend: 0x00000000,
  InterceptSuspend: 0x00000001,
  HypervisorVersion: 0x00000100,
  PrivilegesAndFeaturesInfo: 0x00000200,
  VpRuntime: 0x00090000,
  GuestOsId: 0x00090002,
  VpIndex: 0x00090003,
  TimeRefCount: 0x00090004,
  Sint0: 0x000a0000,
  Scontrol: 0x000a0010,
  Sversion: 0x000a0011,
  Siefp: 0x000a0012,
  Simp: 0x000a0013,
  Eom: 0x000a0014,
  Stimer0Config: 0x000b0000,
  Rax: 0x00020000,
  Rip: 0x00020010,
  Rflags: 0x00020011,
} as const;

/** The MSR behind a synthetic register name, or null. */
export function registerToMsr(name: number): number | null {
  if (name === HvRegister.GuestOsId) return M.HV_X64_MSR_GUEST_OS_ID;
  if (name === HvRegister.VpIndex) return M.HV_X64_MSR_VP_INDEX;
  if (name === HvRegister.TimeRefCount) return M.HV_X64_MSR_TIME_REF_COUNT;
  if (name === HvRegister.VpRuntime) return M.HV_X64_MSR_VP_RUNTIME;
  if (name >= 0x000a0000 && name <= 0x000a000f) return M.HV_X64_MSR_SINT0 + (name - 0x000a0000);
  if (name === HvRegister.Scontrol) return M.HV_X64_MSR_SCONTROL;
  if (name === HvRegister.Sversion) return M.HV_X64_MSR_SVERSION;
  if (name === HvRegister.Siefp) return M.HV_X64_MSR_SIEFP;
  if (name === HvRegister.Simp) return M.HV_X64_MSR_SIMP;
  if (name === HvRegister.Eom) return M.HV_X64_MSR_EOM;
  if (name >= 0x000b0000 && name <= 0x000b0007) return M.HV_X64_MSR_STIMER0_CONFIG + (name - 0x000b0000);
  return null;
}

const ARCHITECTURAL: number[] = [
  ...Array.from({ length: 18 }, (_, i) => 0x00020000 + i), // Rax..R15, Rip, Rflags
  0x00040000,
  0x00040001,
  0x00040002,
  0x00040003,
  0x00040004,
  0x00040005, // Cr0, Cr2, Cr3, Cr4, Cr8, Xfem
  0x00050005, // Dr7
  ...Array.from({ length: 8 }, (_, i) => 0x00060000 + i), // Es, Cs, Ss, Ds, Fs, Gs, Ldtr, Tr
  0x00070000,
  0x00070001, // Idtr, Gdtr
  0x00080000,
  0x00080001,
  0x00080003,
  0x00080004, // Tsc, Efer, ApicBase, Pat
  0x00010002,
  0x00010003, // PendingInterruption, InterruptState
];

/** Slot in the VP's stored register file for an architectural register, or -1. */
export function registerSlot(name: number): number {
  return ARCHITECTURAL.indexOf(name >>> 0);
}
