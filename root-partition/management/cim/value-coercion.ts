/**
 * Turning values as they arrive (wire text, JS values) into typed CIM values (DSP0004
 * "Datatypes"). Values are typed from the server's own declarations, never from
 * what a client claims (sblim wbemcli omits PARAMTYPE and guesses KEYVALUE types).
 */
import { CimError, type CimStatusName } from './errors.ts';
import { CimInstance } from './instance.ts';
import { isObjectPath, parseObjectPath, type CimObjectPath } from './object-path.ts';
import { IntegerRange, type CimScalar, type CimType, type CimValue } from './types.ts';

export interface ValueShape {
  readonly type: CimType;
  readonly isArray?: boolean;
  readonly embeddedInstance?: string;
}

const DATETIME = /^(\d{14}\.\d{6}[+-]\d{3}|\d{14}\.\d{6}:000)$/;
const DATETIME_WILDCARD = /^[\d*]{14}\.[\d*]{6}([+-][\d*]{3}|:000)$/;

export function coerceValue(raw: unknown, shape: ValueShape, what: string, error: CimStatusName = 'CIM_ERR_TYPE_MISMATCH'): CimValue {
  if (raw === null || raw === undefined) return null;
  if (shape.isArray) {
    const items = Array.isArray(raw) ? raw : [raw];
    return items.map((item, i) => coerceScalar(item, shape, `${what}[${i}]`, error));
  }
  if (Array.isArray(raw)) throw new CimError(error, `${what} is not an array`);
  return coerceScalar(raw, shape, what, error);
}

export function coerceScalar(raw: unknown, shape: ValueShape, what: string, error: CimStatusName): CimScalar {
  const fail = (why: string) => new CimError(error, `${what}: ${why}`);
  const { type } = shape;
  if (raw instanceof CimInstance) {
    if (type === 'string' && shape.embeddedInstance) return raw;
    throw fail(`an instance is not a ${type}`);
  }
  if (type === 'reference') {
    if (isObjectPath(raw)) return raw;
    if (typeof raw === 'string') return parseObjectPath(raw);
    throw fail('expected an object path');
  }
  if (isObjectPath(raw)) throw fail(`a reference is not a ${type}`);
  if (type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    const text = String(raw).trim().toLowerCase();
    if (text === 'true') return true;
    if (text === 'false') return false;
    throw fail(`${JSON.stringify(String(raw))} is not a boolean`);
  }
  if (type in IntegerRange) return coerceInteger(raw, type, fail);
  if (type === 'real32' || type === 'real64') {
    if (typeof raw === 'number') return raw;
    const text = String(raw).trim();
    if (text === 'NaN') return NaN;
    if (text === 'INF' || text === '+INF') return Infinity;
    if (text === '-INF') return -Infinity;
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw fail(`${JSON.stringify(text)} is not a ${type}`);
    return Number(text);
  }
  if (type === 'datetime') {
    const text = String(raw);
    if (!DATETIME.test(text) && !DATETIME_WILDCARD.test(text)) throw fail(`${JSON.stringify(text)} is not a CIM datetime`);
    return text;
  }
  if (type === 'char16') {
    const text = String(raw);
    if ([...text].length !== 1) throw fail('a char16 holds exactly one character');
    return text;
  }
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' || typeof raw === 'bigint' || typeof raw === 'boolean') return String(raw);
  throw fail('expected a string');
}

function coerceInteger(raw: unknown, type: CimType, fail: (why: string) => CimError): number | bigint {
  let big: bigint;
  if (typeof raw === 'bigint') big = raw;
  else if (typeof raw === 'number') {
    if (!Number.isInteger(raw)) throw fail(`${raw} is not an integer`);
    big = BigInt(raw);
  } else {
    const text = String(raw).trim();
    // DSP0004 integer literals: decimal; pywbem also accepts 0x hex (pywbem _cim_types.py).
    if (/^[+-]?\d+$/.test(text)) big = BigInt(text);
    else if (/^0x[0-9a-f]+$/i.test(text)) big = BigInt(text);
    else throw fail(`${JSON.stringify(text)} is not a ${type}`);
  }
  const [min, max] = IntegerRange[type]!;
  if (big < min || big > max) throw fail(`${big} is out of range for ${type}`);
  return type === 'uint64' || type === 'sint64' ? big : Number(big);
}

export function asObjectPath(value: CimValue | undefined): CimObjectPath | null {
  return isObjectPath(value) ? value : null;
}
