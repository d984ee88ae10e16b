/**
 * Preemption points: at every function entry and loop header the rewritten code spends fuel from
 * a per-instance budget (a mutable global, so one per VP) and calls the preemption point when it
 * runs out. A loop is charged by the size of its body, a function entry by the size of its
 * straight-line part, so fuel approximates work done and the interval between checks does not
 * depend on how the guest's compiler shaped its loops. The check is inline (five instructions
 * and a branch); only running out leaves the function.
 *
 * Why not binaryen's log-execution pass: it also instruments every return and calls an import
 * per point; measured on a recursive kernel it cost 2.7-2.9x.
 */
import binaryen from 'binaryen';
import { pushChildren } from './expression-children.ts';

/** Setters binaryen.js has but its typings omit (index.js: Loop.setBody, Function.setBody). */
const setters = binaryen as unknown as {
  Loop: { setBody(loop: number, body: number): void };
  Function: { setBody(fn: number, body: number): void };
};

/** Fuel charged per check is capped so that one huge loop body cannot swallow a whole budget. */
const MAX_CHARGE = 4096;

interface Measured {
  cost: number;
  loops: number[];
}

/** Counts the expressions of `root` outside nested loops, and lists those loops. */
function measure(root: number): Measured {
  const stack = [root];
  const loops: number[] = [];
  let cost = 0;
  const children: number[] = [];
  while (stack.length > 0) {
    const expr = stack.pop()!;
    cost++;
    if (expr !== root && binaryen.getExpressionId(expr) === binaryen.LoopId) {
      loops.push(expr);
      continue;
    }
    children.length = 0;
    pushChildren(expr, children);
    for (const c of children) stack.push(c);
  }
  return { cost, loops };
}

export interface PreemptionPoints {
  functions: number;
  loops: number;
}

/**
 * Instruments every function with a body except those in `skip`. `fuel` is the budget global,
 * `slowPath` a function () -> () that refills it (and may deliver interrupts).
 */
export function insertPreemptionPoints(m: binaryen.Module, fuel: string, slowPath: string, skip: Set<string>): PreemptionPoints {
  const check = (cost: number) => m.block(null, [
    m.global.set(fuel, m.i32.sub(m.global.get(fuel, binaryen.i32), m.i32.const(Math.min(cost, MAX_CHARGE)))),
    m.if(m.i32.lt_s(m.global.get(fuel, binaryen.i32), m.i32.const(0)), m.call(slowPath, [], binaryen.none)),
  ], binaryen.none);
  const withCheck = (cost: number, body: number) => m.block(null, [check(cost), body], binaryen.getExpressionType(body));
  let functions = 0, loops = 0;
  const targets: number[] = [];
  for (let i = 0, n = m.getNumFunctions(); i < n; i++) targets.push(m.getFunctionByIndex(i));
  for (const fn of targets) {
    const info = binaryen.getFunctionInfo(fn);
    if (info.module || !info.body || skip.has(info.name)) continue;
    const top = measure(info.body);
    const pending = top.loops;
    const charged: [number, number, number][] = [];
    while (pending.length > 0) {
      const loop = pending.pop()!;
      const body = (binaryen.getExpressionInfo(loop) as binaryen.LoopInfo).body;
      const inner = measure(body);
      charged.push([loop, body, inner.cost]);
      for (const l of inner.loops) pending.push(l);
    }
    for (const [loop, body, cost] of charged) setters.Loop.setBody(loop, withCheck(cost, body));
    setters.Function.setBody(fn, withCheck(top.cost, info.body));
    functions++;
    loops += charged.length;
  }
  return { functions, loops };
}
