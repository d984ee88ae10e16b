// The kernel's entry: what every guest image does around its own code. An image writes
//
//   function main(): i32 { …; return 0; }
//   export function boot(): i32 { return kernelBoot(main, SETUP_HYPERCALLS); }
//   export { interrupt } from "…/child-sdk/kernel/boot";
//
// kernelBoot checks the boot-information block, sets up what the image asks for, runs main and
// ends the VP the way main says (docs/child-sdk.md, "The kernel's entry"). The exports the
// hypervisor calls (`boot`, `interrupt`, `vp_start`; docs/guest-abi.md §1) stay the image's own:
// this file provides their bodies.
import "../runtime/panic";
import { cli, halt, VP_INDEX } from "../platform/hv";
import { bootInfoValid } from "./boot-info";
import { dispatchInterrupt } from "./interrupts";
import { pageAlloc } from "./pages";
import { apEntry } from "./smp";
import { hypervisorPresent } from "../hv/cpuid";
import { enableHypercalls } from "../hv/hypercall";
import { synicEnable } from "../hv/synic";

/** Setup: find the hypervisor (CPUID) and enable the hypercall page before main. */
export const SETUP_HYPERCALLS: u32 = 1;
/** Setup: hypercalls and this VP's SynIC (message and event-flags pages) before main. */
export const SETUP_SYNIC: u32 = 3;

/** boot() returns this when the boot-information block is missing or of another ABI version. */
export const EXIT_NO_BOOT_INFO: i32 = 1;
/** boot() returns this when SETUP_HYPERCALLS found no hypervisor or could not enable hypercalls. */
export const EXIT_NO_HYPERCALLS: i32 = 2;

/** Stops this VP for good (`cli; hlt`): its exit reason is `halted`. */
export function haltForGood(): void {
  cli();
  halt();
}

/**
 * VP 0's entry: checks the boot information, does the `setup` asked for (SETUP_* flags), runs
 * `main`. When main returns 0 the VP halts for good (the normal end of a guest); any other value
 * is returned from boot (exit reason `returned` with that value), so a failure shows in
 * `tsvisor run` and `vpExit`. Setup failures return EXIT_NO_BOOT_INFO or EXIT_NO_HYPERCALLS
 * without running main.
 */
export function kernelBoot(main: () => i32, setup: u32 = 0): i32 {
  if (!bootInfoValid()) return EXIT_NO_BOOT_INFO;
  if ((setup & SETUP_HYPERCALLS) != 0 && (!hypervisorPresent() || !enableHypercalls(pageAlloc()))) return EXIT_NO_HYPERCALLS;
  if ((setup & SETUP_SYNIC) == SETUP_SYNIC) synicEnable(VP_INDEX);
  const code = main();
  if (code == 0) haltForGood();
  return code;
}

/** The interrupt entry: runs the handler installed for `vector` (kernel/interrupts.ts). Re-export it. */
export function interrupt(vector: u32): void {
  dispatchInterrupt(vector, VP_INDEX);
}

/** The entry of a VP started with startVirtualProcessor (kernel/smp.ts). Re-export it. */
export function vp_start(rip: u32): void {
  apEntry(rip, VP_INDEX);
}
