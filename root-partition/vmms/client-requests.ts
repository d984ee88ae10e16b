/**
 * The requests of VMMS's client socket (client-server.ts) as schemas (valibot): the envelope
 * `{ id, method, params }` and each method's params. A request that breaks one is answered with
 * VMMS_ERR_REQUEST naming every bad parameter (`params.dir must be an absolute path`) and never
 * reaches the service.
 */
import * as v from 'valibot';
import { absolutePath, knownFields, schemaProblems } from './schema-problems.ts';

export const CLIENT_METHODS = [
  'list',
  'show',
  'new',
  'start',
  'stop',
  'save',
  'pause',
  'resume',
  'reset',
  'rm',
  'console',
  'counters',
  'load-errors',
  'shutdown',
  'heartbeat',
  'console-input',
  'console-follow',
  'orphans',
  'stop-orphan',
  'measure',
  'export',
  'import',
] as const;
export type ClientMethod = (typeof CLIENT_METHODS)[number];

const isJsonObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** `{ id?, method, params? }`: params, when given, is an object (each method's schema says what it holds). */
export const ENVELOPE_SCHEMA = v.object(
  {
    id: v.optional(v.unknown()),
    method: v.optional(v.unknown()),
    params: v.optional(v.custom<Record<string, unknown>>(isJsonObject, 'must be an object')),
  },
  'must be a JSON object',
);

/** A method's params; a required one left out is told what its schema says of a wrong one. */
function params<E extends v.ObjectEntries>(entries: E) {
  return knownFields(entries, 'must be an object', (key) => {
    const m = (entries[key] as { message?: unknown } | undefined)?.message;
    return typeof m === 'string' ? m : 'is required';
  });
}

const vm = { vm: v.string('(a VM name or id) is required') };
const onlyVm = params(vm);
const nothing = params({});
const flag = () => v.optional(v.boolean('must be true or false'));
/** A path parameter: absolute, because the service's working directory is not the client's. */
const path = () => absolutePath();

/** Each method's params. Fields a method does not know are ignored; a known one of the wrong kind is refused. */
export const PARAMS_SCHEMAS = {
  list: nothing,
  show: onlyVm,
  // The request is a VM definition's fields, checked as a definition is (vm-definition.ts).
  new: v.custom<Record<string, unknown>>(isJsonObject, 'must be an object'),
  start: onlyVm,
  // Stop-VM: -Save, -TurnOff, or (neither) a shutdown through the guest's integration service.
  stop: params({
    ...vm,
    save: flag(),
    turnOff: flag(),
    force: flag(),
    timeoutMs: v.optional(
      v.pipe(v.number('must be a number of milliseconds'), v.finite('must be a number of milliseconds'), v.minValue(0, 'must be a number of milliseconds')),
    ),
    reason: v.optional(v.string('must be a string')),
  }),
  save: onlyVm,
  pause: onlyVm,
  resume: onlyVm,
  reset: onlyVm,
  rm: onlyVm,
  console: onlyVm,
  counters: onlyVm,
  'load-errors': nothing,
  shutdown: params({ keepVms: flag() }),
  heartbeat: onlyVm,
  'console-input': params({ ...vm, data: v.pipe(v.string('(base64 bytes) is required'), v.base64('(base64 bytes) is required')) }),
  'console-follow': onlyVm,
  orphans: nothing,
  'stop-orphan': onlyVm,
  measure: params({ ...vm, reset: flag() }),
  export: params({ ...vm, dir: path() }),
  import: params({ folder: path(), copyTo: v.optional(path()), newId: flag(), name: v.optional(v.string('must be a VM name')) }),
} satisfies Record<ClientMethod, v.GenericSchema<unknown, unknown>>;

/** Every params field some method takes, as the service reads them after validation. */
export interface ClientParams {
  vm?: string;
  save?: boolean;
  turnOff?: boolean;
  force?: boolean;
  timeoutMs?: number;
  reason?: string;
  keepVms?: boolean;
  data?: string;
  reset?: boolean;
  dir?: string;
  folder?: string;
  copyTo?: string;
  newId?: boolean;
  name?: string;
  [field: string]: unknown;
}

function requestError(message: string): Error {
  return Object.assign(new Error(message), { code: 'VMMS_ERR_REQUEST' });
}

/** The envelope's params (an object; {} when left out), or a VMMS_ERR_REQUEST error. */
export function envelopeParams(request: unknown): { id: unknown; method: unknown; params: Record<string, unknown> } {
  const problems = schemaProblems(ENVELOPE_SCHEMA, request, (p, m) => (p ? `${p} ${m}` : `the request ${m}`));
  if (problems.length) throw requestError(problems.join('; '));
  const r = request as { id?: unknown; method?: unknown; params?: Record<string, unknown> };
  return { id: r.id ?? null, method: r.method, params: r.params ?? {} };
}

/** `params` checked against `method`'s schema, or a VMMS_ERR_REQUEST error naming every bad parameter. */
export function clientParams(method: ClientMethod, params: Record<string, unknown>): ClientParams {
  const problems = schemaProblems(PARAMS_SCHEMAS[method], params, (p, m) => (p ? `params.${p} ${m}` : `params ${m}`));
  if (problems.length) throw requestError(problems.join('; '));
  return params as ClientParams;
}
