/**
 * Writes a cpio archive in the "newc" format (SVR4 without CRC), the format the Linux kernel
 * unpacks as an initramfs (Linux Documentation/driver-api/early-userspace/buffer-format.rst).
 * Each entry: a 110-byte ASCII header of hex fields, the NUL-terminated name, padding to 4 bytes,
 * the data, padding to 4 bytes; the archive ends with the entry "TRAILER!!!".
 */
export interface CpioEntry {
  name: string;
  /** File type and permission bits, e.g. 0o100755 (regular), 0o040755 (directory). */
  mode: number;
  data?: Uint8Array;
  /** For character devices: major and minor numbers. */
  rdev?: { major: number; minor: number };
}

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

export function cpioNewc(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  let ino = 1;
  const push = (e: CpioEntry) => {
    const name = enc.encode(`${e.name}\0`);
    const data = e.data ?? new Uint8Array(0);
    const header =
      '070701' +
      hex8(ino++) +
      hex8(e.mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8((e.mode & 0o170000) === S_IFDIR ? 2 : 1) + // nlink
      hex8(0) + // mtime: fixed, so the archive is reproducible
      hex8(data.length) +
      hex8(0) + // dev major
      hex8(0) + // dev minor
      hex8(e.rdev?.major ?? 0) +
      hex8(e.rdev?.minor ?? 0) +
      hex8(name.length) +
      hex8(0); // check (unused in newc)
    parts.push(enc.encode(header), name, new Uint8Array(pad4(110 + name.length)));
    parts.push(data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) push(e);
  push({ name: 'TRAILER!!!', mode: 0 });
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
