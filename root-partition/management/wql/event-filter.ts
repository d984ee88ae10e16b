/**
 * Intrinsic event queries compiled to a filter over pushed events (WMI
 * __InstanceOperationEvent and its three subclasses). WITHIN is kept for clients
 * that expect it, but delivery is immediate: events are pushed, not polled.
 */
import { CimError } from '../cim/errors.ts';
import type { CimInstanceEvent } from '../cim/provider.ts';
import { InstanceEventClass } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { WqlEventQuery, WqlExpression } from './ast.ts';
import { eventContext } from './contexts.ts';
import { chainOperands, whereMatches } from './evaluator.ts';
import { parseWql } from './parser.ts';
import { WqlSyntaxError } from './syntax-error.ts';

export class WqlEventFilter {
  readonly query: WqlEventQuery;
  private readonly schema: CimSchema;

  constructor(query: WqlEventQuery, schema: CimSchema) {
    this.query = query;
    this.schema = schema;
    if (query.where) checkIsaClasses(query.where, schema);
  }

  get within(): number | null {
    return this.query.within;
  }

  matches(event: CimInstanceEvent): boolean {
    const cls = this.query.eventClass;
    if (cls !== '__InstanceOperationEvent' && InstanceEventClass[event.kind] !== cls) return false;
    return whereMatches(this.query.where, eventContext(event, this.schema));
  }
}

/** Parse an event query; a non-event query or a syntax error is CIM_ERR_INVALID_QUERY. */
export function compileEventFilter(text: string, schema: CimSchema): WqlEventFilter {
  let query: ReturnType<typeof parseWql>;
  try {
    query = parseWql(text);
  } catch (e) {
    if (e instanceof WqlSyntaxError) throw new CimError('CIM_ERR_INVALID_QUERY', e.message);
    throw e;
  }
  if (query.kind !== 'event') throw new CimError('CIM_ERR_INVALID_QUERY', 'not an intrinsic event query (SELECT … FROM __Instance…Event)');
  return new WqlEventFilter(query, schema);
}

/** `TargetInstance ISA 'X'` naming an unknown class is a caller error, not a silent never-match. */
function checkIsaClasses(expr: WqlExpression, schema: CimSchema): void {
  if (expr.kind === 'isa') schema.requireClass(expr.className);
  else if (expr.kind === 'and' || expr.kind === 'or') {
    for (const operand of chainOperands(expr)) checkIsaClasses(operand, schema);
  } else if (expr.kind === 'not') checkIsaClasses(expr.operand, schema);
}
