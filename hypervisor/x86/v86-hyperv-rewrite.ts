/**
 * Prepares v86.wasm for the Hyper-V enlightenments, with binaryen (as guest images are prepared,
 * hypervisor/rewrite/): each of v86's CPUID, RDMSR and WRMSR instruction functions first asks an
 * imported hook, and runs v86's own code only when the hook declines. Direct calls from v86's
 * interpreter and the imports of its JIT modules both reach the function by name, so renaming the
 * original and putting the hook under the old name covers both.
 */
import binaryen from 'binaryen';
import { V86_HOOK_MODULE, V86_HOOKS } from './v86-hook-abi.ts';

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
