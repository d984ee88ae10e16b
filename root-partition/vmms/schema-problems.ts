/**
 * Validation of what VMMS reads from outside (definition files, checkpoint trees, client
 * requests) with valibot schemas, and the words it answers with: every problem at once, each as
 * `field.path: what is wrong`, in the order of the input. A field gets one problem, the first
 * rule it breaks (a memory size of 1000 is "must be between …", not that and "must be a multiple
 * of 64 KiB" too); rules across fields (`v.partialCheck`, `v.rawCheck`) add theirs beside it.
 */
import * as v from 'valibot';

type AnySchema = v.GenericSchema<unknown, unknown>;

/** `devices[2].disks[0].path` from a valibot issue path; '' for the value itself. */
export function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Issues of rules across fields: reported beside a field's own problem, not instead of it. */
const CROSS_FIELD = new Set(['partial_check', 'raw_check']);

/** `field.path: what is wrong`, or the bare sentence for the value itself. */
const fieldProblem = (path: string, message: string) => (path ? `${path}: ${message}` : message);

const RESERVED_KEYS = ['__proto__', 'prototype', 'constructor'];

/**
 * valibot passes over these keys without a word (they could pollute an output's prototype), and no
 * schema here has a field of that name: anywhere in the input they are unknown fields. Walked
 * without recursion, so a deeply nested value cannot exhaust the stack.
 */
function reservedKeys(value: unknown): string[] {
  const found: string[] = [];
  const stack: { at: string; v: unknown }[] = [{ at: '', v: value }];
  while (stack.length) {
    const { at, v: x } = stack.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    if (Array.isArray(x)) {
      x.forEach((item, i) => stack.push({ at: `${at}[${i}]`, v: item }));
      continue;
    }
    for (const [k, item] of Object.entries(x)) {
      const path = at ? `${at}.${k}` : k;
      if (RESERVED_KEYS.includes(k)) found.push(path);
      else stack.push({ at: path, v: item });
    }
  }
  return found.sort();
}

/** Every problem of `value` against `schema` (empty when valid), each worded by `format`. */
export function schemaProblems(schema: AnySchema, value: unknown, format = fieldProblem): string[] {
  const reserved = reservedKeys(value).map((path) => format(path, 'unknown field'));
  const r = v.safeParse(schema, value);
  if (r.success) return reserved;
  const seen = new Set<string>();
  const problems: { at: (string | number)[]; text: string }[] = [];
  for (const issue of r.issues) {
    const path = issuePath(issue);
    const once = CROSS_FIELD.has(issue.type) ? `${path}\0${issue.message}` : path;
    if (seen.has(once)) continue;
    seen.add(once);
    problems.push({ at: (issue.path ?? []).map((p) => (p as { key: string | number }).key), text: format(path, issue.message) });
  }
  // In the order of the input: a list's own rules (a slot taken twice) come after its entries' otherwise.
  return [
    ...problems
      .map((p, i) => ({ ...p, i }))
      .sort((a, b) => comparePaths(a.at, b.at) || a.i - b.i)
      .map((p) => p.text),
    ...reserved,
  ];
}

/** Orders by list index where both paths have one at the same depth; keys keep their schema order. */
function comparePaths(a: (string | number)[], b: (string | number)[]): number {
  for (let d = 0; d < Math.min(a.length, b.length); d++) {
    if (a[d] === b[d]) continue;
    return typeof a[d] === 'number' && typeof b[d] === 'number' ? (a[d] as number) - (b[d] as number) : 0;
  }
  return 0;
}

// ---- building blocks with this project's words -----------------------------------------------

/**
 * An object with exactly these fields: a missing one is "missing", an unknown one "unknown field"
 * (a typo must not pass silently).
 */
export function exactObject<E extends v.ObjectEntries>(entries: E) {
  return v.objectWithRest(entries, v.never('unknown field'), (issue) => (issue.expected === 'Object' ? 'must be an object' : 'missing'));
}

/**
 * An object with these fields and maybe others (ignored): a missing one is `missing(key)`,
 * anything but an object `notObject`.
 */
export function knownFields<E extends v.ObjectEntries>(entries: E, notObject = 'must be an object', missing: (key: string) => string = () => 'missing') {
  return v.object(entries, (issue) => (issue.expected === 'Object' ? notObject : missing(String((issue.path?.[0] as { key?: unknown } | undefined)?.key))));
}

const isJsonObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A whole document (a definition file, a request): an exactObject, and anything but a JSON object is `notObject`. */
export function documentObject<E extends v.ObjectEntries>(entries: E, notObject: string) {
  return v.pipe(v.custom<Record<string, unknown>>(isJsonObject, notObject), exactObject(entries));
}

/** Where a rule across a list's entries reports: `path` from the list (valibot's path items). */
export type ListIssue = (info: { message: string; path?: [v.ArrayPathItem, ...v.ObjectPathItem[]] }) => void;

/**
 * A rule across a list's entries. It runs even when some entries broke their own rules (so a
 * slot taken twice is said beside a bad path), but never on something that is not a list: the
 * entries are unknown values, to be checked before use.
 */
export function acrossEntries<T>(check: (entries: readonly unknown[], addIssue: ListIssue) => void): v.RawCheckAction<T[]> {
  return v.rawCheck<T[]>(({ dataset, addIssue }) => {
    if (Array.isArray(dataset.value)) check(dataset.value, addIssue);
  });
}

/** The path of `entries[index]` (and of its `key`), for a rule across entries. */
export function entryPath(entries: readonly unknown[], index: number, key?: string): [v.ArrayPathItem, ...v.ObjectPathItem[]] {
  const item = entries[index];
  const arrayItem: v.ArrayPathItem = { type: 'array', origin: 'value', input: entries as unknown[], key: index, value: item };
  if (key === undefined || typeof item !== 'object' || item === null) return [arrayItem];
  return [arrayItem, { type: 'object', origin: 'value', input: item as Record<string, unknown>, key, value: (item as Record<string, unknown>)[key] }];
}

/** An integer from `min` to `max`. */
export function intIn(min: number, max: number, range = `must be between ${min} and ${max}`) {
  return v.pipe(v.number('must be an integer'), v.integer('must be an integer'), v.minValue(min, range), v.maxValue(max, range));
}

/** A string of at most `max` characters, matching `pattern` when given (`what` names the form). */
export function text(max: number, pattern?: RegExp, what = 'a string') {
  const form = `must be ${what}`;
  return pattern
    ? v.pipe(v.string(form), v.maxLength(max, `must be at most ${max} characters`), v.regex(pattern, form))
    : v.pipe(v.string(form), v.maxLength(max, `must be at most ${max} characters`));
}

/** A lower-case GUID (Hyper-V's instance ids, VM and switch ids). */
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const guid = (what = 'a lower-case GUID') => v.pipe(v.string(`must be ${what}`), v.regex(GUID, `must be ${what}`));

/** An absolute host path of at most 4096 characters (the service's working directory is not the client's). */
export const absolutePath = (what = 'an absolute path') =>
  v.pipe(v.string(`must be ${what}`), v.regex(/^\/[^\0]*$/, `must be ${what}`), v.minLength(2, `must be ${what}`), v.maxLength(4096, `must be ${what}`));

/** true or false. */
export const flag = () => v.boolean('must be true or false');
