/**
 * The load-time rewrite of a guest image (binaryen.js, synchronous): preemption points and
 * interrupt delivery from Wasm. Runs in the rewrite worker (rewrite-worker.ts), never on a thread
 * that must stay responsive: binaryen cannot be interrupted, only its thread terminated.
 * Input is a module V8 has already accepted (image-loader.ts compiles it first), so binaryen
 * only ever parses valid WebAssembly.
 */
import binaryen from 'binaryen';
import { addDeliveryLoop, wrapExits } from './exit-wrappers.ts';
import { insertPreemptionPoints } from './preemption-points.ts';
import { GLOBAL_EXPORT_PREFIX, IRQ_FLAG_EXPORT, PREEMPT_IMPORT, REWRITE_MODULE, type RewriteOptions } from './rewrite-abi.ts';

export interface RewriteReport {
  functions: number;
  loops: number;
  exits: number;
}

const FUEL = '__tsvisor_fuel';
const IRQ = '__tsvisor_irq';
const PREEMPT = '__tsvisor_preempt';
const PREEMPT_POINT = '__tsvisor_preempt_point';

export function rewriteModule(bytes: Uint8Array, opts: RewriteOptions): { bytes: Uint8Array; report: RewriteReport } {
  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(binaryen.Features.All);
    for (let i = 0, n = m.getNumFunctions(); i < n; i++) {
      if (binaryen.getFunctionInfo(m.getFunctionByIndex(i)).module === REWRITE_MODULE) {
        throw new Error(`the image imports from "${REWRITE_MODULE}", a module name reserved for the hypervisor`);
      }
    }
    if (m.getExport(IRQ_FLAG_EXPORT)) throw new Error(`the image exports "${IRQ_FLAG_EXPORT}", a name reserved for the hypervisor`);
    const report: RewriteReport = { functions: 0, loops: 0, exits: 0 };
    if (opts.preemption) {
      m.addGlobal(FUEL, binaryen.i32, true, m.i32.const(0)); // empty: the first check asks the host for a budget
      m.addGlobal(IRQ, binaryen.i32, true, m.i32.const(0));
      m.addGlobalExport(IRQ, IRQ_FLAG_EXPORT);
      const deliver = addDeliveryLoop(m);
      const wrappers = wrapExits(m, IRQ, deliver);
      report.exits = wrappers.length;
      m.addFunctionImport(PREEMPT, REWRITE_MODULE, PREEMPT_IMPORT, binaryen.none, binaryen.i32);
      m.addFunction(
        PREEMPT_POINT,
        binaryen.none,
        binaryen.none,
        [],
        m.block(null, [m.global.set(FUEL, m.call(PREEMPT, [], binaryen.i32)), m.if(m.global.get(IRQ, binaryen.i32), m.call(deliver, [], binaryen.none))]),
      );
      // The rewrite's own functions run bounded work: they need no fuel checks of their own.
      const own = new Set([PREEMPT_POINT, deliver, ...wrappers]);
      const points = insertPreemptionPoints(m, FUEL, PREEMPT_POINT, own);
      report.functions = points.functions;
      report.loops = points.loops;
      if (opts.capturable)
        makeCapturable(
          m,
          wrappers.map((w) => binaryen.getFunctionInfo(m.getFunction(`${w}$exit`)).base!),
        );
    }
    if (!validate(m)) throw new Error('the rewritten module does not validate (a rewriter bug; run the image with rewriting off)');
    return { bytes: m.emitBinary(), report };
  } finally {
    m.dispose();
  }
}

/**
 * Asyncify (binaryen's pass) on the preemption point and the exits, so a VP parked in one of
 * them can unwind its stack into a buffer and be rewound; mutable globals are exported so they
 * can be saved with it (Asyncify's buffer holds only locals and the call chain).
 */
function makeCapturable(m: binaryen.Module, exitFields: string[]): void {
  const imports = [`${REWRITE_MODULE}.${PREEMPT_IMPORT}`, ...exitFields.map((f) => `hv.${f}`)];
  binaryen.setPassArgument('asyncify-imports', imports.join(','));
  try {
    m.runPasses(['asyncify']);
  } finally {
    binaryen.setPassArgument('asyncify-imports', null);
  }
  // Asyncify's own state and data pointer are not the guest's: a rewind sets them afresh. The
  // interrupt flag is raised again by the host after a rewind when a vector is pending.
  for (let i = 0, n = m.getNumGlobals(); i < n; i++) {
    const g = binaryen.getGlobalInfo(m.getGlobalByIndex(i));
    if (!g.mutable || g.module || g.name === IRQ || g.name.startsWith('__asyncify')) continue;
    const type = GLOBAL_TYPES.get(g.type);
    if (!type) throw new Error(`the image has a mutable global of a type a saved state cannot hold (${g.name})`);
    m.addGlobalExport(g.name, `${GLOBAL_EXPORT_PREFIX}${i}_${type}`);
  }
}

const GLOBAL_TYPES = new Map<number, string>([
  [binaryen.i32, 'i32'],
  [binaryen.i64, 'i64'],
  [binaryen.f32, 'f32'],
  [binaryen.f64, 'f64'],
]);

/** binaryen prints validation errors on stdout; keep them off the host's console. */
function validate(m: binaryen.Module): boolean {
  const log = console.log,
    error = console.error;
  console.log = console.error = () => {};
  try {
    return m.validate() !== 0;
  } finally {
    console.log = log;
    console.error = error;
  }
}
