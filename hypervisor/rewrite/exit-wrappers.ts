/**
 * Interrupt delivery inside Wasm. Each exit import is replaced by a function of the module that
 * calls the import and then, if the host raised the interrupt flag, runs the delivery loop, which
 * calls the image's interrupt handler directly. So no JavaScript frame ever sits between two Wasm
 * frames: the whole stack of a VP is Wasm, which is what Asyncify needs to unwind it (a JS frame
 * in the middle cannot be unwound or rewound; reference: binaryen Asyncify documentation).
 */
import binaryen from 'binaryen';
import { IRET_IMPORT, REWRITE_MODULE, TAKE_INTERRUPT_IMPORT } from './rewrite-abi.ts';

/** Exits after which no interrupt can be pending for delivery: cli masks, panic never returns. */
const NOT_DELIVERY_POINTS = new Set(['cli', 'panic']);

export const DELIVER_FN = '__tsvisor_deliver';

/** Adds the delivery loop: take a vector, run the handler with interrupts masked, iret, repeat. */
export function addDeliveryLoop(m: binaryen.Module): string {
  const take = '__tsvisor_take_interrupt';
  const iret = '__tsvisor_iret';
  m.addFunctionImport(take, REWRITE_MODULE, TAKE_INTERRUPT_IMPORT, binaryen.none, binaryen.i32);
  m.addFunctionImport(iret, REWRITE_MODULE, IRET_IMPORT, binaryen.none, binaryen.none);
  const handler = interruptHandler(m);
  const v = 0;
  const body = m.loop(
    'deliver',
    m.block(null, [
      m.local.set(v, m.call(take, [], binaryen.i32)),
      m.if(
        m.i32.ge_s(m.local.get(v, binaryen.i32), m.i32.const(0)),
        m.block(null, [handler ? callHandler(m, handler, m.local.get(v, binaryen.i32)) : m.nop(), m.call(iret, [], binaryen.none), m.br('deliver')]),
      ),
    ]),
  );
  m.addFunction(DELIVER_FN, binaryen.none, binaryen.none, [binaryen.i32], body);
  return DELIVER_FN;
}

function callHandler(m: binaryen.Module, handler: { name: string; results: number }, vector: number): number {
  const call = m.call(handler.name, [vector], handler.results);
  return handler.results === binaryen.none ? call : m.drop(call);
}

/** The function behind the `interrupt` export, if it takes one i32 (docs/guest-abi.md). */
function interruptHandler(m: binaryen.Module): { name: string; results: number } | null {
  const exp = m.getExport('interrupt');
  if (!exp) return null;
  const info = binaryen.getExportInfo(exp);
  if (info.kind !== binaryen.ExternalFunction) return null;
  const fn = binaryen.getFunctionInfo(m.getFunction(info.value));
  if (fn.params !== binaryen.i32 || binaryen.expandType(fn.results).length > 1) return null;
  return { name: fn.name, results: fn.results };
}

/**
 * Replaces each `hv` function import that is a delivery point by a wrapper of the same internal
 * name (so every call site now calls the wrapper) around a fresh import of the same field.
 */
export function wrapExits(m: binaryen.Module, irqFlag: string, deliver: string): string[] {
  const imports: binaryen.FunctionInfo[] = [];
  for (let i = 0, n = m.getNumFunctions(); i < n; i++) {
    const info = binaryen.getFunctionInfo(m.getFunctionByIndex(i));
    if (info.module === 'hv' && !NOT_DELIVERY_POINTS.has(info.base!)) imports.push(info);
  }
  for (const info of imports) {
    const inner = `${info.name}$exit`;
    m.removeFunction(info.name);
    m.addFunctionImport(inner, 'hv', info.base!, info.params, info.results);
    const params = binaryen.expandType(info.params);
    const args = params.map((t, k) => m.local.get(k, t));
    const deliverIfPending = m.if(m.global.get(irqFlag, binaryen.i32), m.call(deliver, [], binaryen.none));
    let body: number;
    if (info.results === binaryen.none) {
      body = m.block(null, [m.call(inner, args, binaryen.none), deliverIfPending]);
    } else {
      const tmp = params.length;
      body = m.block(null, [m.local.set(tmp, m.call(inner, args, info.results)), deliverIfPending, m.local.get(tmp, info.results)], info.results);
    }
    m.addFunction(info.name, info.params, info.results, info.results === binaryen.none ? [] : [info.results], body);
  }
  return imports.map((i) => i.name);
}
