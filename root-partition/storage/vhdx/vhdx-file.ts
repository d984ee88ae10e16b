/**
 * One open VHDX file below the virtual disk: positioned I/O, the two-slot header updates
 * ([MS-VHDX] 2.2.2.1), log transactions for every metadata change, and replay of a log left by a
 * crash ([MS-VHDX] 2.3.3).
 *
 * A metadata transaction, in this order ([MS-VHDX] 2.3 Log; QEMU block/vhdx-log.c):
 *   1. the payload it will point at is already written and flushed (the caller's part);
 *   2. a log entry with a fresh LogGuid at log offset 0 is written and flushed;
 *   3. a header naming that LogGuid is written and flushed — from here a crash replays the entry;
 *   4. the sectors are written in place and flushed;
 *   5. a header with LogGuid 0 is written and flushed.
 * A crash before 3 leaves LogGuid 0 and the old metadata (at worst a block leaked at the end of
 * the file); after 3 the entry is complete and replays. A non-zero LogGuid is never on disk
 * without a complete entry behind it, and a fresh LogGuid per transaction means an older entry
 * left in the log can never validate again.
 */
import * as fs from 'node:fs';
import { hostIo, type RawDiskIo } from '../raw-disk.ts';
import {
  currentHeader,
  encodeHeader,
  HEADER_OFFSETS,
  HEADER_SECTION_SIZE,
  HEADER_SIZE,
  MiB,
  VhdxCorruptError,
  VhdxError,
  type VhdxHeader,
} from './vhdx-format.ts';
import { vhdxFaultPoint } from './vhdx-fault-point.ts';
import { guidIsZero, randomGuid, ZERO_GUID } from './vhdx-guid.ts';
import { encodeLogEntry, findActiveSequence, LOG_SECTOR, MAX_LOG_LENGTH, type LogSector, type ReplayWrite } from './vhdx-log.ts';

/** Bytes of zero descriptors one replay may write (a crafted log could name terabytes). */
const MAX_REPLAY_ZEROES = 256 * MiB;
/** How far past its end a replay may extend a file (a real entry extends it by a few blocks). */
const MAX_REPLAY_GROWTH = 4096 * MiB;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

export class VhdxFile {
  header!: VhdxHeader;
  private slot: 0 | 1 = 0;
  size: number;
  /** Replayed metadata of a read-only open, laid over metadata reads (the file is not touched). */
  private overlay: ReplayWrite[] = [];
  private sessionStarted = false;
  /** Log entries this open replayed (0: the log was empty). */
  replayedEntries = 0;

  constructor(
    readonly path: string,
    readonly fd: number,
    readonly readOnly: boolean,
    readonly io: RawDiskIo = hostIo,
  ) {
    this.size = fs.fstatSync(fd).size;
  }

  /** Reads `dst.length` bytes at `offset`; bytes past the end of the file read as zero. */
  readAt(offset: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const n = this.io.pread(this.fd, dst, done, dst.length - done, offset + done);
      if (n === 0) {
        dst.fill(0, done);
        return;
      }
      done += n;
    }
  }

  /** Metadata bytes, with a read-only open's replayed log laid over them. */
  readMeta(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(length);
    this.readAt(offset, b);
    for (const w of this.overlay) {
      const len = 'data' in w ? w.data.length : w.zeroLength;
      const from = Math.max(offset, w.fileOffset);
      const to = Math.min(offset + length, w.fileOffset + len);
      if (from >= to) continue;
      if ('data' in w) b.set(w.data.subarray(from - w.fileOffset, to - w.fileOffset), from - offset);
      else b.fill(0, from - offset, to - offset);
    }
    return b;
  }

  writeAt(offset: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) done += this.io.pwrite(this.fd, src, done, src.length - done, offset + done);
    if (offset + src.length > this.size) this.size = offset + src.length;
  }

  sync(): void {
    this.io.fdatasync(this.fd);
  }

  /** Grows the file to `size` (sparse: the new bytes read zero and take no space until written). */
  extendTo(size: number): void {
    if (size <= this.size) return;
    fs.ftruncateSync(this.fd, size);
    this.size = size;
  }

  /** Reads both header slots and picks the current one; replays or overlays a pending log. */
  loadHeaders(): void {
    const slots: [Uint8Array, Uint8Array] = [new Uint8Array(HEADER_SIZE), new Uint8Array(HEADER_SIZE)];
    this.readAt(HEADER_OFFSETS[0], slots[0]);
    this.readAt(HEADER_OFFSETS[1], slots[1]);
    const { header, slot } = currentHeader(this.path, slots);
    this.header = header;
    this.slot = slot;
    const h = header;
    if (h.logOffset < HEADER_SECTION_SIZE || h.logOffset % MiB !== 0 || h.logLength % MiB !== 0) {
      throw new VhdxCorruptError(this.path, `log at ${h.logOffset} length ${h.logLength} is not 1 MiB aligned past the header section`);
    }
    if (h.logLength > MAX_LOG_LENGTH)
      throw new VhdxCorruptError(this.path, `log of ${h.logLength} bytes is larger than ${MAX_LOG_LENGTH / MiB} MiB`, VhdxError.Unsupported);
    if (!guidIsZero(h.logGuid)) this.replayLog();
  }

  /**
   * A non-empty log, replayed before anything else is read ([MS-VHDX] 2.3.3): in place for a
   * read-write open (header with a new FileWriteGuid first, LogGuid cleared after the flush),
   * into a memory overlay for a read-only one, which must not change the file.
   */
  private replayLog(): void {
    const h = this.header;
    if (h.logVersion !== 0) throw new VhdxCorruptError(this.path, `log version ${h.logVersion} is not 0`, VhdxError.Unsupported);
    const log = new Uint8Array(h.logLength);
    this.readAt(h.logOffset, log);
    const seq = findActiveSequence(this.path, log, h.logGuid);
    if (!seq) {
      throw new VhdxCorruptError(
        this.path,
        'the header names a log (LogGuid set) but the log holds no complete entry; the file was left by a crash ' + 'mid-update and cannot be replayed',
        VhdxError.Log,
      );
    }
    if (seq.flushedFileOffset > this.size) {
      throw new VhdxCorruptError(
        this.path,
        `the log says the file was at least ${seq.flushedFileOffset} bytes, but it is ${this.size}: truncated`,
        VhdxError.Log,
      );
    }
    const limit = Math.max(this.size, seq.lastFileOffset);
    if (seq.lastFileOffset > this.size + MAX_REPLAY_GROWTH)
      throw new VhdxCorruptError(this.path, `the log would grow the file to ${seq.lastFileOffset} bytes`, VhdxError.Log);
    let zeroes = 0;
    for (const w of seq.writes) {
      const len = 'data' in w ? w.data.length : w.zeroLength;
      if ('zeroLength' in w) zeroes += w.zeroLength;
      const intoLog = w.fileOffset < h.logOffset + h.logLength && h.logOffset < w.fileOffset + len;
      // Region tables (192–320 KiB) may be logged; the identifier and the headers never are.
      if (w.fileOffset < 0x30000 || (w.fileOffset < HEADER_SECTION_SIZE && w.fileOffset + len > 0x50000) || intoLog || w.fileOffset + len > limit) {
        throw new VhdxCorruptError(this.path, `a log entry writes ${len} bytes at ${w.fileOffset}, outside the file's metadata`, VhdxError.Log);
      }
    }
    if (zeroes > MAX_REPLAY_ZEROES) throw new VhdxCorruptError(this.path, `the log zeroes ${zeroes} bytes`, VhdxError.Log);
    this.replayedEntries = seq.entries;
    if (this.readOnly) {
      this.overlay = seq.writes;
      this.size = Math.max(this.size, roundUp(seq.lastFileOffset, MiB));
      return;
    }
    this.updateHeader({ fileWriteGuid: randomGuid() });
    const zero = new Uint8Array(Math.min(MiB, MAX_REPLAY_ZEROES));
    for (const w of seq.writes) {
      if ('data' in w) this.writeAt(w.fileOffset, w.data);
      else for (let at = 0; at < w.zeroLength; at += zero.length) this.writeAt(w.fileOffset + at, zero.subarray(0, Math.min(zero.length, w.zeroLength - at)));
    }
    this.extendTo(seq.lastFileOffset);
    this.sync();
    this.updateHeader({ logGuid: ZERO_GUID });
  }

  /** Writes the next header over the non-current slot and flushes it ([MS-VHDX] 2.2.2.1). */
  updateHeader(change: Partial<VhdxHeader>): void {
    const next = { ...this.header, ...change, sequenceNumber: this.header.sequenceNumber + 1 };
    const slot = this.slot === 0 ? 1 : 0;
    this.writeAt(HEADER_OFFSETS[slot], encodeHeader(next));
    this.sync();
    this.header = next;
    this.slot = slot;
  }

  /**
   * The session's first modification: new FileWriteGuid and DataWriteGuid in both slots
   * ([MS-VHDX] 2.2.2: before the first write; the DataWriteGuid identifies the content for
   * differencing children, so a parent must never get here).
   *
   * `keepDataWriteGuid`: a live merge writes into the parent only sectors its one child holds
   * itself, which that child's readers never take from the parent; keeping the DataWriteGuid
   * until the merge completes lets the child open against the parent after a crash at any point.
   */
  beginSession(o: { keepDataWriteGuid?: boolean } = {}): void {
    if (this.sessionStarted) return;
    const change = { fileWriteGuid: randomGuid(), ...(o.keepDataWriteGuid ? {} : { dataWriteGuid: randomGuid() }) };
    this.updateHeader(change);
    vhdxFaultPoint('session:header-1');
    this.updateHeader(change);
    this.sessionStarted = true;
  }

  /** Writes whole 4 KiB metadata sectors through the log (the order in the file comment). */
  transaction(sectors: LogSector[]): void {
    if (sectors.length === 0) return;
    const h = this.header;
    const logGuid = randomGuid();
    const entry = encodeLogEntry({
      logGuid,
      sequenceNumber: 1,
      tail: 0,
      flushedFileOffset: Math.floor(this.size / MiB) * MiB,
      lastFileOffset: roundUp(this.size, MiB),
      sectors,
    });
    if (entry.length > h.logLength)
      throw new VhdxCorruptError(this.path, `a ${entry.length}-byte log entry does not fit the ${h.logLength}-byte log`, VhdxError.Log);
    this.writeAt(h.logOffset, entry);
    vhdxFaultPoint('log:entry-written');
    this.sync();
    vhdxFaultPoint('log:entry-synced');
    this.updateHeader({ logGuid });
    vhdxFaultPoint('log:header-set');
    sectors.forEach((s, i) => {
      this.writeAt(s.fileOffset, s.data);
      if (i === 0 && sectors.length > 1) vhdxFaultPoint('log:applied-partly');
    });
    vhdxFaultPoint('log:applied');
    this.sync();
    vhdxFaultPoint('log:applied-synced');
    this.updateHeader({ logGuid: ZERO_GUID });
    vhdxFaultPoint('log:header-cleared');
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export { LOG_SECTOR };
