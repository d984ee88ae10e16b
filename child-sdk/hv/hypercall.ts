// Hypercall wrappers (TLFS hypercall-interface.md). Memory-based calls use this VP's input and
// output pages below the image (HYPERCALL_PAGES_GPA); they are fixed, page-aligned and never
// touched by the compiler.
import { hypercall, hypercallFast, wrmsr, rdmsr, VP_INDEX } from "../platform/hv";
import { HvCall, HV_HYPERCALL_FAST_BIT, HV_RESULT_STATUS_MASK, HV_RESULT_REPS_SHIFT } from "../../abi/hv-hypercall";
import { HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL } from "../../abi/hv-msr";
import { HYPERCALL_PAGES_GPA, PAGE_SIZE } from "../../abi/platform";

/** Guest OS id for tsvisor guests: open-source encoding (bit 63), OS type 0x7f, kernel version 1. */
export const GUEST_OS_ID: u64 = 0x8000000000000000 | (<u64>0x7f << 56) | (<u64>1 << 16);

/** This VP's hypercall input page: HYPERCALL_PAGES_GPA + VP index × 8 KiB. */
export function inputPage(): usize { return HYPERCALL_PAGES_GPA + (<usize>VP_INDEX << 13); }
/** This VP's hypercall output page, the page after its input page. */
export function outputPage(): usize { return inputPage() + PAGE_SIZE; }

/**
 * Establishes the hypercall interface: writes the guest OS id, then enables the hypercall page at
 * `pageGpa`. Returns true when the enable bit stuck.
 */
export function enableHypercalls(pageGpa: usize): bool {
  wrmsr(HV_X64_MSR_GUEST_OS_ID, GUEST_OS_ID);
  wrmsr(HV_X64_MSR_HYPERCALL, <u64>pageGpa | 1);
  return (rdmsr(HV_X64_MSR_HYPERCALL) & 1) != 0;
}

/** HV_STATUS (bits 15:0) of the hv.hypercall / hypercall_fast import's result. */
export function status(result: u32): u32 { return result & HV_RESULT_STATUS_MASK; }
/** Reps completed (bits 27:16) of a rep hypercall's result. */
export function repsCompleted(result: u32): u32 { return (result >> HV_RESULT_REPS_SHIFT) & 0xfff; }

/** HvCallPostMessage: returns the HV_STATUS. */
export function postMessage(connectionId: u32, messageType: u32, payload: usize, size: u32): u32 {
  const p = inputPage();
  store<u32>(p, connectionId, 0);
  store<u32>(p, 0, 4);
  store<u32>(p, messageType, 8);
  store<u32>(p, size, 12);
  memory.copy(p + 16, payload, min<u32>(size, 240));
  return status(hypercall(HvCall.PostMessage, 0, p, 0));
}

/** HvCallSignalEvent, fast form (Linux vmbus_set_event): returns the HV_STATUS. */
export function signalEvent(connectionId: u32, flagNumber: u32 = 0): u32 {
  return status(hypercallFast(HvCall.SignalEvent | HV_HYPERCALL_FAST_BIT, 0, connectionId, flagNumber & 0xffff, 0, 0));
}

/** HvCallGetPartitionId; returns 0 on failure. */
export function getPartitionId(): u64 {
  const r = hypercall(HvCall.GetPartitionId, 0, 0, outputPage());
  return status(r) == 0 ? load<u64>(outputPage()) : 0;
}

/** HvCallStartVirtualProcessor: starts VP `vp` at `entry`, an AssemblyScript function reference. */
export function startVirtualProcessor(vp: u32, entry: (arg: u32) => void): u32 {
  const p = inputPage();
  memory.fill(p, 0, 16 + 224);
  store<u64>(p, 0xffffffffffffffff, 0);
  store<u32>(p, vp, 8);
  store<u64>(p, <u64>changetype<u32>(entry), 16);
  return status(hypercall(HvCall.StartVirtualProcessor, 0, p, 0));
}
