/**
 * The saved-state file of a VM (format 3):
 *
 *   header  "TSVSAVE\0" (8) · format version u32 · header length u32 · configuration hash (32)
 *           · CRC-32C of the header's first 48 bytes u32
 *   records u32 length · u32 CRC-32C of the body · protobuf Record (ipc/saved-state-schema.ts),
 *           repeated, ending with End (which counts the records before it); nothing after End
 *
 * Records, in order: Partition (with the image preparation the VP stacks fit), one Vp per virtual
 * processor (with its execution state: the captured Wasm stack), ReferenceTime, Device per
 * emulated device and one for VMBus with its VSPs, MemoryRun per run of non-zero pages (a page in no run is zero on restore), End. Every
 * record is checked before it is used, so a damaged byte anywhere is refused naming the record.
 * The configuration hash covers what a saved guest depends on (VM id, memory size, VP count,
 * image bytes), so a file is never restored into another configuration.
 *
 * The file is untrusted input (a local user may have written it): every length, address and
 * count in it is bounded before use.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MAX_VPS } from '../../hypervisor/partition-control.ts';
import { CAPTURE_AREA_MAX } from '../../hypervisor/vp/vp-capture.ts';
import { decodeRecord, encodeRecord, RECORD_KIND_NAMES, recordKindOfBytes, type SavedRecord } from '../ipc/saved-state-schema.ts';
import { syncDirectory, writeFileAtomicWith } from '../host/atomic-file.ts';
import { crc32c } from './crc32c.ts';
import type { PartitionSnapshot } from './partition-snapshot.ts';

export const SAVED_STATE_MAGIC = Buffer.from('TSVSAVE\0', 'latin1');
export const SAVED_STATE_VERSION = 3;
const HEADER_BYTES = 8 + 4 + 4 + 32 + 4;
const PAGE = 4096;
/** Pages per memory-run record at most: keeps every record well under MAX_RECORD_BYTES. */
const MAX_RUN_PAGES = 256;
/**
 * No record is larger: a VP record with the largest captured stack (CAPTURE_AREA_MAX) and its
 * globals, or a memory run of MAX_RUN_PAGES pages. A hostile length allocates no more.
 */
export const MAX_RECORD_BYTES = Math.max(MAX_RUN_PAGES * PAGE, CAPTURE_AREA_MAX) + 64 * 1024;
/** Device records at most: the chipset has a handful; a file with thousands is not ours. */
const MAX_DEVICE_RECORDS = 64;

export type SavedStateErrorCode = 'SAVED_STATE_NOT_A_FILE' | 'SAVED_STATE_VERSION' | 'SAVED_STATE_CONFIGURATION' | 'SAVED_STATE_CORRUPT' | 'SAVED_STATE_LAYOUT';

export class SavedStateError extends Error {
  constructor(
    readonly code: SavedStateErrorCode,
    message: string,
  ) {
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

export interface SavedState extends PartitionSnapshot {
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
  let bytes = 0,
    pagesWritten = 0,
    pageRuns = 0,
    records = 0;
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
    header.writeUInt32LE(crc32c(header.subarray(0, 48)), 48);
    put(header);
    const record = (r: SavedRecord) => {
      const body = encodeRecord(r);
      const frame = Buffer.alloc(8);
      frame.writeUInt32LE(body.length, 0);
      frame.writeUInt32LE(crc32c(body), 4);
      put(frame);
      put(body);
      records++;
    };
    record({ partition: { vpCount: s.vpCount, guestOsId: s.guestOsId, hypercallMsr: s.hypercallMsr, imagePreparation: s.imagePreparation } });
    for (const vp of s.vps) record({ vp });
    record({ referenceTime: { referenceTicks: s.referenceTicks } });
    for (const d of s.devices) record({ device: d });
    const words = new BigUint64Array(s.memory.buffer, s.memory.byteOffset, s.memory.byteLength / 8);
    const pages = s.memory.byteLength / PAGE;
    for (let p = 0; p < pages; ) {
      if (isZeroPage(words, p * (PAGE / 8))) {
        p++;
        continue;
      }
      let end = p + 1;
      while (end < pages && end - p < MAX_RUN_PAGES && !isZeroPage(words, end * (PAGE / 8))) end++;
      // A copy: the SharedArrayBuffer view cannot go to protobuf's writer as is.
      record({ memoryRun: { gpa: p * PAGE, data: s.memory.slice(p * PAGE, end * PAGE) } });
      pagesWritten += end - p;
      pageRuns++;
      p = end;
    }
    record({ end: { memoryBytes: s.memory.byteLength, pageRuns, pagesWritten, recordCount: records } });
  });
  return { bytes, pagesWritten, pageRuns };
}

/**
 * Reads a saved-state file into `memory` (zeroed here first) and returns everything else.
 * Refuses a file of another format version or configuration, and any damaged, missing,
 * duplicated, unknown or out-of-range record, naming it. On a refusal `memory` may hold part of
 * the file: the caller discards the partition.
 */
export function readSavedState(path: string, expectedHash: Buffer, memory: Uint8Array): Omit<SavedState, 'memory'> {
  const fd = openSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    let offset = 0;
    const read = (length: number, what: string): Buffer => {
      const b = Buffer.alloc(length);
      let off = 0;
      while (off < length) {
        const n = readSync(fd, b, off, length - off, offset + off);
        if (n === 0) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path} is truncated: it ends inside ${what} at byte ${offset + off}`);
        off += n;
      }
      offset += length;
      return b;
    };
    const header = read(Math.min(HEADER_BYTES, Math.max(fileBytes, 16)), 'the header');
    if (!header.subarray(0, 8).equals(SAVED_STATE_MAGIC)) throw new SavedStateError('SAVED_STATE_NOT_A_FILE', `${path} is not a tsvisor saved-state file`);
    const version = header.readUInt32LE(8);
    if (version !== SAVED_STATE_VERSION) {
      const why = version < SAVED_STATE_VERSION ? ' (an older file, written before VP stacks and VMBus were saved)' : '';
      throw new SavedStateError(
        'SAVED_STATE_VERSION',
        `${path} has saved-state format version ${version}${why}; this tsvisor reads version ${SAVED_STATE_VERSION}`,
      );
    }
    if (header.length < HEADER_BYTES) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path} is truncated: it ends inside the header`);
    if (header.readUInt32LE(12) !== HEADER_BYTES || crc32c(header.subarray(0, 48)) !== header.readUInt32LE(48)) {
      throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: the header is damaged (checksum mismatch)`);
    }
    if (!header.subarray(16, 48).equals(expectedHash)) {
      throw new SavedStateError(
        'SAVED_STATE_CONFIGURATION',
        `${path} was saved from another configuration (VM id, memory size, VP count or guest image differ); it cannot be restored into this one`,
      );
    }
    memory.fill(0);
    const state = new StateBuilder(path, memory);
    for (let n = 0; ; n++) {
      const at = offset;
      const frame = read(8, `the framing of record #${n}`);
      const length = frame.readUInt32LE(0);
      if (length > MAX_RECORD_BYTES)
        throw new SavedStateError(
          'SAVED_STATE_CORRUPT',
          `${path}: record #${n} at byte ${at} claims ${length} bytes (at most ${MAX_RECORD_BYTES}); the file is damaged`,
        );
      const body = read(length, `record #${n}`);
      if (crc32c(body) !== frame.readUInt32LE(4)) {
        const kind = recordKindOfBytes(body);
        throw new SavedStateError(
          'SAVED_STATE_CORRUPT',
          `${path}: record #${n} at byte ${at}${kind ? ` (by its tag a ${kind} record)` : ''} is damaged: checksum mismatch`,
        );
      }
      let r: SavedRecord;
      try {
        r = decodeRecord(body);
      } catch (e) {
        throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: record #${n} at byte ${at} is unreadable: ${(e as Error).message}`);
      }
      if (state.add(r, n, at)) break;
    }
    if (offset !== fileBytes) throw new SavedStateError('SAVED_STATE_CORRUPT', `${path}: ${fileBytes - offset} bytes follow the end record`);
    return state.result();
  } finally {
    closeSync(fd);
  }
}

/**
 * Collects the records in their required order, refusing what is out of place. `path` names the
 * source in messages (a file, or a migration stream, which sends memory in frames of its own).
 */
export class StateBuilder {
  private partition: { vpCount: number; guestOsId: string; hypercallMsr: string; imagePreparation: string } | null = null;
  private readonly vps: PartitionSnapshot['vps'] = [];
  private referenceTicks = -1;
  private readonly devices: SavedState['devices'] = [];
  private pagesWritten = 0;
  private pageRuns = 0;

  constructor(
    private readonly path: string,
    private readonly memory: Uint8Array,
  ) {}

  private fail(code: SavedStateErrorCode, n: number, at: number, kind: string, why: string): never {
    throw new SavedStateError(code, `${this.path}: record #${n} at byte ${at} (${RECORD_KIND_NAMES[kind] ?? kind}): ${why}`);
  }

  /** Returns true at the End record. */
  add(r: SavedRecord, n: number, at: number): boolean {
    const kind = Object.keys(r)[0];
    const order = (ok: boolean, what: string) => {
      if (!ok) this.fail('SAVED_STATE_CORRUPT', n, at, kind, `out of place (${what})`);
    };
    if ('partitionControl' in r)
      this.fail(
        'SAVED_STATE_LAYOUT',
        n,
        at,
        kind,
        'the control block is a raw dump of a layout this tsvisor does not read; save the VM again with the release that wrote it, or turn it off',
      );
    if ('partition' in r) {
      order(n === 0, 'the partition record comes first');
      if (!(r.partition.vpCount >= 1 && r.partition.vpCount <= MAX_VPS))
        this.fail('SAVED_STATE_LAYOUT', n, at, kind, `${r.partition.vpCount} VPs; a partition has 1..${MAX_VPS}`);
      this.partition = r.partition;
    } else if ('vp' in r) {
      order(this.partition !== null && this.referenceTicks < 0, 'VP records follow the partition record');
      if (this.vps.length >= this.partition!.vpCount)
        this.fail('SAVED_STATE_LAYOUT', n, at, kind, `more VP records than the ${this.partition!.vpCount} VPs the partition record names`);
      this.vps.push(r.vp);
    } else if ('referenceTime' in r) {
      order(
        this.partition !== null && this.vps.length === this.partition.vpCount && this.referenceTicks < 0,
        'the reference time follows every VP record, once',
      );
      this.referenceTicks = r.referenceTime.referenceTicks;
    } else if ('device' in r) {
      order(this.referenceTicks >= 0 && this.pageRuns === 0, 'device records follow the reference time');
      if (this.devices.length >= MAX_DEVICE_RECORDS) this.fail('SAVED_STATE_LAYOUT', n, at, kind, `more than ${MAX_DEVICE_RECORDS} device records`);
      this.devices.push(r.device);
    } else if ('memoryRun' in r) {
      order(this.referenceTicks >= 0, 'memory runs follow the reference time');
      const { gpa, data } = r.memoryRun;
      if (!Number.isSafeInteger(gpa) || gpa % PAGE !== 0 || data.length % PAGE !== 0 || gpa + data.length > this.memory.length) {
        this.fail('SAVED_STATE_CORRUPT', n, at, kind, `memory run at 0x${gpa.toString(16)}+${data.length} is not whole pages inside guest memory`);
      }
      this.memory.set(data, gpa);
      this.pageRuns++;
      this.pagesWritten += data.length / PAGE;
    } else {
      const e = r.end;
      order(this.referenceTicks >= 0, 'the end record is last');
      if (e.memoryBytes !== this.memory.length)
        throw new SavedStateError('SAVED_STATE_CONFIGURATION', `${this.path} holds ${e.memoryBytes} bytes of memory; the VM has ${this.memory.length}`);
      if (e.recordCount !== n || e.pageRuns !== this.pageRuns || e.pagesWritten !== this.pagesWritten) {
        this.fail(
          'SAVED_STATE_CORRUPT',
          n,
          at,
          kind,
          `the file holds ${n} records, ${this.pageRuns} memory runs of ${this.pagesWritten} pages; the end record counts ${e.recordCount}, ${e.pageRuns} and ${e.pagesWritten}`,
        );
      }
      return true;
    }
    return false;
  }

  result(): Omit<SavedState, 'memory'> {
    const p = this.partition!;
    return {
      vpCount: p.vpCount,
      imagePreparation: p.imagePreparation,
      guestOsId: p.guestOsId,
      hypercallMsr: p.hypercallMsr,
      referenceTicks: this.referenceTicks,
      vps: this.vps,
      devices: this.devices,
    };
  }
}

/**
 * A restored file is used up: the guest runs on from it, so its memory goes stale at once.
 * Unlinked and the directory synced, so neither VMMS nor a crash and reboot can take it for a
 * saved VM again. Throws when the file cannot be removed (the restore must not go on).
 */
export function consumeSavedState(path: string): void {
  rmSync(path, { force: true });
  syncDirectory(dirname(path));
}
