/**
 * Preemption points: at every function entry and loop header the rewritten code spends fuel from
 * a per-instance budget (a mutable global, so one per VP) and calls the preemption point when it
 * runs out. A loop is charged by the size of its body, a function entry by the size of its
 * straight-line part, so fuel approximates work done and the interval between checks does not
 * depend on how the guest's compiler shaped its loops. A function entry spends from the global
 * directly. A loop header spends from a credit local of its function, which it buys from the
 * global LOOP_PREPAY iterations at a time outside the loop, so the loop itself holds no global
 * access and no call (a call inside a loop keeps V8 from unrolling it; that, not the arithmetic,
 * made the check cost up to 2x in tight loops).
 *
 * The global is charged before the work it pays for, never after: a return, return_call,
 * exception or trap can only leave unspent credit behind (at most MAX_CHARGE per frame), which
 * makes the next preemption come earlier, never later. Credit held by the frames on the stack
 * when the budget is refilled (at most MAX_CHARGE each) is spent in the next interval.
 *
 * Why not binaryen's log-execution pass: it also instruments every return and calls an import
 * per point; measured on a recursive kernel it cost 2.7-2.9x.
 */
import binaryen from 'binaryen';
import { pushChildren } from './expression-children.ts';

/** Setters binaryen.js has but its typings omit (index.js: Loop.setBody, Function.setBody). */
const setters = binaryen as unknown as {
  Loop: { setBody(loop: number, body: number): void; setName(loop: number, name: string): void };
  Function: { setBody(fn: number, body: number): void };
};
/** The C API's BinaryenFunctionAddVar, which binaryen.js exports but does not wrap; returns the new local's index. */
const addVar = (fn: number, type: number): number =>
  (binaryen as unknown as { _BinaryenFunctionAddVar(fn: number, type: number): number })._BinaryenFunctionAddVar(fn, type);

/** Fuel charged per check is capped so that one huge loop body cannot swallow a whole budget. */
const MAX_CHARGE = 4096;

/** Iterations of a loop paid from the global at once (see restructure). */
const LOOP_PREPAY = 16;

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
  const spendGlobal = (amount: number) =>
    m.block(
      null,
      [
        m.global.set(fuel, m.i32.sub(m.global.get(fuel, binaryen.i32), m.i32.const(amount))),
        m.if(m.i32.lt_s(m.global.get(fuel, binaryen.i32), m.i32.const(0)), m.call(slowPath, [], binaryen.none)),
      ],
      binaryen.none,
    );
  // A loop header spends from the function's credit local (a register once compiled). When the
  // credit runs out it branches out of the loop: buying more credit from the global, and the
  // preemption point's call, sit outside it, so V8 still sees a call-free innermost loop.
  let labels = 0;
  const restructure = (loop: number, credit: number, cost: number) => {
    const info = binaryen.getExpressionInfo(loop) as binaryen.LoopInfo;
    const type = info.type;
    const n = labels++;
    const restart = `__tsvisor_restart${n}`,
      outOfFuel = `__tsvisor_oof${n}`,
      done = `__tsvisor_done${n}`;
    const prepay = Math.min(cost * LOOP_PREPAY, MAX_CHARGE);
    const check = m.br(
      outOfFuel,
      m.i32.lt_s(m.local.tee(credit, m.i32.sub(m.local.get(credit, binaryen.i32), m.i32.const(cost)), binaryen.i32), m.i32.const(0)),
    );
    const inner = m.loop(info.name, m.block(null, [check, info.body], binaryen.getExpressionType(info.body)));
    const refill = [m.local.set(credit, m.i32.add(m.local.get(credit, binaryen.i32), m.i32.const(prepay + cost))), spendGlobal(prepay), m.br(restart)];
    let body: number;
    if (type === binaryen.unreachable) body = m.block(null, [m.block(outOfFuel, [inner], binaryen.none), ...refill], binaryen.unreachable);
    else if (type === binaryen.none) body = m.block(done, [m.block(outOfFuel, [inner, m.br(done)], binaryen.none), ...refill], binaryen.none);
    else body = m.block(done, [m.block(outOfFuel, [m.br(done, 0, inner)], binaryen.none), ...refill], type);
    setters.Loop.setName(loop, restart);
    setters.Loop.setBody(loop, body);
  };
  const withCheck = (check: number, body: number) => m.block(null, [check, body], binaryen.getExpressionType(body));
  let functions = 0,
    loops = 0;
  const targets: number[] = [];
  for (let i = 0, n = m.getNumFunctions(); i < n; i++) targets.push(m.getFunctionByIndex(i));
  for (const fn of targets) {
    const info = binaryen.getFunctionInfo(fn);
    if (info.module || !info.body || skip.has(info.name)) continue;
    // A body that is itself a loop (binaryen drops the block around a lone loop) is charged as one.
    const top = binaryen.getExpressionId(info.body) === binaryen.LoopId ? { cost: 1, loops: [info.body] } : measure(info.body);
    const pending = top.loops;
    const charged: [number, number, number][] = [];
    while (pending.length > 0) {
      const loop = pending.pop()!;
      const body = (binaryen.getExpressionInfo(loop) as binaryen.LoopInfo).body;
      const inner = measure(body);
      charged.push([loop, body, Math.min(inner.cost, MAX_CHARGE)]);
      for (const l of inner.loops) pending.push(l);
    }
    if (charged.length > 0) {
      const credit = addVar(fn, binaryen.i32); // zero at entry: the first header buys
      for (const [loop, , cost] of charged) restructure(loop, credit, cost);
    }
    setters.Function.setBody(fn, withCheck(spendGlobal(Math.min(top.cost, MAX_CHARGE)), info.body));
    functions++;
    loops += charged.length;
  }
  return { functions, loops };
}
