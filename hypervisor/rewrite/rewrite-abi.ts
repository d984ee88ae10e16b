/**
 * What the load-time rewrite adds to a guest image, as the VP runtime sees it. Kept apart from
 * the rewriter so that the VP thread never loads binaryen.
 *
 * The rewrite imports three functions from a module name no guest may use, and exports one
 * global of its own:
 *   tsvisor.preempt() -> i32         a preemption point ran out of fuel; returns the new budget
 *   tsvisor.take_interrupt() -> i32  the vector to deliver now, or -1 (interrupts masked or none)
 *   tsvisor.iret()                   the interrupt handler returned: interrupts are enabled again
 *   __tsvisor_irq (mutable i32)      set by the host when an interrupt is deliverable; the code
 *                                    the rewrite puts after every exit then delivers it in Wasm
 */
export const REWRITE_MODULE = 'tsvisor';
export const PREEMPT_IMPORT = 'preempt';
export const TAKE_INTERRUPT_IMPORT = 'take_interrupt';
export const IRET_IMPORT = 'iret';
export const IRQ_FLAG_EXPORT = '__tsvisor_irq';

/** How an image is prepared at load. Both off = the image runs unmodified. */
export interface RewriteOptions {
  /** Fuel checks at loop headers and function entries; interrupts delivered from Wasm. */
  preemption: boolean;
  /**
   * Asyncify on the exits and preemption points (needs preemption): a VP parked there can
   * unwind its whole Wasm stack into a buffer and be rewound later, in another instance or
   * process (hypervisor/vp/vp-capture.ts). Every mutable global of the image is exported as
   * `__tsvisor_global_<index>_<type>` so it is saved with the stack. The default: saved state,
   * checkpoints and migration need it; its cost is measured by `tsvisor bench cpu`.
   */
  capturable?: boolean;
}

export const PREEMPTIBLE_REWRITE: RewriteOptions = { preemption: true };
export const NO_REWRITE: RewriteOptions = { preemption: false };
export const CAPTURABLE_REWRITE: RewriteOptions = { preemption: true, capturable: true };
export const DEFAULT_REWRITE: RewriteOptions = CAPTURABLE_REWRITE;
export const GLOBAL_EXPORT_PREFIX = '__tsvisor_global_';

/** Whether a compiled module carries the rewrite (its imports say so). */
export function isRewritten(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.imports(module).some((i) => i.module === REWRITE_MODULE && i.name === PREEMPT_IMPORT);
}
