/**
 * GUIDs as VHDX stores them: the Windows GUID struct, so the text `AAAAAAAA-BBBB-CCCC-DDDD-…`
 * has its first three groups little-endian and the last 8 bytes in text order ([MS-VHDX] 2.
 * "GUID"). GUIDs are opaque: compared as bytes, never checked for version bits (QEMU fills them
 * with 16 random bytes).
 */
import { randomBytes } from 'node:crypto';

export type Guid = Uint8Array;

export function randomGuid(): Guid {
  return new Uint8Array(randomBytes(16));
}

export function guidFromText(text: string): Guid {
  const hex = text.replace(/[{}-]/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not a GUID: ${text}`);
  const b = Buffer.from(hex, 'hex');
  const out = new Uint8Array(16);
  out.set([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]], 0);
  out.set(b.subarray(8, 16), 8);
  return out;
}

/** Lowercase text form without braces, as `vhdiinfo` prints it. */
export function guidToText(g: Guid): string {
  const h = (i: number) => g[i].toString(16).padStart(2, '0');
  const part = (idx: number[]) => idx.map(h).join('');
  return `${part([3, 2, 1, 0])}-${part([5, 4])}-${part([7, 6])}-${part([8, 9])}-${part([10, 11, 12, 13, 14, 15])}`;
}

export function guidEquals(a: Guid, b: Guid): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function guidIsZero(g: Guid): boolean {
  return g.every((x) => x === 0);
}

export const ZERO_GUID: Guid = new Uint8Array(16);
