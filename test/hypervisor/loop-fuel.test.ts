/**
 * Loop preemption points: the loop itself keeps neither a global access nor a call (V8 does not
 * unroll a loop with a call in it), and a spinning loop still reaches the preemption point at
 * least once per budget.
 */
import binaryen from 'binaryen';
import { describe, expect, it } from 'vitest';
import { pushChildren } from '../../hypervisor/rewrite/expression-children.ts';
import { rewriteModule } from '../../hypervisor/rewrite/rewrite-module.ts';

/** spin(n): counts to n in a loop named "spin", returns the count; memory for the rewrite's needs. */
function spinModule(loopType: 'none' | 'i32'): Uint8Array {
  const m = new binaryen.Module();
  try {
    const i = 1;
    const step = m.local.set(i, m.i32.add(m.local.get(i, binaryen.i32), m.i32.const(1)));
    const again = m.br('spin', m.i32.lt_u(m.local.get(i, binaryen.i32), m.local.get(0, binaryen.i32)));
    const loop =
      loopType === 'none'
        ? m.block(null, [m.loop('spin', m.block(null, [step, again])), m.local.get(i, binaryen.i32)], binaryen.i32)
        : m.loop('spin', m.block(null, [step, again, m.local.get(i, binaryen.i32)], binaryen.i32));
    m.addFunction('spin', binaryen.i32, binaryen.i32, [binaryen.i32], loop);
    m.addFunctionExport('spin', 'spin');
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

function kindsInside(root: number): Set<number> {
  const kinds = new Set<number>();
  const stack = [root];
  const children: number[] = [];
  while (stack.length > 0) {
    const e = stack.pop()!;
    children.length = 0;
    kinds.add(pushChildren(e, children));
    stack.push(...children);
  }
  return kinds;
}

/** The loop of the function that has no loop inside it: the guest's own loop after the rewrite. */
function innermostLoop(root: number): number | undefined {
  const stack = [root];
  let found: number | undefined;
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (binaryen.getExpressionId(e) === binaryen.LoopId) found = e;
    const children: number[] = [];
    pushChildren(e, children);
    stack.push(...children);
  }
  return found;
}

describe('loop preemption points', () => {
  for (const loopType of ['none', 'i32'] as const) {
    it(`keep global accesses and calls out of the loop (loop type ${loopType})`, () => {
      const { bytes } = rewriteModule(spinModule(loopType), { preemption: true, capturable: false });
      const m = binaryen.readBinary(bytes);
      try {
        const fn = binaryen.getFunctionInfo(m.getFunction(binaryen.getExportInfo(m.getExport('spin')).value));
        const loop = innermostLoop(fn.body);
        expect(loop).toBeDefined();
        const kinds = kindsInside(loop!);
        for (const id of [binaryen.CallId, binaryen.GlobalGetId, binaryen.GlobalSetId]) expect(kinds.has(id)).toBe(false);
        expect(kinds.has(binaryen.LocalSetId)).toBe(true); // the credit
      } finally {
        m.dispose();
      }
    });

    it(`reach the preemption point at least once per budget and return the same result (loop type ${loopType})`, () => {
      const { bytes } = rewriteModule(spinModule(loopType), { preemption: true, capturable: false });
      const budget = 1000,
        n = 200_000;
      let calls = 0;
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), {
        tsvisor: {
          preempt: () => {
            calls++;
            return budget;
          },
          take_interrupt: () => -1,
          iret: () => {},
        },
      });
      expect((inst.exports.spin as (n: number) => number)(n)).toBe(n);
      // Every iteration costs at least one unit of fuel, so n iterations exhaust n / budget budgets.
      expect(calls).toBeGreaterThanOrEqual(Math.floor(n / budget));
    });
  }
});
