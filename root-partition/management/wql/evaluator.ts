/**
 * WHERE-clause evaluation with SQL three-valued logic: a comparison involving NULL is unknown,
 * and only a clause that is TRUE selects (WMI WQL follows SQL here). String comparison and LIKE
 * are case-insensitive, as WMI's are; a number compared with a numeric string compares as numbers.
 */
import { CimInstance } from '../cim/instance.ts';
import { isObjectPath, parseObjectPath, sameObjectPath } from '../cim/object-path.ts';
import type { CimValue } from '../cim/types.ts';
import type { WqlComparisonOperator, WqlExpression, WqlOperand } from './ast.ts';

export type WqlTruth = boolean | null;

export interface WqlContext {
  /** The value at a property path; undefined when the property does not exist. */
  resolve(path: readonly string[]): CimValue | undefined;
  /** DSP0004 ISA between class names. */
  isa(className: string, ancestor: string): boolean;
}

/** Does the WHERE clause select this row? (null clause: yes). */
export function whereMatches(where: WqlExpression | null, context: WqlContext): boolean {
  return where === null || evaluate(where, context) === true;
}

export function evaluate(expr: WqlExpression, context: WqlContext): WqlTruth {
  switch (expr.kind) {
    case 'and': {
      const l = evaluate(expr.left, context);
      if (l === false) return false;
      const r = evaluate(expr.right, context);
      if (r === false) return false;
      return l === null || r === null ? null : true;
    }
    case 'or': {
      const l = evaluate(expr.left, context);
      if (l === true) return true;
      const r = evaluate(expr.right, context);
      if (r === true) return true;
      return l === null || r === null ? null : false;
    }
    case 'not': {
      const v = evaluate(expr.operand, context);
      return v === null ? null : !v;
    }
    case 'isNull': {
      const v = operandValue(expr.operand, context);
      const isNull = v === null || v === undefined;
      return expr.negated ? !isNull : isNull;
    }
    case 'isa': {
      const v = operandValue(expr.operand, context);
      if (v instanceof CimInstance) return context.isa(v.className, expr.className);
      if (isObjectPath(v)) return context.isa(v.className, expr.className);
      return v === null || v === undefined ? null : false;
    }
    case 'like': {
      const v = operandValue(expr.operand, context);
      if (v === null || v === undefined) return null;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'bigint') return null;
      const m = likePattern(expr.pattern).test(String(v));
      return expr.negated ? !m : m;
    }
    case 'compare':
      return compare(expr.operator, operandValue(expr.left, context), operandValue(expr.right, context));
  }
}

function operandValue(operand: WqlOperand, context: WqlContext): CimValue | undefined {
  return operand.kind === 'literal' ? operand.value : context.resolve(operand.path);
}

/**
 * WQL LIKE (WMI): % any run, _ one character, [abc] / [a-z] a set, [^…] its complement;
 * everything else literal; case-insensitive.
 */
export function likePattern(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

type Ordered = { kind: 'number'; n: number; big?: bigint } | { kind: 'string'; s: string } | { kind: 'boolean'; b: boolean };

function compare(op: WqlComparisonOperator, left: CimValue | undefined, right: CimValue | undefined): WqlTruth {
  if (left === null || left === undefined || right === null || right === undefined) return null;
  if (Array.isArray(left) || Array.isArray(right)) return null;
  if (left instanceof CimInstance || right instanceof CimInstance) return null;
  if (isObjectPath(left) || isObjectPath(right)) {
    if (op !== '=' && op !== '<>') return null;
    const a = isObjectPath(left) ? left : tryPath(String(left));
    const b = isObjectPath(right) ? right : tryPath(String(right));
    if (!a || !b) return op === '<>';
    return sameObjectPath(a, b) === (op === '=');
  }
  const [a, b] = unify(left, right);
  let order: number;
  if (a.kind === 'number' && b.kind === 'number') {
    order = a.big !== undefined && b.big !== undefined ? Number(a.big > b.big) - Number(a.big < b.big) : Math.sign(a.n - b.n);
    if (Number.isNaN(order)) return op === '<>';
  } else if (a.kind === 'boolean' && b.kind === 'boolean') {
    order = Number(a.b) - Number(b.b);
  } else {
    const x = text(a).toLowerCase();
    const y = text(b).toLowerCase();
    order = x < y ? -1 : x > y ? 1 : 0;
  }
  switch (op) {
    case '=': return order === 0;
    case '<>': return order !== 0;
    case '<': return order < 0;
    case '>': return order > 0;
    case '<=': return order <= 0;
    case '>=': return order >= 0;
  }
}

function tryPath(s: string) {
  try {
    return parseObjectPath(s);
  } catch {
    return null;
  }
}

function ordered(v: string | number | bigint | boolean): Ordered {
  if (typeof v === 'bigint') return { kind: 'number', n: Number(v), big: v };
  if (typeof v === 'number') return { kind: 'number', n: v, ...(Number.isInteger(v) ? { big: BigInt(v) } : {}) };
  if (typeof v === 'boolean') return { kind: 'boolean', b: v };
  return { kind: 'string', s: v };
}

/** Bring a number and a numeric string (or a boolean and TRUE/FALSE) to one kind. */
function unify(l: CimValue, r: CimValue): [Ordered, Ordered] {
  let a = ordered(l as string | number | bigint | boolean);
  let b = ordered(r as string | number | bigint | boolean);
  const numeric = /^\s*[+-]?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/;
  if (a.kind === 'number' && b.kind === 'string' && numeric.test(b.s)) b = ordered(parseNumber(b.s));
  if (b.kind === 'number' && a.kind === 'string' && numeric.test(a.s)) a = ordered(parseNumber(a.s));
  if (a.kind === 'boolean' && b.kind === 'string' && /^(true|false)$/i.test(b.s)) b = ordered(/^true$/i.test(b.s));
  if (b.kind === 'boolean' && a.kind === 'string' && /^(true|false)$/i.test(a.s)) a = ordered(/^true$/i.test(a.s));
  return [a, b];
}

function parseNumber(s: string): number | bigint {
  const t = s.trim();
  return /^[+-]?\d+$/.test(t) ? BigInt(t) : Number(t);
}

function text(o: Ordered): string {
  return o.kind === 'string' ? o.s : o.kind === 'number' ? String(o.big ?? o.n) : o.b ? 'TRUE' : 'FALSE';
}
