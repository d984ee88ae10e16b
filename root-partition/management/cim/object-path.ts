/**
 * CIM object paths (DSP0004 "Object paths"; DSP0207 WBEM URI text form): a class name plus key
 * bindings, optionally qualified by namespace and host. Names compare case-insensitively
 * (DSP0004 "Names are case insensitive"); key values compare by their text, because wbemcli
 * guesses KEYVALUE types (a Name of `123` arrives numeric).
 */
import { CimError } from './errors.ts';

export type CimKeyValue = string | number | bigint | boolean | CimObjectPath;

export interface CimKeyBinding {
  readonly name: string;
  readonly value: CimKeyValue;
}

export interface CimObjectPath {
  readonly className: string;
  readonly keys: readonly CimKeyBinding[];
  readonly namespace?: string;
  readonly host?: string;
}

/** The namespace this model serves (Hyper-V WMI v2; WMI spells it root\virtualization\v2). */
export const VIRTUALIZATION_NAMESPACE = 'root/virtualization/v2';

export function isObjectPath(value: unknown): value is CimObjectPath {
  return typeof value === 'object' && value !== null && 'className' in value && 'keys' in value && Array.isArray((value as CimObjectPath).keys);
}

export function keyValue(path: CimObjectPath, name: string): CimKeyValue | undefined {
  const lower = name.toLowerCase();
  return path.keys.find((k) => k.name.toLowerCase() === lower)?.value;
}

function keyText(value: CimKeyValue): string {
  if (isObjectPath(value)) return formatObjectPath({ className: value.className, keys: value.keys });
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  return String(value);
}

/** Same instance: class and key names case-insensitive, key values by text; host/namespace ignored. */
export function sameObjectPath(a: CimObjectPath, b: CimObjectPath): boolean {
  if (a.className.toLowerCase() !== b.className.toLowerCase()) return false;
  if (a.keys.length !== b.keys.length) return false;
  for (const k of a.keys) {
    const other = keyValue(b, k.name);
    if (other === undefined) return false;
    if (isObjectPath(k.value) || isObjectPath(other)) {
      if (!isObjectPath(k.value) || !isObjectPath(other) || !sameObjectPath(k.value, other)) return false;
    } else if (keyText(k.value) !== keyText(other)) {
      return false;
    }
  }
  return true;
}

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** `[//host/][namespace:]Class.Key="v",Key2=2` (DSP0207 untyped WBEM URI, WMI relative path). */
export function formatObjectPath(path: CimObjectPath): string {
  let prefix = '';
  if (path.host) prefix += `//${path.host}/`;
  if (path.namespace) prefix += `${path.namespace}:`;
  if (path.keys.length === 0) return `${prefix}${path.className}`;
  const keys = path.keys.map((k) => {
    const v = k.value;
    if (isObjectPath(v)) return `${k.name}=${quote(formatObjectPath(v))}`;
    if (typeof v === 'string') return `${k.name}=${quote(v)}`;
    return `${k.name}=${keyText(v)}`;
  });
  return `${prefix}${path.className}.${keys.join(',')}`;
}

/**
 * Parse the text form, as written in WQL `ASSOCIATORS OF {…}` and in reference strings.
 * Strings take ' or " quotes with backslash escapes; a quoted value that itself parses as a
 * keyed path (contains `.` and `=` before any quote) stays a string: callers that know the key is
 * a reference convert it with parseObjectPath again.
 */
export function parseObjectPath(text: string): CimObjectPath {
  let rest = text.trim();
  let host: string | undefined;
  let namespace: string | undefined;
  if (rest.startsWith('//') || rest.startsWith('\\\\')) {
    const end = rest.slice(2).search(/[/\\]/);
    if (end < 0) throw bad(text, 'host without namespace');
    host = rest.slice(2, 2 + end);
    rest = rest.slice(3 + end);
  }
  const colon = firstOutsideQuotes(rest, ':');
  const dotOrEnd = firstOutsideQuotes(rest, '.');
  if (colon >= 0 && (dotOrEnd < 0 || colon < dotOrEnd)) {
    namespace = rest.slice(0, colon).replace(/\\/g, '/');
    rest = rest.slice(colon + 1);
  }
  const dot = firstOutsideQuotes(rest, '.');
  const className = (dot < 0 ? rest : rest.slice(0, dot)).trim();
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(className)) throw bad(text, 'bad class name');
  const keys: CimKeyBinding[] = [];
  if (dot >= 0) {
    let i = dot + 1;
    const s = rest;
    while (i < s.length) {
      const eq = s.indexOf('=', i);
      if (eq < 0) throw bad(text, 'key without value');
      const name = s.slice(i, eq).trim();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw bad(text, 'bad key name');
      i = eq + 1;
      let value: CimKeyValue;
      const q = s[i];
      if (q === '"' || q === "'") {
        let out = '';
        i++;
        while (i < s.length && s[i] !== q) {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          out += s[i];
          i++;
        }
        if (i >= s.length) throw bad(text, 'unterminated string');
        i++;
        value = out;
      } else {
        const end = s.indexOf(',', i);
        const raw = (end < 0 ? s.slice(i) : s.slice(i, end)).trim();
        i = end < 0 ? s.length : end;
        if (/^(true|false)$/i.test(raw)) value = raw.toLowerCase() === 'true';
        else if (/^-?\d+$/.test(raw)) value = Number(raw);
        else throw bad(text, `bad key value ${raw}`);
      }
      keys.push({ name, value });
      while (i < s.length && s[i] === ' ') i++;
      if (i < s.length) {
        if (s[i] !== ',') throw bad(text, 'expected ,');
        i++;
      }
    }
  }
  return { className, keys, ...(namespace ? { namespace } : {}), ...(host ? { host } : {}) };
}

function firstOutsideQuotes(s: string, ch: string): number {
  let quoteChar = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoteChar) {
      if (c === '\\') i++;
      else if (c === quoteChar) quoteChar = '';
    } else if (c === '"' || c === "'") {
      quoteChar = c;
    } else if (c === ch) {
      return i;
    }
  }
  return -1;
}

function bad(text: string, why: string): CimError {
  return new CimError('CIM_ERR_INVALID_PARAMETER', `bad object path ${JSON.stringify(text)}: ${why}`);
}
