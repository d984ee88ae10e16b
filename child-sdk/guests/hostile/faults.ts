// The hostile guest's faulting cases: arguments the platform answers with a fault by design
// (docs/guest-abi.md §9). Each runs on its own VP, so one VM run shows them all: a fault stops
// only the VP that took it. FAULT_CASES lists each case's expected exit reason for the test.
import { cpuid, hypercall, insb, mmioRead, mmioWrite, rdmsr, wrmsr } from "../../platform/hv";
import { ramPages } from "../../kernel/boot-info";
import { HvCall } from "../../../abi/hv-hypercall";

/** VPs that reached their faulting call (shared memory: module globals are per VP). */
export const REACHED: usize = memory.data(4, 4);

export const FAULT_CASE_COUNT: u32 = 11;

/** Runs case `n` (1-based: VP n runs case n). Returns only if the platform did not fault. */
export function runFaultCase(n: u32): void {
  const ramEnd = <usize>ramPages() << 12;
  atomic.add<u32>(REACHED, 1);
  switch (n) {
    case 1: wrmsr(0x40000090, 5); break; // SINT0 unmasked with a vector below 16 → gp
    case 2: wrmsr(0x40000002, 5); break; // VP_INDEX is read-only → gp
    case 3: rdmsr(0x12345678); break; // no such MSR, nobody claims it → gp
    case 4: wrmsr(0x40000001, <u64>(ramEnd + 0x100000) | 1); break; // hypercall page beyond RAM → gp
    case 5: wrmsr(0x40000083, <u64>(0xfff00000) | 1); break; // SIMP page beyond RAM → gp
    case 6: cpuid(0, 0, ramEnd - 8); break; // CPUID output crossing the end of RAM → memory
    case 7: insb(0x1f0, ramEnd - 16, 0xffffffff); break; // string I/O of 4 Gi units past RAM → memory
    case 8: mmioRead(0x2000, 4); break; // MMIO to RAM → fault
    case 9: mmioWrite(ramEnd + 0x1000, 3, 0); break; // MMIO of size 3 → fault
    case 10: {
      // StartVirtualProcessor of the spare VP (FAULT_CASE_COUNT + 1) with a RIP that is no
      // function of the image → that VP traps in vp_start.
      const p = <usize>0x10000 + (<usize>n << 13);
      memory.fill(p, 0, 256);
      store<u64>(p, 0xffffffffffffffff, 0);
      store<u32>(p, FAULT_CASE_COUNT + 1, 8);
      store<u64>(p, 0x7fffffff, 16);
      hypercall(HvCall.StartVirtualProcessor, 0, p, 0);
      // This VP itself then reads past the end of memory: a Wasm trap.
      load<u32>(0xfffffff0);
      break;
    }
    case 11: throw new Error("hostile guest panics on purpose"); // abort → panic
    default: break;
  }
}
