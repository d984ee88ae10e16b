/**
 * A small ACPI Machine Language encoder: the few terms a definition block for a device needs
 * (ACPI 6.4 §20.2: Scope, Device, Name, String, Integer, Buffer, resource templates) and the
 * table around them (§5.2.6 header, §5.2.11.2 SSDT). Enough for the VMBus device; not a compiler.
 */

const enc = new TextEncoder();

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** PkgLength (§20.2.4): the length of what follows plus its own 1–4 bytes. */
export function pkgLength(contentBytes: number): Uint8Array {
  for (let extra = 0; extra <= 3; extra++) {
    const total = contentBytes + 1 + extra;
    if (extra === 0 && total < 0x40) return Uint8Array.of(total);
    if (extra > 0 && total < 1 << (4 + 8 * extra)) {
      const out = new Uint8Array(1 + extra);
      out[0] = (extra << 6) | (total & 0xf);
      for (let i = 1; i <= extra; i++) out[i] = (total >>> (4 + 8 * (i - 1))) & 0xff;
      return out;
    }
  }
  throw new RangeError(`AML package of ${contentBytes} bytes is too long`);
}

/** NameSeg (§20.2.2): four characters from A–Z, 0–9, _ (the first not a digit), padded with _. */
export function nameSeg(name: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(name)) throw new Error(`"${name}" is not an ACPI name segment`);
  return enc.encode(name.padEnd(4, '_'));
}

/** NameString: `\` + segments for an absolute path ("\\_SB"), or a single segment. */
export function nameString(path: string): Uint8Array {
  const root = path.startsWith('\\');
  const segs = (root ? path.slice(1) : path)
    .split('.')
    .filter((s) => s.length > 0)
    .map(nameSeg);
  const prefix = root ? [Uint8Array.of(0x5c)] : [];
  if (segs.length === 0) return concat([...prefix, Uint8Array.of(0x00)]); // NullName
  if (segs.length === 1) return concat([...prefix, segs[0]!]);
  if (segs.length === 2) return concat([...prefix, Uint8Array.of(0x2e), ...segs]);
  return concat([...prefix, Uint8Array.of(0x2f, segs.length), ...segs]);
}

/** String (§20.2.3): 0x0D, ASCII, NUL. */
export function amlString(s: string): Uint8Array {
  if (!/^[\x01-\x7f]*$/.test(s)) throw new Error('AML strings are ASCII without NUL');
  return concat([Uint8Array.of(0x0d), enc.encode(s), Uint8Array.of(0)]);
}

/** Integer in the shortest form: ZeroOp, OneOp, Byte/Word/DWord/QWordConst. */
export function amlInteger(v: number | bigint): Uint8Array {
  const n = BigInt(v);
  if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`AML integer ${n} is out of range`);
  if (n === 0n) return Uint8Array.of(0x00);
  if (n === 1n) return Uint8Array.of(0x01);
  const [op, bytes] = n <= 0xffn ? [0x0a, 1] : n <= 0xffffn ? [0x0b, 2] : n <= 0xffffffffn ? [0x0c, 4] : [0x0e, 8];
  const out = new Uint8Array(1 + bytes);
  out[0] = op;
  for (let i = 0; i < bytes; i++) out[1 + i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** Buffer (§20.2.5.4): BufferOp PkgLength BufferSize bytes. */
export function amlBuffer(bytes: Uint8Array): Uint8Array {
  const body = concat([amlInteger(bytes.length), bytes]);
  return concat([Uint8Array.of(0x11), pkgLength(body.length), body]);
}

/** Name(name, value). */
export function amlName(name: string, value: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(0x08), nameString(name), value]);
}

/** Scope(path) { body }. */
export function amlScope(path: string, body: readonly Uint8Array[]): Uint8Array {
  const inner = concat([nameString(path), ...body]);
  return concat([Uint8Array.of(0x10), pkgLength(inner.length), inner]);
}

/** Device(name) { body }. */
export function amlDevice(name: string, body: readonly Uint8Array[]): Uint8Array {
  const inner = concat([nameString(name), ...body]);
  return concat([Uint8Array.of(0x5b, 0x82), pkgLength(inner.length), inner]);
}

/**
 * A resource template's bytes (§6.4): the descriptors, then the End Tag (0x79) whose checksum
 * byte 0 means "treat as correct" (§6.4.2.9).
 */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  return concat([...descriptors, Uint8Array.of(0x79, 0x00)]);
}

/** IRQNoFlags {irqs} (§6.4.2.1, short form: edge, active high, exclusive). */
export function irqNoFlags(irqs: readonly number[]): Uint8Array {
  let mask = 0;
  for (const i of irqs) {
    if (!Number.isInteger(i) || i < 0 || i > 15) throw new RangeError(`IRQ ${i} is not 0..15`);
    mask |= 1 << i;
  }
  return Uint8Array.of(0x22, mask & 0xff, mask >> 8);
}

export interface AcpiTableId {
  signature: string;
  revision: number;
  oemId: string;
  oemTableId: string;
  oemRevision: number;
  creatorId: string;
  creatorRevision: number;
}

/** A table: the 36-byte header (§5.2.6) with its length and checksum (all bytes sum to 0 mod 256), then the body. */
export function acpiTable(id: AcpiTableId, body: readonly Uint8Array[]): Uint8Array {
  const fixed = (s: string, n: number) => {
    if (s.length > n || !/^[\x20-\x7e]*$/.test(s)) throw new Error(`"${s}" does not fit an ACPI header field of ${n} characters`);
    return enc.encode(s.padEnd(n, ' '));
  };
  if (id.signature.length !== 4) throw new Error('an ACPI signature has 4 characters');
  const payload = concat(body);
  const t = new Uint8Array(36 + payload.length);
  const dv = new DataView(t.buffer);
  t.set(fixed(id.signature, 4), 0);
  dv.setUint32(4, t.length, true);
  t[8] = id.revision;
  t.set(fixed(id.oemId, 6), 10);
  t.set(fixed(id.oemTableId, 8), 16);
  dv.setUint32(24, id.oemRevision, true);
  t.set(fixed(id.creatorId, 4), 28);
  dv.setUint32(32, id.creatorRevision, true);
  t.set(payload, 36);
  let sum = 0;
  for (const b of t) sum = (sum + b) & 0xff;
  t[9] = (0x100 - sum) & 0xff;
  return t;
}
