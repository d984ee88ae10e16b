// SynIC setup and the message-slot protocol (TLFS inter-partition-communication; Linux
// vmbus_signal_eom): the guest copies a message out, clears the slot's type, and writes EOM only
// if the hypervisor flagged another message pending.
import { rdmsr, wrmsr } from "../platform/hv";
import * as M from "../../abi/hv-msr";
import { pageAlloc } from "../kernel/pages";

const SIMP_PAGE: usize = memory.data(4 * 64, 16); // per-VP SIM and SIEF page GPAs
const SIEF_PAGE: usize = memory.data(4 * 64, 16);

/** Enables this VP's SynIC with fresh SIM and SIEF pages. Returns the SIM page GPA (0 on failure). */
export function synicEnable(vp: i32): usize {
  const simp = pageAlloc();
  const siefp = pageAlloc();
  if (simp == 0 || siefp == 0) return 0;
  wrmsr(M.HV_X64_MSR_SIMP, <u64>simp | 1);
  wrmsr(M.HV_X64_MSR_SIEFP, <u64>siefp | 1);
  wrmsr(M.HV_X64_MSR_SCONTROL, 1);
  store<usize>(SIMP_PAGE + (<usize>vp << 2), simp);
  store<usize>(SIEF_PAGE + (<usize>vp << 2), siefp);
  return simp;
}

/** GPA of VP `vp`'s SynIC message page, 0 before synicEnable on it. */
export function simPage(vp: i32): usize { return load<usize>(SIMP_PAGE + (<usize>vp << 2)); }
/** GPA of VP `vp`'s SynIC event-flags page, 0 before synicEnable on it. */
export function siefPage(vp: i32): usize { return load<usize>(SIEF_PAGE + (<usize>vp << 2)); }

/** Routes SINT `sint` to `vector` (unmasked). */
export function sintRoute(sint: u32, vector: u32): void {
  wrmsr(M.HV_X64_MSR_SINT0 + sint, <u64>(vector & 0xff));
}

/** Masks SINT `sint` (HV_SINT_MASKED in its SINTx MSR; one MSR exit). */
export function sintMask(sint: u32): void {
  wrmsr(M.HV_X64_MSR_SINT0 + sint, M.HV_SINT_MASKED);
}

/** Address of SINT `sint`'s message slot; its u32 at offset 0 is the message type (0 = empty). */
export function messageSlot(vp: i32, sint: u32): usize { return simPage(vp) + (<usize>sint << 8); }

/** Frees the slot after the message was consumed; writes EOM when another one is pending. */
export function messageDone(vp: i32, sint: u32): void {
  const slot = messageSlot(vp, sint);
  atomic.store<u32>(slot, 0);
  // Read the flags after clearing the type (the hypervisor sets them in the other order).
  if ((atomic.load<u32>(slot, 4) & 0x100) != 0) wrmsr(M.HV_X64_MSR_EOM, 0);
}

/** Tests and clears event flag `flag` of SINT `sint`. */
export function eventFlagTake(vp: i32, sint: u32, flag: u32): bool {
  const word = siefPage(vp) + (<usize>sint << 8) + (<usize>(flag >> 5) << 2);
  const mask: u32 = 1 << (flag & 31);
  return (atomic.and<u32>(word, ~mask) & mask) != 0;
}

/** Arms synthetic timer `n` as periodic with `period100ns`, expiring to SINT `sint`. */
export function stimerPeriodic(n: u32, sint: u32, period100ns: u64): void {
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n, 0);
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n + 1, period100ns);
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n, <u64>(M.HV_STIMER_ENABLE | M.HV_STIMER_PERIODIC) | (<u64>sint << M.HV_STIMER_SINT_SHIFT));
}

/** Arms synthetic timer `n` as one-shot at absolute reference time `due100ns`. */
export function stimerOneShot(n: u32, sint: u32, due100ns: u64): void {
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n, 0);
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n + 1, due100ns);
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n, <u64>M.HV_STIMER_ENABLE | (<u64>sint << M.HV_STIMER_SINT_SHIFT));
}

/** Disables synthetic timer `n` (its config MSR written 0). */
export function stimerStop(n: u32): void {
  wrmsr(M.HV_X64_MSR_STIMER0_CONFIG + 2 * n, 0);
}

/** Partition reference time (HV_X64_MSR_TIME_REF_COUNT): 100 ns units since the partition started; one MSR exit. */
export function referenceTime(): u64 { return rdmsr(M.HV_X64_MSR_TIME_REF_COUNT); }
