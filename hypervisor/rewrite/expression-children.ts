/**
 * Where binaryen's expression info keeps each kind's child expressions. binaryen.js has no
 * generic child iterator, and the same field name means an expression for one kind and a number
 * for another (`offset`, `index`, `value`), so the table is per kind. A kind missing from the
 * table is refused: a loop hidden inside it would escape the preemption points.
 * Source: binaryen.js index.d.ts (the *Info interfaces) for the version pinned in package.json.
 */
import binaryen from 'binaryen';

const b = binaryen as unknown as Record<string, number>;

const FIELDS: [string, string[]][] = [
  ['Block', ['children']],
  ['If', ['condition', 'ifTrue', 'ifFalse']],
  ['Loop', ['body']],
  ['Break', ['condition', 'value']],
  ['Switch', ['condition', 'value']],
  ['Call', ['operands']],
  ['CallIndirect', ['target', 'operands']],
  ['LocalGet', []],
  ['LocalSet', ['value']],
  ['GlobalGet', []],
  ['GlobalSet', ['value']],
  ['Load', ['ptr']],
  ['Store', ['ptr', 'value']],
  ['Const', []],
  ['Unary', ['value']],
  ['Binary', ['left', 'right']],
  ['Select', ['ifTrue', 'ifFalse', 'condition']],
  ['Drop', ['value']],
  ['Return', ['value']],
  ['MemorySize', []],
  ['MemoryGrow', ['delta']],
  ['Nop', []],
  ['Unreachable', []],
  ['AtomicRMW', ['ptr', 'value']],
  ['AtomicCmpxchg', ['ptr', 'expected', 'replacement']],
  ['AtomicWait', ['ptr', 'expected', 'timeout']],
  ['AtomicNotify', ['ptr', 'notifyCount']],
  ['AtomicFence', []],
  ['SIMDExtract', ['vec']],
  ['SIMDReplace', ['vec', 'value']],
  ['SIMDShuffle', ['left', 'right']],
  ['SIMDTernary', ['a', 'b', 'c']],
  ['SIMDShift', ['vec', 'shift']],
  ['SIMDLoad', ['ptr']],
  ['SIMDLoadStoreLane', ['ptr', 'vec']],
  ['MemoryInit', ['dest', 'offset', 'size']],
  ['DataDrop', []],
  ['MemoryCopy', ['dest', 'source', 'size']],
  ['MemoryFill', ['dest', 'value', 'size']],
  ['Pop', []],
  ['RefNull', []],
  ['RefIsNull', ['value']],
  ['RefFunc', []],
  ['RefEq', ['left', 'right']],
  ['RefAs', ['value']],
  ['TableGet', ['index']],
  ['TableSet', ['index', 'value']],
  ['TableSize', []],
  ['TableGrow', ['value', 'delta']],
  ['Try', ['body', 'catchBodies']],
  ['Throw', ['operands']],
  ['Rethrow', []],
  ['TupleMake', ['operands']],
  ['TupleExtract', ['tuple']],
  ['RefI31', ['value']],
  ['I31Get', ['i31']],
];

const CHILD_FIELDS = new Map<number, string[]>();
for (const [kind, fields] of FIELDS) {
  const id = b[`${kind}Id`];
  if (typeof id === 'number') CHILD_FIELDS.set(id, fields);
}

/** Pushes the children of `expr` onto `out`; throws on a kind the rewriter does not know. */
export function pushChildren(expr: number, out: number[]): number {
  const id = binaryen.getExpressionId(expr);
  const fields = CHILD_FIELDS.get(id);
  if (!fields) throw new Error(`instruction kind ${id} is not supported by the rewriter`);
  if (fields.length === 0) return id;
  const info = binaryen.getExpressionInfo(expr) as unknown as Record<string, number | number[]>;
  for (const f of fields) {
    const v = info[f];
    if (Array.isArray(v)) {
      for (const c of v) if (c) out.push(c);
    } else if (v) out.push(v);
  }
  return id;
}
