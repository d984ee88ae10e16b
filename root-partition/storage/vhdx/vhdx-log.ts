/**
 * The VHDX log ([MS-VHDX] 2.3): encoding one entry, and finding and decoding the active
 * sequence of a log left by a crash. Pure functions over bytes; the file layer writes and
 * replays them.
 *
 * A log is attacker-controlled input: its length is capped (MAX_LOG_LENGTH), every entry's
 * validation is memoised per offset, and the bytes checksummed during one scan are capped
 * (SCAN_BUDGET), so a crafted log costs bounded time and memory.
 */
import { crc32c } from '../crc32c.ts';
import { getU32, getU64, KiB, MiB, putU32, putU64, VhdxCorruptError, VhdxError } from './vhdx-format.ts';
import { guidEquals, type Guid } from './vhdx-guid.ts';

export const LOG_SECTOR = 4 * KiB;
/** Largest log tsvisor reads (Hyper-V and qemu-img make 1 MiB logs). */
export const MAX_LOG_LENGTH = 32 * MiB;
/** Bytes one scan may checksum before the log is refused as too costly. */
export const SCAN_BUDGET = 256 * MiB;
const ENTRY_HEADER = 64;
const DESCRIPTOR = 32;

/** One 4 KiB sector to write at a 4 KiB-aligned file offset. */
export interface LogSector {
  fileOffset: number;
  data: Uint8Array;
}

export interface LogEntryFields {
  logGuid: Guid;
  sequenceNumber: number;
  /** Log offset of the sequence's first entry. */
  tail: number;
  flushedFileOffset: number;
  lastFileOffset: number;
  sectors: LogSector[];
}

function putSig(b: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < 4; i++) b[at + i] = s.charCodeAt(i);
}

function sigIs(b: Uint8Array, at: number, s: string): boolean {
  for (let i = 0; i < 4; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

export function descriptorSectors(count: number): number {
  return Math.max(1, Math.ceil((count + 2) / 128));
}

/** An entry of data descriptors only, one data sector per 4 KiB sector ([MS-VHDX] 2.3.1). */
export function encodeLogEntry(f: LogEntryFields): Uint8Array {
  const n = f.sectors.length;
  const descSectors = descriptorSectors(n);
  const b = new Uint8Array((descSectors + n) * LOG_SECTOR);
  const seqLo = f.sequenceNumber % 2 ** 32;
  const seqHi = Math.floor(f.sequenceNumber / 2 ** 32);
  putSig(b, 0, 'loge');
  putU32(b, 8, b.length);
  putU32(b, 12, f.tail);
  putU64(b, 16, f.sequenceNumber);
  putU32(b, 24, n);
  b.set(f.logGuid, 32);
  putU64(b, 48, f.flushedFileOffset);
  putU64(b, 56, f.lastFileOffset);
  f.sectors.forEach((s, i) => {
    if (s.data.length !== LOG_SECTOR || s.fileOffset % LOG_SECTOR !== 0) throw new Error('log sectors are whole, aligned 4 KiB');
    const d = ENTRY_HEADER + DESCRIPTOR * i;
    putSig(b, d, 'desc');
    b.set(s.data.subarray(4092, 4096), d + 4);
    b.set(s.data.subarray(0, 8), d + 8);
    putU64(b, d + 16, s.fileOffset);
    putU64(b, d + 24, f.sequenceNumber);
    const at = (descSectors + i) * LOG_SECTOR;
    putSig(b, at, 'data');
    putU32(b, at + 4, seqHi);
    b.set(s.data.subarray(8, 4092), at + 8);
    putU32(b, at + 4092, seqLo);
  });
  putU32(b, 4, crc32c(b));
  return b;
}

/** What replaying one descriptor does: write 4 KiB, or write `zeroLength` zero bytes. */
export type ReplayWrite = { fileOffset: number; data: Uint8Array } | { fileOffset: number; zeroLength: number };

interface ValidEntry {
  offset: number;
  length: number;
  sequenceNumber: number;
  tail: number;
  flushedFileOffset: number;
  lastFileOffset: number;
  writes: ReplayWrite[];
}

export interface ActiveSequence {
  writes: ReplayWrite[];
  flushedFileOffset: number;
  lastFileOffset: number;
  entries: number;
}

/**
 * The active sequence of `log` (the whole log region) for `logGuid`, or null when the log holds
 * no complete sequence ([MS-VHDX] 2.3.2, 2.3.3: the complete run of consecutive valid entries
 * with the highest head sequence number).
 */
export function findActiveSequence(path: string, log: Uint8Array, logGuid: Guid): ActiveSequence | null {
  const L = log.length;
  let budget = SCAN_BUDGET;
  const memo = new Map<number, ValidEntry | null>();
  const entryAt = (off: number): ValidEntry | null => {
    if (memo.has(off)) return memo.get(off)!;
    const e = validate(off);
    memo.set(off, e);
    return e;
  };
  // The entry's bytes in order, unwrapping the ring.
  const bytes = (off: number, len: number): Uint8Array => {
    if (off + len <= L) return log.subarray(off, off + len);
    const b = new Uint8Array(len);
    b.set(log.subarray(off), 0);
    b.set(log.subarray(0, len - (L - off)), L - off);
    return b;
  };
  const validate = (off: number): ValidEntry | null => {
    const h = log.subarray(off, off + LOG_SECTOR);
    if (!sigIs(h, 0, 'loge')) return null;
    const length = getU32(h, 8);
    const tail = getU32(h, 12);
    const seq = getU64(h, 16);
    const count = getU32(h, 24);
    if (length === 0 || length % LOG_SECTOR !== 0 || length > L || tail % LOG_SECTOR !== 0 || tail >= L || seq === 0) return null;
    if (!guidEquals(h.subarray(32, 48), logGuid)) return null;
    const descSectors = descriptorSectors(count);
    if (descSectors * LOG_SECTOR > length) return null;
    const e = bytes(off, length);
    let dataSectors = 0;
    const writes: ReplayWrite[] = [];
    for (let i = 0; i < count; i++) {
      const d = ENTRY_HEADER + DESCRIPTOR * i;
      const fileOffset = getU64(e, d + 16);
      if (getU64(e, d + 24) !== seq || fileOffset % LOG_SECTOR !== 0) return null;
      if (sigIs(e, d, 'zero')) {
        const zeroLength = getU64(e, d + 8);
        if (zeroLength % LOG_SECTOR !== 0) return null;
        writes.push({ fileOffset, zeroLength });
      } else if (sigIs(e, d, 'desc')) {
        const at = (descSectors + dataSectors++) * LOG_SECTOR;
        if (at + LOG_SECTOR > length || !sigIs(e, at, 'data')) return null;
        if (getU32(e, at + 4) !== Math.floor(seq / 2 ** 32) || getU32(e, at + 4092) !== seq % 2 ** 32) return null;
        const data = new Uint8Array(LOG_SECTOR);
        data.set(e.subarray(d + 8, d + 16), 0);
        data.set(e.subarray(at + 8, at + 4092), 8);
        data.set(e.subarray(d + 4, d + 8), 4092);
        writes.push({ fileOffset, data });
      } else {
        return null;
      }
    }
    if ((descSectors + dataSectors) * LOG_SECTOR > length) return null;
    budget -= length;
    if (budget < 0) throw new VhdxCorruptError(path, `the log needs more than ${SCAN_BUDGET / MiB} MiB of checksumming to scan; refused`, VhdxError.Log);
    const copy = new Uint8Array(e);
    putU32(copy, 4, 0);
    if (crc32c(copy) !== getU32(e, 4)) return null;
    return { offset: off, length, sequenceNumber: seq, tail, flushedFileOffset: getU64(h, 48), lastFileOffset: getU64(h, 56), writes };
  };

  let best: ValidEntry[] | null = null;
  for (let tail = 0; tail < L; ) {
    const run: ValidEntry[] = [];
    let used = 0;
    for (let off = tail; used < L; ) {
      const e = entryAt(off);
      if (!e || (run.length > 0 && e.sequenceNumber !== run[run.length - 1].sequenceNumber + 1)) break;
      run.push(e);
      used += e.length;
      off = (off + e.length) % L;
    }
    const head = run[run.length - 1];
    const from = head ? run.findIndex((e) => e.offset === head.tail) : -1;
    if (head && from >= 0 && (!best || head.sequenceNumber > best[best.length - 1].sequenceNumber)) best = run.slice(from);
    // Past the head (or one sector on): each start is scanned once, and the loop ends when the ring wraps.
    const next = head && from >= 0 ? head.offset + LOG_SECTOR : tail + LOG_SECTOR;
    if (next <= tail) break;
    tail = next;
  }
  if (!best) return null;
  const head = best[best.length - 1];
  return { writes: best.flatMap((e) => e.writes), flushedFileOffset: head.flushedFileOffset, lastFileOffset: head.lastFileOffset, entries: best.length };
}
