/**
 * Property resolution for WHERE clauses: over an instance (SELECT) and over an intrinsic event
 * (TargetInstance / PreviousInstance are embedded instances, WMI __InstanceOperationEvent).
 * `__CLASS` is the WMI system property holding the class name.
 */
import { CimInstance } from '../cim/instance.ts';
import type { CimInstanceEvent } from '../cim/provider.ts';
import { InstanceEventClass } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import type { CimValue } from '../cim/types.ts';
import type { WqlContext } from './evaluator.ts';

function follow(root: CimValue | undefined, path: readonly string[]): CimValue | undefined {
  let value = root;
  for (const name of path) {
    if (!(value instanceof CimInstance)) return value === null ? null : undefined;
    value = name.toLowerCase() === '__class' ? value.className : value.get(name);
  }
  return value;
}

export function instanceContext(instance: CimInstance, schema: CimSchema): WqlContext {
  return {
    resolve: (path) => follow(instance, path),
    isa: (c, a) => schema.isa(c, a),
  };
}

export function eventContext(event: CimInstanceEvent, schema: CimSchema): WqlContext {
  return {
    resolve: (path) => {
      const [head, ...rest] = path;
      const h = head!.toLowerCase();
      if (h === 'targetinstance') return follow(event.target, rest);
      if (h === 'previousinstance') return event.previous ? follow(event.previous, rest) : rest.length === 0 ? undefined : null;
      if (h === '__class' && rest.length === 0) return InstanceEventClass[event.kind];
      return undefined;
    },
    isa: (c, a) => schema.isa(c, a),
  };
}
