/**
 * Recursive-descent WQL parser (WMI WQL; precedence NOT > AND > OR as in SQL). Covers SELECT with
 * projections and WHERE, intrinsic event queries with WITHIN, and ASSOCIATORS OF / REFERENCES OF
 * whose WHERE keywords are not joined by AND (WMI "ASSOCIATORS OF Statement").
 */
import {
  WqlEventClasses,
  type WqlAssociatorsQuery,
  type WqlComparisonOperator,
  type WqlEventClass,
  type WqlExpression,
  type WqlOperand,
  type WqlPropertyRef,
  type WqlQuery,
  type WqlReferencesQuery,
} from './ast.ts';
import { tokenize, type WqlToken } from './lexer.ts';
import { WqlSyntaxError } from './syntax-error.ts';

const RESERVED = new Set(['select', 'from', 'where', 'and', 'or', 'not', 'like', 'is', 'null', 'isa', 'within', 'true', 'false', 'of']);
const UNSUPPORTED = new Set(['group', 'having', 'by', 'order', 'join']);

/**
 * Deepest nesting of parentheses and NOT a WHERE clause may have. The parser and the evaluator
 * recurse once per level, so without a bound `NOT NOT … NOT` or `((((…))))` a few thousand deep
 * overflows the stack; 64 is far beyond any hand-written or generated query. Chains of AND / OR
 * are not nesting: they are read and evaluated in a loop.
 */
export const MAX_WQL_NESTING = 64;

/** Parse one WQL statement; throws WqlSyntaxError with the position of the offending token. */
export function parseWql(text: string): WqlQuery {
  return new WqlParser(tokenize(text)).query();
}

class WqlParser {
  private at = 0;
  private depth = 0;
  private readonly tokens: readonly WqlToken[];

  constructor(tokens: readonly WqlToken[]) {
    this.tokens = tokens;
  }

  query(): WqlQuery {
    let q: WqlQuery;
    if (this.acceptKeyword('select')) q = this.select();
    else if (this.acceptKeyword('associators')) q = this.associators();
    else if (this.acceptKeyword('references')) q = this.references();
    else throw this.error('expected SELECT, ASSOCIATORS OF or REFERENCES OF');
    if (this.peek().kind !== 'end') throw this.error('expected end of query');
    return q;
  }

  private select(): WqlQuery {
    const properties = this.projection();
    this.expectKeyword('from');
    const classToken = this.peek();
    const className = this.identifier('class name');
    const eventClass = WqlEventClasses.find((e) => e.toLowerCase() === className.toLowerCase());
    let within: number | null = null;
    if (this.acceptKeyword('within')) {
      if (!eventClass) throw new WqlSyntaxError('WITHIN applies only to intrinsic event queries', classToken.position);
      const t = this.next();
      if (t.kind !== 'number' || !(Number(t.text) > 0)) throw new WqlSyntaxError('WITHIN needs a positive number of seconds', t.position);
      within = Number(t.text);
    }
    const where = this.acceptKeyword('where') ? this.expression() : null;
    if (eventClass) return { kind: 'event', properties, eventClass: eventClass as WqlEventClass, within, where };
    return { kind: 'select', properties, className, where };
  }

  private projection(): string[] | null {
    if (this.acceptOperator('*')) return null;
    const names = [this.propertyRef().path.join('.')];
    while (this.acceptOperator(',')) names.push(this.propertyRef().path.join('.'));
    return names;
  }

  private associators(): WqlAssociatorsQuery {
    this.expectKeyword('of');
    const objectPath = this.path();
    const k = this.keywords(['AssocClass', 'ResultClass', 'Role', 'ResultRole', 'RequiredQualifier', 'RequiredAssocQualifier'], ['ClassDefsOnly', 'KeysOnly']);
    return {
      kind: 'associators',
      objectPath,
      assocClass: k.get('assocclass') ?? null,
      resultClass: k.get('resultclass') ?? null,
      role: k.get('role') ?? null,
      resultRole: k.get('resultrole') ?? null,
      requiredQualifier: k.get('requiredqualifier') ?? null,
      requiredAssocQualifier: k.get('requiredassocqualifier') ?? null,
      classDefsOnly: k.has('classdefsonly'),
      keysOnly: k.has('keysonly'),
    };
  }

  private references(): WqlReferencesQuery {
    this.expectKeyword('of');
    const objectPath = this.path();
    const k = this.keywords(['ResultClass', 'Role', 'RequiredQualifier'], ['ClassDefsOnly', 'KeysOnly']);
    return {
      kind: 'references',
      objectPath,
      resultClass: k.get('resultclass') ?? null,
      role: k.get('role') ?? null,
      requiredQualifier: k.get('requiredqualifier') ?? null,
      classDefsOnly: k.has('classdefsonly'),
      keysOnly: k.has('keysonly'),
    };
  }

  private path(): string {
    const t = this.next();
    if (t.kind !== 'path') throw new WqlSyntaxError('expected {object path}', t.position);
    if (t.text === '') throw new WqlSyntaxError('empty {object path}', t.position);
    return t.text;
  }

  /** `WHERE Kw = value Kw2 = value Flag …` (WMI: the keywords are not joined by AND). */
  private keywords(valued: readonly string[], flags: readonly string[]): Map<string, string> {
    const found = new Map<string, string>();
    if (!this.acceptKeyword('where')) return found;
    do {
      const t = this.next();
      const lower = t.text.toLowerCase();
      if (t.kind !== 'identifier') throw new WqlSyntaxError(`expected one of ${[...valued, ...flags].join(', ')}`, t.position);
      if (found.has(lower)) throw new WqlSyntaxError(`${t.text} given twice`, t.position);
      if (valued.some((v) => v.toLowerCase() === lower)) {
        this.expectOperator('=');
        const v = this.next();
        if (v.kind !== 'identifier' && v.kind !== 'string') throw new WqlSyntaxError(`${t.text} needs a name`, v.position);
        found.set(lower, v.text);
      } else if (flags.some((f) => f.toLowerCase() === lower)) {
        found.set(lower, '');
      } else {
        throw new WqlSyntaxError(`unknown keyword ${t.text}; expected one of ${[...valued, ...flags].join(', ')}`, t.position);
      }
    } while (this.peek().kind !== 'end');
    if (found.size === 0) throw this.error('WHERE needs at least one keyword');
    return found;
  }

  private expression(): WqlExpression {
    let left = this.conjunction();
    while (this.acceptKeyword('or')) left = { kind: 'or', left, right: this.conjunction() };
    return left;
  }

  private conjunction(): WqlExpression {
    let left = this.negation();
    while (this.acceptKeyword('and')) left = { kind: 'and', left, right: this.negation() };
    return left;
  }

  private negation(): WqlExpression {
    if (this.peekKeyword('not')) {
      this.nest();
      this.next();
      const operand = this.negation();
      this.depth--;
      return { kind: 'not', operand };
    }
    return this.predicate();
  }

  private predicate(): WqlExpression {
    if (this.peek().kind === 'operator' && this.peek().text === '(') {
      this.nest();
      this.next();
      const inner = this.expression();
      this.expectOperator(')');
      this.depth--;
      return inner;
    }
    const left = this.operand();
    if (this.acceptKeyword('isa')) {
      if (left.kind !== 'property') throw this.error('ISA needs a property on its left');
      const t = this.next();
      if (t.kind !== 'string' && t.kind !== 'identifier') throw new WqlSyntaxError('ISA needs a class name', t.position);
      return { kind: 'isa', operand: left, className: t.text };
    }
    if (this.acceptKeyword('is')) {
      const negated = this.acceptKeyword('not');
      this.expectKeyword('null');
      return { kind: 'isNull', operand: left, negated };
    }
    const notLike = this.peekKeyword('not') && this.peekKeyword('like', 1);
    if (notLike) this.next();
    if (this.acceptKeyword('like')) {
      const t = this.next();
      if (t.kind !== 'string') throw new WqlSyntaxError('LIKE needs a string pattern', t.position);
      return { kind: 'like', operand: left, pattern: t.text, negated: notLike };
    }
    const op = this.peek();
    if (op.kind !== 'operator' || !['=', '!=', '<>', '<', '>', '<=', '>='].includes(op.text)) {
      throw this.error('expected a comparison operator, LIKE, IS or ISA');
    }
    this.next();
    const operator = (op.text === '!=' ? '<>' : op.text) as WqlComparisonOperator;
    return { kind: 'compare', operator, left, right: this.operand() };
  }

  /** One more level of NOT or parentheses, refused beyond MAX_WQL_NESTING. */
  private nest(): void {
    if (++this.depth > MAX_WQL_NESTING) {
      throw new WqlSyntaxError(`conditions nested more than ${MAX_WQL_NESTING} deep (NOT and parentheses)`, this.peek().position);
    }
  }

  private operand(): WqlOperand {
    const t = this.peek();
    if (t.kind === 'string') {
      this.next();
      return { kind: 'literal', value: t.text };
    }
    if (t.kind === 'number') {
      this.next();
      return { kind: 'literal', value: Number(t.text) };
    }
    if (this.acceptKeyword('true')) return { kind: 'literal', value: true };
    if (this.acceptKeyword('false')) return { kind: 'literal', value: false };
    if (this.acceptKeyword('null')) return { kind: 'literal', value: null };
    return this.propertyRef();
  }

  private propertyRef(): WqlPropertyRef {
    const path = [this.identifier('property name')];
    while (this.acceptOperator('.')) path.push(this.identifier('property name'));
    return { kind: 'property', path };
  }

  private identifier(what: string): string {
    const t = this.peek();
    if (t.kind !== 'identifier' || RESERVED.has(t.text.toLowerCase())) throw this.error(`expected ${what}`);
    this.next();
    return t.text;
  }

  private peek(offset = 0): WqlToken {
    return this.tokens[Math.min(this.at + offset, this.tokens.length - 1)]!;
  }

  private next(): WqlToken {
    const t = this.peek();
    if (this.at < this.tokens.length - 1) this.at++;
    return t;
  }

  private peekKeyword(word: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'identifier' && t.text.toLowerCase() === word;
  }

  private acceptKeyword(word: string): boolean {
    if (!this.peekKeyword(word)) return false;
    this.next();
    return true;
  }

  private expectKeyword(word: string): void {
    if (!this.acceptKeyword(word)) throw this.error(`expected ${word.toUpperCase()}`);
  }

  private acceptOperator(op: string): boolean {
    const t = this.peek();
    if (t.kind !== 'operator' || t.text !== op) return false;
    this.next();
    return true;
  }

  private expectOperator(op: string): void {
    if (!this.acceptOperator(op)) throw this.error(`expected ${op}`);
  }

  private error(message: string): WqlSyntaxError {
    const t = this.peek();
    if (t.kind === 'identifier' && UNSUPPORTED.has(t.text.toLowerCase())) {
      return new WqlSyntaxError(`${t.text.toUpperCase()} is not supported`, t.position);
    }
    const found = t.kind === 'end' ? 'end of query' : JSON.stringify(t.text);
    return new WqlSyntaxError(`${message}, found ${found}`, t.position);
  }
}
