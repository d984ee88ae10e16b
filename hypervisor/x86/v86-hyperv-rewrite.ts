/**
 * Prepares v86.wasm for the Hyper-V enlightenments, with binaryen (as guest images are prepared,
 * hypervisor/rewrite/): each of v86's CPUID, RDMSR and WRMSR instruction functions first asks an
 * imported hook, and runs v86's own code only when the hook declines. Direct calls from v86's
 * interpreter and the imports of its JIT modules both reach the function by name, so renaming the
 * original and putting the hook under the old name covers both.
 */
import binaryen from 'binaryen';

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

export function rewriteV86(bytes: Uint8Array): Uint8Array {
  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(binaryen.Features.All);
    for (const { fn, hook } of V86_HOOKS) {
      const ref = m.getFunction(fn);
      if (!ref) throw new Error(`v86.wasm has no function ${fn}`);
      const info = binaryen.getFunctionInfo(ref);
      if (info.params !== binaryen.none || info.results !== binaryen.none) throw new Error(`v86.wasm: ${fn} is not () -> ()`);
      const original = `${fn}$v86`;
      const hookFn = `${fn}$hook`;
      m.addFunction(original, binaryen.none, binaryen.none, info.vars, info.body);
      m.removeFunction(fn);
      m.addFunctionImport(hookFn, V86_HOOK_MODULE, hook, binaryen.none, binaryen.i32);
      m.addFunction(fn, binaryen.none, binaryen.none, [], m.if(m.call(hookFn, [], binaryen.i32), m.nop(), m.call(original, [], binaryen.none)));
    }
    if (!m.validate()) throw new Error('v86.wasm: the rewritten module does not validate');
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

/** True when `module` is v86.wasm prepared by rewriteV86 (it imports every hook). */
export function isPreparedV86(module: WebAssembly.Module): boolean {
  const imports = WebAssembly.Module.imports(module).filter((i) => i.module === V86_HOOK_MODULE && i.kind === 'function');
  return V86_HOOKS.every((h) => imports.some((i) => i.name === h.hook));
}
