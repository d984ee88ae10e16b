/**
 * CIM values as JSON for the management protocol on the VMMS socket (see management-socket.md
 * in docs/management.md): uint64/sint64 as decimal strings (JSON numbers are exact only to
 * 2^53), references as `{ className, keys }`, embedded instances as nested instances. Every
 * property carries its type, so decoding needs no schema.
 */
import { CimInstance, type CimPropertyValue } from '../cim/instance.ts';
import { isObjectPath, type CimKeyValue, type CimObjectPath } from '../cim/object-path.ts';
import type { CimScalar, CimType, CimValue } from '../cim/types.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export interface WirePath {
  className: string;
  keys: { name: string; value: JsonValue }[];
  namespace?: string;
}

export interface WireProperty {
  name: string;
  type: CimType;
  isArray: boolean;
  value: JsonValue;
  referenceClass?: string;
  embeddedInstance?: string;
}

export interface WireInstance {
  className: string;
  properties: WireProperty[];
}

/** One intrinsic event as pushed to a watcher. */
export interface WireEvent {
  eventClass: string;
  time: string;
  target: WireInstance;
  previous?: WireInstance;
}

function encodeScalar(v: CimScalar): JsonValue {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof CimInstance) return encodeInstance(v) as unknown as JsonValue;
  if (isObjectPath(v)) return encodePath(v) as unknown as JsonValue;
  return v as JsonValue;
}

export function encodeValue(v: CimValue): JsonValue {
  if (v === null) return null;
  return Array.isArray(v) ? v.map(encodeScalar) : encodeScalar(v);
}

export function encodePath(p: CimObjectPath): WirePath {
  return {
    className: p.className,
    keys: p.keys.map((k) => ({ name: k.name, value: encodeScalar(k.value as CimScalar) })),
    ...(p.namespace ? { namespace: p.namespace } : {}),
  };
}

export function encodeInstance(i: CimInstance): WireInstance {
  return {
    className: i.className,
    properties: i.properties.map((p) => ({
      name: p.name,
      type: p.type,
      isArray: p.isArray,
      value: encodeValue(p.value),
      ...(p.referenceClass ? { referenceClass: p.referenceClass } : {}),
      ...(p.embeddedInstance ? { embeddedInstance: p.embeddedInstance } : {}),
    })),
  };
}

function isWirePath(v: unknown): v is WirePath {
  return typeof v === 'object' && v !== null && typeof (v as WirePath).className === 'string' && Array.isArray((v as WirePath).keys);
}

export function decodePath(w: WirePath): CimObjectPath {
  return {
    className: w.className,
    keys: w.keys.map((k) => ({ name: k.name, value: (isWirePath(k.value) ? decodePath(k.value) : k.value) as CimKeyValue })),
    ...(w.namespace ? { namespace: w.namespace } : {}),
  };
}

function decodeScalar(v: JsonValue, p: Pick<WireProperty, 'type' | 'embeddedInstance'>): CimScalar {
  if (p.type === 'uint64' || p.type === 'sint64') return BigInt(v as string | number);
  if (p.type === 'reference' && isWirePath(v)) return decodePath(v);
  if (p.embeddedInstance && typeof v === 'object' && v !== null && 'properties' in v) return decodeInstance(v as unknown as WireInstance);
  return v as CimScalar;
}

export function decodeInstance(w: WireInstance): CimInstance {
  const properties: CimPropertyValue[] = w.properties.map((p) => ({
    name: p.name,
    type: p.type,
    isArray: p.isArray,
    value: p.value === null ? null : Array.isArray(p.value) ? p.value.map((x) => decodeScalar(x, p)) : decodeScalar(p.value, p),
    ...(p.referenceClass ? { referenceClass: p.referenceClass } : {}),
    ...(p.embeddedInstance ? { embeddedInstance: p.embeddedInstance } : {}),
  }));
  return new CimInstance(w.className, properties);
}

/**
 * Method parameters from a client: paths as `{ className, keys }`, embedded instances as wire
 * instances, anything else as given (the object manager types it from the declaration).
 */
export function decodeParam(v: JsonValue): unknown {
  if (Array.isArray(v)) return v.map(decodeParam);
  if (typeof v === 'object' && v !== null) {
    if ('properties' in v) return decodeInstance(v as unknown as WireInstance);
    if (isWirePath(v)) return decodePath(v);
  }
  return v;
}

export function encodeParam(v: unknown): JsonValue {
  if (Array.isArray(v)) return v.map(encodeParam);
  if (v instanceof CimInstance) return encodeInstance(v) as unknown as JsonValue;
  if (isObjectPath(v)) return encodePath(v) as unknown as JsonValue;
  if (typeof v === 'bigint') return v.toString();
  return (v ?? null) as JsonValue;
}
