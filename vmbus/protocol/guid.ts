/**
 * GUIDs on the VMBus wire use the Microsoft mixed-endian layout: Data1 (u32), Data2 (u16) and
 * Data3 (u16) little-endian, then the last 8 bytes as written (Linux guid_t; QEMU byte-swaps
 * its big-endian UUIDs before sending). Example: {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f} is sent
 * as d9 63 61 ba a1 04 29 4d b6 05 72 e2 ff b1 dc 7f.
 */

const GUID_PATTERN = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i;

export const GUID_SIZE = 16;

/** Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (braces optional); null when malformed. */
export function guidToBytes(text: string): Uint8Array | null {
  const m = GUID_PATTERN.exec(text);
  if (!m) return null;
  const out = new Uint8Array(GUID_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, parseInt(m[1]!, 16), true);
  view.setUint16(4, parseInt(m[2]!, 16), true);
  view.setUint16(6, parseInt(m[3]!, 16), true);
  const tail = m[4]! + m[5]!;
  for (let i = 0; i < 8; i++) out[8 + i] = parseInt(tail.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Formats 16 wire bytes (at `offset`) as a lower-case GUID string without braces. */
export function guidFromBytes(bytes: Uint8Array, offset = 0): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, GUID_SIZE);
  const hex = (v: number, width: number) => v.toString(16).padStart(width, '0');
  let tail = '';
  for (let i = 8; i < 16; i++) tail += hex(view.getUint8(i), 2);
  return `${hex(view.getUint32(0, true), 8)}-${hex(view.getUint16(4, true), 4)}-${hex(view.getUint16(6, true), 4)}-` + `${tail.slice(0, 4)}-${tail.slice(4)}`;
}

/** Parses a GUID the program itself supplies; a malformed literal is a programming error. */
export function guidLiteral(text: string): Uint8Array {
  const bytes = guidToBytes(text);
  if (!bytes) throw new Error(`malformed GUID: ${text}`);
  return bytes;
}

/** The four little-endian u32 words of a GUID's wire bytes (abi/vmbus-channel.ts's interface GUIDs), as text. */
export function guidFromWords(g: { W0: number; W1: number; W2: number; W3: number }): string {
  const bytes = new Uint8Array(GUID_SIZE);
  const view = new DataView(bytes.buffer);
  [g.W0, g.W1, g.W2, g.W3].forEach((w, i) => view.setUint32(i * 4, w >>> 0, true));
  return guidFromBytes(bytes);
}
