/**
 * The saved-state file of a VM:
 *
 *   header  "TSVSAVE\0" (8) · format version u32 · header length u32 · configuration hash (32)
 *   records u32 length · protobuf Record (ipc/saved-state-schema.ts), repeated, ending with End
 *
 * Guest memory is written sparsely: runs of pages that are not all zero; a page not in any run
 * is zero on restore. The configuration hash covers what a saved guest depends on (VM id,
 * memory size, VP count, image bytes), so a file is never restored into another configuration.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { encodeRecord, decodeRecord, type SavedRecord } from '../ipc/saved-state-schema.ts';
import { writeFileAtomicWith } from '../vmms/atomic-file.ts';

export const SAVED_STATE_MAGIC = Buffer.from('TSVSAVE\0', 'latin1');
export const SAVED_STATE_VERSION = 1;
const HEADER_BYTES = 8 + 4 + 4 + 32;
const PAGE = 4096;
/** Pages per memory-run record at most: keeps every record well under the frame limit. */
const MAX_RUN_PAGES = 256;

export class SavedStateError extends Error {
  constructor(readonly code: 'SAVED_STATE_NOT_A_FILE' | 'SAVED_STATE_VERSION' | 'SAVED_STATE_CONFIGURATION' | 'SAVED_STATE_CORRUPT', message: string) {
    super(message);
  }
}

export interface SavedConfiguration {
  vmId: string;
  memoryBytes: number;
  vpCount: number;
  image: Uint8Array;
}

export function configurationHash(c: SavedConfiguration): Buffer {
  const h = createHash('sha256');
  h.update(JSON.stringify({ vmId: c.vmId, memoryBytes: c.memoryBytes, vpCount: c.vpCount }));
  h.update(createHash('sha256').update(c.image).digest());
  return h.digest();
}

export interface SavedState {
  control: Uint8Array;
  vpCount: number;
  referenceTicks: number;
  devices: { name: string; version: number; state: Uint8Array }[];
  /** Guest memory; only its non-zero pages are written. */
  memory: Uint8Array;
}

export interface SaveSummary {
  bytes: number;
  pagesWritten: number;
  pageRuns: number;
}

function isZeroPage(words: BigUint64Array, firstWord: number): boolean {
  for (let i = firstWord, end = firstWord + PAGE / 8; i < end; i++) if (words[i] !== 0n) return false;
  return true;
}

export function writeSavedState(path: string, hash: Buffer, s: SavedState): SaveSummary {
  let bytes = 0, pagesWritten = 0, pageRuns = 0;
  writeFileAtomicWith(path, (fd) => {
    const put = (b: Uint8Array) => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      bytes += b.length;
    };
    const header = Buffer.alloc(HEADER_BYTES);
    SAVED_STATE_MAGIC.copy(header, 0);
    header.writeUInt32LE(SAVED_STATE_VERSION, 8);
    header.writeUInt32LE(HEADER_BYTES, 12);
    hash.copy(header, 16);
    put(header);
    const record = (r: SavedRecord) => {
      const body = encodeRecord(r);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(body.length, 0);
      put(len);
      put(body);
    };
    record({ partitionControl: { vpCount: s.vpCount, control: s.control } });
    record({ referenceTime: { referenceTicks: s.referenceTicks } });
    for (const d of s.devices) record({ device: d });
    const words = new BigUint64Array(s.memory.buffer, s.memory.byteOffset, s.memory.byteLength / 8);
    const pages = s.memory.byteLength / PAGE;
    for (let p = 0; p < pages; ) {
      if (isZeroPage(words, p * (PAGE / 8))) { p++; continue; }
      let end = p + 1;
      while (end < pages && end - p < MAX_RUN_PAGES && !isZeroPage(words, end * (PAGE / 8))) end++;
      // A copy: the SharedArrayBuffer view cannot go to protobuf's writer as is.
      record({ memoryRun: { gpa: p * PAGE, data: s.memory.slice(p * PAGE, end * PAGE) } });
      pagesWritten += end - p;
      pageRuns++;
      p = end;
    }
    record({ end: { memoryBytes: s.memory.byteLength, pageRuns, pagesWritten } });
  });
  return { bytes, pagesWritten, pageRuns };
}

function readExactly(fd: number, length: number, what: string, path: string): Buffer {
  const b = Buffer.alloc(length);
  let off = 0;
  while (off < length) {
    const n = readSync(fd, b, off, length - off, null);
    if (n === 0) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: the file ends inside the ${what}`);
    off += n;
  }
  return b;
}

/**
 * Reads a saved-state file into `memory` (which must be zero-filled or is zeroed here) and
 * returns everything else. Refuses a file of another format version or configuration.
 */
export function readSavedState(path: string, expectedHash: Buffer, memory: Uint8Array): Omit<SavedState, 'memory'> {
  const fd = openSync(path, 'r');
  try {
    const header = readExactly(fd, HEADER_BYTES, 'header', path);
    if (!header.subarray(0, 8).equals(SAVED_STATE_MAGIC)) throw new SavedStateError('SAVED_STATE_NOT_A_FILE', `${path} is not a tsvisor saved-state file`);
    const version = header.readUInt32LE(8);
    if (version !== SAVED_STATE_VERSION) throw new SavedStateError('SAVED_STATE_VERSION', `${path} has saved-state format version ${version}; this tsvisor reads version ${SAVED_STATE_VERSION}`);
    if (!header.subarray(16, 48).equals(expectedHash)) {
      throw new SavedStateError('SAVED_STATE_CONFIGURATION', `${path} was saved from another configuration (VM id, memory size, VP count or guest image differ); it cannot be restored into this one`);
    }
    memory.fill(0);
    const out: Omit<SavedState, 'memory'> = { control: new Uint8Array(0), vpCount: 0, referenceTicks: -1, devices: [] };
    for (;;) {
      const length = readExactly(fd, 4, 'record length', path).readUInt32LE(0);
      if (length > 64 << 20) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: record of ${length} bytes`);
      let r: SavedRecord;
      try {
        r = decodeRecord(readExactly(fd, length, 'record', path));
      } catch (e) {
        if (e instanceof SavedStateError) throw e;
        throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: unreadable record (${(e as Error).message})`);
      }
      if ('partitionControl' in r) { out.control = r.partitionControl.control; out.vpCount = r.partitionControl.vpCount; }
      else if ('referenceTime' in r) out.referenceTicks = r.referenceTime.referenceTicks;
      else if ('device' in r) out.devices.push(r.device);
      else if ('memoryRun' in r) {
        const { gpa, data } = r.memoryRun;
        if (gpa % PAGE !== 0 || gpa + data.length > memory.length) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: memory run at 0x${gpa.toString(16)}+${data.length} is outside guest memory`);
        memory.set(data, gpa);
      } else {
        if (r.end.memoryBytes !== memory.length) throw new SavedStateError('SAVED_STATE_CONFIGURATION', `${path} holds ${r.end.memoryBytes} bytes of memory; the VM has ${memory.length}`);
        break;
      }
    }
    if (out.control.length === 0 || out.referenceTicks < 0) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path} lacks the partition control or reference time record`);
    return out;
  } finally {
    closeSync(fd);
  }
}
