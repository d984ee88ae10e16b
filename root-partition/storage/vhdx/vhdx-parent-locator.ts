/**
 * The parent locator of a differencing VHDX ([MS-VHDX] 2.6.2.6): a type GUID and UTF-16LE
 * key/value pairs whose offsets count from the start of the item. tsvisor writes
 * `parent_linkage` (the parent's DataWriteGuid in braces) and `relative_path` (Windows
 * separators), and reads `parent_linkage`, `parent_linkage2` and the path keys.
 */
import { getU16, getU32, putU16, putU32, VhdxCorruptError } from './vhdx-format.ts';
import { guidEquals, guidFromText, guidToText, type Guid } from './vhdx-guid.ts';

export const VHDX_LOCATOR_TYPE = guidFromText('B04AEFB7-D19E-4A81-B789-25B8E9445913');
const HEADER = 20;
const ENTRY = 12;

export function encodeParentLocator(pairs: [string, string][]): Uint8Array {
  const strings = pairs.map(([k, v]) => [Buffer.from(k, 'utf16le'), Buffer.from(v, 'utf16le')] as const);
  let at = HEADER + ENTRY * pairs.length;
  const size = at + strings.reduce((n, [k, v]) => n + k.length + v.length, 0);
  const b = new Uint8Array(size);
  b.set(VHDX_LOCATOR_TYPE, 0);
  putU16(b, 18, pairs.length);
  strings.forEach(([k, v], i) => {
    const e = HEADER + ENTRY * i;
    putU32(b, e, at);
    b.set(k, at);
    at += k.length;
    putU32(b, e + 4, at);
    b.set(v, at);
    at += v.length;
    putU16(b, e + 8, k.length);
    putU16(b, e + 10, v.length);
  });
  return b;
}

/** The key/value pairs of a locator item, every offset and length checked against the item. */
export function decodeParentLocator(path: string, b: Uint8Array): Map<string, string> {
  if (b.length < HEADER || !guidEquals(b.subarray(0, 16), VHDX_LOCATOR_TYPE)) {
    throw new VhdxCorruptError(path, 'parent locator is not of the VHDX type');
  }
  const count = getU16(b, 18);
  if (HEADER + ENTRY * count > b.length) throw new VhdxCorruptError(path, `parent locator claims ${count} entries in ${b.length} bytes`);
  const out = new Map<string, string>();
  const text = (off: number, len: number, what: string) => {
    if (off < HEADER || len === 0 || len % 2 !== 0 || off + len > b.length) {
      throw new VhdxCorruptError(path, `parent locator ${what} at ${off} length ${len} lies outside the item`);
    }
    return Buffer.from(b.subarray(off, off + len)).toString('utf16le');
  };
  for (let i = 0; i < count; i++) {
    const e = HEADER + ENTRY * i;
    const key = text(getU32(b, e), getU16(b, e + 8), 'key');
    const value = text(getU32(b, e + 4), getU16(b, e + 10), 'value');
    if (out.has(key)) throw new VhdxCorruptError(path, `parent locator repeats the key ${key}`);
    out.set(key, value);
  }
  if (!out.has('parent_linkage')) throw new VhdxCorruptError(path, 'parent locator has no parent_linkage');
  return out;
}

/** `{xxxxxxxx-…}`, lowercase, as the spec's parent_linkage wants it. */
export function linkageText(dataWriteGuid: Guid): string {
  return `{${guidToText(dataWriteGuid)}}`;
}

/** Whether a parent with this DataWriteGuid is the one the locator names (either linkage key). */
export function linkageMatches(locator: Map<string, string>, dataWriteGuid: Guid): boolean {
  const want = linkageText(dataWriteGuid);
  return [locator.get('parent_linkage'), locator.get('parent_linkage2')].some((v) => v !== undefined && v.toLowerCase() === want);
}
