/**
 * What a prepared v86.wasm imports (v86-hyperv-rewrite.ts makes it): kept apart from the rewrite
 * so that running a prepared module never loads binaryen, whose start-up alone costs seconds.
 */
/** The import module of the hooks; each hook takes nothing and returns 1 when it handled the instruction. */
export const V86_HOOK_MODULE = 'tsvisor_x86';

/** v86's instruction functions (src/rust/instructions_0f.rs: `instr_0FA2` CPUID, `instr_0F32` RDMSR, `instr_0F30` WRMSR). */
export const V86_HOOKS = [
  { fn: 'instr_0FA2', hook: 'cpuid' },
  { fn: 'instr_0F32', hook: 'rdmsr' },
  { fn: 'instr_0F30', hook: 'wrmsr' },
] as const;

export type V86HookName = (typeof V86_HOOKS)[number]['hook'];

/** Bumped whenever the output changes for the same input (part of the cache key). */
export const V86_REWRITE_VERSION = 1;

/** True when `module` is v86.wasm prepared by rewriteV86 (it imports every hook). */
export function isPreparedV86(module: WebAssembly.Module): boolean {
  const imports = WebAssembly.Module.imports(module).filter((i) => i.module === V86_HOOK_MODULE && i.kind === 'function');
  return V86_HOOKS.every((h) => imports.some((i) => i.name === h.hook));
}
