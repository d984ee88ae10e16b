/**
 * WHERE-clause evaluation with SQL three-valued logic: a comparison involving NULL is unknown,
 * and only a clause that is TRUE selects (WMI WQL follows SQL here). String comparison and LIKE
 * are case-insensitive, as WMI's are; a number compared with a numeric string compares as numbers.
 * LIKE is like-pattern.ts (linear, never a regular expression).
 */
import { CimInstance } from '../cim/instance.ts';
import { isObjectPath, parseObjectPath, sameObjectPath } from '../cim/object-path.ts';
import type { CimValue } from '../cim/types.ts';
import type { WqlComparisonOperator, WqlExpression, WqlOperand } from './ast.ts';
import { LikePattern } from './like-pattern.ts';
import type { WqlQueryBudget } from './query-budget.ts';

export type WqlTruth = boolean | null;

export interface WqlContext {
  /** The value at a property path; undefined when the property does not exist. */
  resolve(path: readonly string[]): CimValue | undefined;
  /** DSP0004 ISA between class names. */
  isa(className: string, ancestor: string): boolean;
}

/** Does the WHERE clause select this row? (null clause: yes). Steps are charged to `budget` when given. */
export function whereMatches(where: WqlExpression | null, context: WqlContext, budget?: WqlQueryBudget): boolean {
  return where === null || evaluate(where, context, budget) === true;
}

export function evaluate(expr: WqlExpression, context: WqlContext, budget?: WqlQueryBudget): WqlTruth {
  budget?.charge(1);
  switch (expr.kind) {
    case 'and':
    case 'or': {
      // A chain `a AND b AND c …` is one level here however long it is (the parser builds it
      // left-deep), so its length never turns into stack depth.
      const stop = expr.kind !== 'and';
      let unknown = false;
      for (const operand of chainOperands(expr)) {
        const v = evaluate(operand, context, budget);
        if (v === stop) return stop;
        if (v === null) unknown = true;
      }
      return unknown ? null : !stop;
    }
    case 'not': {
      const v = evaluate(expr.operand, context, budget);
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
      const { matched, steps } = likeOf(expr).match(String(v));
      budget?.charge(steps);
      return expr.negated ? !matched : matched;
    }
    case 'compare':
      return compare(expr.operator, operandValue(expr.left, context), operandValue(expr.right, context), budget);
  }
}

/** The operands of a left-deep chain of one connective, in order, found without recursion. */
export function chainOperands(expr: Extract<WqlExpression, { kind: 'and' | 'or' }>): WqlExpression[] {
  const rights: WqlExpression[] = [];
  let node: WqlExpression = expr;
  while (node.kind === expr.kind) {
    const link = node as Extract<WqlExpression, { kind: 'and' | 'or' }>;
    rights.push(link.right);
    node = link.left;
  }
  rights.push(node);
  return rights.reverse();
}

function operandValue(operand: WqlOperand, context: WqlContext): CimValue | undefined {
  return operand.kind === 'literal' ? operand.value : context.resolve(operand.path);
}

// Patterns are compiled once per parsed clause, not once per row.
const compiledLike = new WeakMap<object, LikePattern>();

function likeOf(expr: Extract<WqlExpression, { kind: 'like' }>): LikePattern {
  let pattern = compiledLike.get(expr);
  if (!pattern) {
    pattern = new LikePattern(expr.pattern);
    compiledLike.set(expr, pattern);
  }
  return pattern;
}

type Ordered = { kind: 'number'; n: number; big?: bigint } | { kind: 'string'; s: string } | { kind: 'boolean'; b: boolean };

function compare(op: WqlComparisonOperator, left: CimValue | undefined, right: CimValue | undefined, budget?: WqlQueryBudget): WqlTruth {
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
    budget?.charge(x.length + y.length);
    order = x < y ? -1 : x > y ? 1 : 0;
  }
  switch (op) {
    case '=':
      return order === 0;
    case '<>':
      return order !== 0;
    case '<':
      return order < 0;
    case '>':
      return order > 0;
    case '<=':
      return order <= 0;
    case '>=':
      return order >= 0;
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
