/**
 * Running WQL against the object manager (ExecQuery, DSP0200) and subscribing event queries.
 * Syntax errors and unsupported constructs are CIM_ERR_INVALID_QUERY (DSP0200 "Status codes"); an
 * unknown FROM class is CIM_ERR_INVALID_CLASS; a query that runs out of its step budget is
 * CIM_ERR_SERVER_LIMITS_EXCEEDED (query-budget.ts).
 */
import { CimError } from '../cim/errors.ts';
import type { CimInstance } from '../cim/instance.ts';
import type { CimObjectManager } from '../cim/object-manager.ts';
import { parseObjectPath, type CimObjectPath } from '../cim/object-path.ts';
import type { CimInstanceEvent } from '../cim/provider.ts';
import type { CimClass } from '../cim/schema.ts';
import type { WqlExpression, WqlQuery } from './ast.ts';
import { instanceContext } from './contexts.ts';
import { compileEventFilter } from './event-filter.ts';
import { chainOperands, whereMatches } from './evaluator.ts';
import { parseWql } from './parser.ts';
import { WqlQueryBudget } from './query-budget.ts';
import { WqlSyntaxError } from './syntax-error.ts';

export interface WqlRow {
  readonly path: CimObjectPath;
  readonly instance: CimInstance;
}

export type WqlResult = { readonly kind: 'instances'; readonly rows: readonly WqlRow[] } | { readonly kind: 'classes'; readonly classes: readonly CimClass[] };

export function parseQuery(text: string): WqlQuery {
  try {
    return parseWql(text);
  } catch (e) {
    if (e instanceof WqlSyntaxError) throw new CimError('CIM_ERR_INVALID_QUERY', e.message);
    throw e;
  }
}

export interface WqlExecutionOptions {
  /** Evaluation steps one query may take (query-budget.ts); default DEFAULT_QUERY_STEP_LIMIT. */
  readonly stepLimit?: number;
}

export function executeWql(manager: CimObjectManager, text: string, options: WqlExecutionOptions = {}): WqlResult {
  const query = parseQuery(text);
  const { schema } = manager;
  switch (query.kind) {
    case 'event':
      throw new CimError('CIM_ERR_INVALID_QUERY', 'event queries are subscriptions, not ExecQuery');
    case 'select': {
      const cls = schema.requireClass(query.className);
      const known = (name: string) => name.startsWith('__') || cls.properties.some((p) => p.name.toLowerCase() === name.toLowerCase());
      for (const p of query.properties ?? []) {
        const head = p.split('.')[0]!;
        if (!known(head)) throw new CimError('CIM_ERR_INVALID_QUERY', `${cls.name} has no property ${p}`);
      }
      if (query.where)
        forEachProperty(query.where, (head) => {
          if (!known(head)) throw new CimError('CIM_ERR_INVALID_QUERY', `${cls.name} has no property ${head}`);
        });
      const budget = new WqlQueryBudget(options.stepLimit);
      const rows = manager
        .enumerateInstances(cls.name)
        .filter((i) => whereMatches(query.where, instanceContext(i, schema), budget))
        .map((i) => ({ path: manager.pathOf(i), instance: i.project(query.properties) }));
      return { kind: 'instances', rows };
    }
    case 'associators':
    case 'references': {
      let source: CimObjectPath;
      try {
        source = parseObjectPath(query.objectPath);
      } catch (e) {
        throw new CimError('CIM_ERR_INVALID_QUERY', e instanceof Error ? e.message : String(e));
      }
      let results: CimInstance[];
      if (query.kind === 'associators') {
        const q = query.requiredAssocQualifier?.toLowerCase();
        const assocClassTest = q ? (name: string) => classQualifiers(schema.requireClass(name)).has(q) : undefined;
        results = manager.associators(source, { ...query, ...(assocClassTest ? { assocClassTest } : {}) });
      } else {
        results = manager.references(source, query);
      }
      if (query.requiredQualifier) {
        const q = query.requiredQualifier.toLowerCase();
        results = results.filter((r) => classQualifiers(schema.requireClass(r.className)).has(q));
      }
      if (query.classDefsOnly) {
        const classes: CimClass[] = [];
        for (const r of results) {
          const c = schema.requireClass(r.className);
          if (!classes.includes(c)) classes.push(c);
        }
        return { kind: 'classes', classes };
      }
      const rows = results.map((r) => {
        const path = manager.pathOf(r);
        const keys = new Set(schema.requireClass(r.className).keys.map((k) => k.name));
        return { path, instance: query.keysOnly ? r.project([], (p) => keys.has(p.name)) : r };
      });
      return { kind: 'instances', rows };
    }
  }
}

/**
 * Subscribe to intrinsic events selected by an event query; returns the unsubscribe function.
 * The listener gets each matching event as the provider pushed it.
 */
export function subscribeWql(manager: CimObjectManager, text: string, listener: (event: CimInstanceEvent) => void): () => void {
  const filter = compileEventFilter(text, manager.schema);
  return manager.subscribe((event) => {
    if (filter.matches(event)) listener(event);
  });
}

/** Class-level qualifiers this schema states (DSP0004 Association, Abstract, Description). */
function classQualifiers(cls: CimClass): Set<string> {
  const names = new Set<string>();
  if (cls.association) names.add('association');
  if (cls.abstract) names.add('abstract');
  if (cls.description) names.add('description');
  return names;
}

function forEachProperty(expr: WqlExpression, visit: (head: string) => void): void {
  switch (expr.kind) {
    case 'and':
    case 'or':
      for (const operand of chainOperands(expr)) forEachProperty(operand, visit);
      return;
    case 'not':
      forEachProperty(expr.operand, visit);
      return;
    case 'compare':
      for (const o of [expr.left, expr.right]) if (o.kind === 'property') visit(o.path[0]!);
      return;
    case 'like':
    case 'isNull':
    case 'isa':
      if (expr.operand.kind === 'property') visit(expr.operand.path[0]!);
  }
}
