/**
 * A VHDX file (fixed, dynamic or differencing) as a BlockBackend ([MS-VHDX] v8.0).
 *
 * Reads follow the BAT: FULLY_PRESENT blocks from the file, NOT_PRESENT from the parent of a
 * differencing disk (zeros otherwise), ZERO/UNDEFINED/UNMAPPED as zeros, PARTIALLY_PRESENT per
 * sector by the chunk's sector bitmap. Writes into a block not yet in the file allocate it at the
 * end (the file grows by ftruncate, sparse), write and flush the data, and only then publish the
 * BAT (and bitmap) change through one log transaction (vhdx-file.ts), so a BAT entry never points
 * at data that is not durable. A differencing disk's partial write into a block of the parent's
 * sets the bitmap bits of the sectors written; a whole-block write makes the block
 * FULLY_PRESENT.
 *
 * UNMAP ([MS-VHDX] 2.5.1.1) releases whole blocks only: a dynamic disk's become
 * PAYLOAD_BLOCK_UNMAPPED, a differencing disk's PAYLOAD_BLOCK_ZERO (UNMAPPED would let a reader
 * return the parent's data there), both with FileOffsetMB 0, through one log transaction. The
 * space they held stays in the file until `tsvisor disk compact`; a fixed disk keeps every block.
 *
 * Parents are opened read-only with a shared lock and never written (a write would change their
 * DataWriteGuid and orphan every child); the leaf takes the lock its access needs.
 */
import { HvError } from '../../../hypervisor/hv-error.ts';
import type { BlockBackend } from '../block-backend.ts';
import { DiskErrorLog, DiskIoError } from '../disk-io-error.ts';
import { RawDiskError } from '../raw-disk.ts';
import { BitmapState, encodeEntry, entryOffset, entryState, PayloadState } from './vhdx-bat.ts';
import { vhdxFaultPoint } from './vhdx-fault-point.ts';
import type { VhdxFile } from './vhdx-file.ts';
import { MiB, VhdxCorruptError, VhdxError } from './vhdx-format.ts';
import { guidToText } from './vhdx-guid.ts';
import type { VhdxLayout } from './vhdx-layout.ts';
import type { LogSector } from './vhdx-log.ts';

export type VhdxType = 'fixed' | 'dynamic' | 'differencing';

export class VhdxDisk implements BlockBackend {
  readonly sectorSize: number;
  readonly sectorCount: number;
  readonly readOnly: boolean;
  readonly path: string;
  readonly type: VhdxType;
  private readonly bat: DataView;
  private allocationEnd: number;
  private closed = false;
  private readonly errorLog: DiskErrorLog | undefined;
  private flushError: HvError | undefined;
  /** A metadata update that failed: the in-memory BAT may no longer match the file. */
  private metadataError: HvError | undefined;
  private firstUnflushed = Infinity;
  readonly stats = { reads: 0, writes: 0, flushes: 0, errors: 0, allocations: 0, transactions: 0 };

  constructor(
    readonly file: VhdxFile,
    readonly layout: VhdxLayout,
    readonly parent: VhdxDisk | null,
    log?: (m: string) => void,
  ) {
    this.path = file.path;
    this.readOnly = file.readOnly;
    this.sectorSize = layout.meta.logicalSectorSize;
    this.sectorCount = layout.meta.virtualSize / this.sectorSize;
    this.type = layout.meta.hasParent ? 'differencing' : layout.meta.leaveBlockAllocated ? 'fixed' : 'dynamic';
    this.bat = new DataView(layout.bat.buffer, layout.bat.byteOffset, layout.bat.byteLength);
    this.allocationEnd = layout.allocationEnd;
    this.errorLog = log ? new DiskErrorLog(log) : undefined;
  }

  get virtualSize(): number {
    return this.layout.meta.virtualSize;
  }

  get blockSize(): number {
    return this.layout.meta.blockSize;
  }

  /** The current header's DataWriteGuid: what a child's parent_linkage names. */
  get identifier(): string {
    return guidToText(this.file.header.dataWriteGuid);
  }

  read(lba: number, dst: Uint8Array): void {
    this.checkRange(lba, dst.length);
    try {
      this.readAt(lba * this.sectorSize, dst);
    } catch (err) {
      throw this.failed('read', lba, err);
    }
    this.stats.reads++;
  }

  write(lba: number, src: Uint8Array): void {
    if (this.readOnly) throw new HvError(RawDiskError.ReadOnly, `${this.path} is open read-only`);
    this.checkRange(lba, src.length);
    if (this.metadataError) throw this.metadataError;
    if (lba < this.firstUnflushed) this.firstUnflushed = lba;
    try {
      this.writeAt(lba * this.sectorSize, src);
    } catch (err) {
      throw this.failed('write', lba, err);
    }
    this.stats.writes++;
  }

  flush(): void {
    this.requireOpen();
    if (this.readOnly) return;
    if (this.flushError) throw this.flushError;
    try {
      this.file.sync();
    } catch (err) {
      this.flushError = this.failed('flush', Number.isFinite(this.firstUnflushed) ? this.firstUnflushed : 0, err);
      throw this.flushError;
    }
    this.firstUnflushed = Infinity;
    this.stats.flushes++;
  }

  get stickyError(): HvError | undefined {
    return this.flushError;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
    this.parent?.close();
  }

  /** Whole blocks, in sectors, for a dynamic or differencing disk; a fixed disk releases nothing. */
  get unmapGranularity(): number | undefined {
    return this.type === 'fixed' ? undefined : this.layout.meta.blockSize / this.sectorSize;
  }

  unmap(lba: number, sectors: number): [number, number][] {
    if (this.readOnly) throw new HvError(RawDiskError.ReadOnly, `${this.path} is open read-only`);
    this.checkRange(lba, sectors * this.sectorSize);
    if (this.metadataError) throw this.metadataError;
    if (this.type === 'fixed') return [];
    const bs = this.layout.meta.blockSize;
    const start = lba * this.sectorSize;
    const end = start + sectors * this.sectorSize;
    // The last block may be short: ending at the disk's end covers it whole.
    const first = Math.ceil(start / bs);
    const last = end === this.virtualSize ? Math.ceil(end / bs) : Math.floor(end / bs);
    const released = this.parent ? PayloadState.Zero : PayloadState.Unmapped;
    const sectorsOf = new Map<number, Uint8Array>();
    const newEntries: [number, Uint8Array][] = [];
    const runs: [number, number][] = [];
    for (let b = first; b < last; b++) {
      const { state } = this.blockEntry(b);
      // Already reading zero from this file: nothing to record (a differencing NOT_PRESENT reads the parent).
      if (state === released || (!this.parent && (state === PayloadState.NotPresent || state === PayloadState.Zero || state === PayloadState.Unmapped)))
        continue;
      const index = this.layout.geometry.payloadIndex(b);
      const e = encodeEntry(released, 0);
      this.metaSector(sectorsOf, this.layout.batRegion.fileOffset + Math.floor((index * 8) / 4096) * 4096).set(e, (index * 8) % 4096);
      newEntries.push([index, e]);
      const at = (b * bs) / this.sectorSize;
      const prev = runs.at(-1);
      const n = Math.min(bs, this.virtualSize - b * bs) / this.sectorSize;
      if (prev && prev[0] + prev[1] === at) prev[1] += n;
      else runs.push([at, n]);
    }
    if (newEntries.length === 0) return [];
    try {
      this.file.beginSession();
      this.file.transaction([...sectorsOf].map(([fileOffset, data]): LogSector => ({ fileOffset, data })));
    } catch (err) {
      this.metadataError = new HvError(
        VhdxError.Log,
        `VHDX ${this.path}: a metadata update failed (${(err as Error).message}); reopen the disk to recover it from its log`,
      );
      throw this.failed('write', lba, err);
    }
    for (const [i, e] of newEntries) new Uint8Array(this.bat.buffer, this.bat.byteOffset + i * 8, 8).set(e);
    this.stats.transactions++;
    return runs;
  }

  /** The payload state and file offset of block `b`. */
  blockEntry(b: number): { state: number; offset: number } {
    const i = this.layout.geometry.payloadIndex(b);
    return { state: entryState(this.bat, i), offset: entryOffset(this.bat, i) };
  }

  /** Reads virtual bytes [voff, voff + dst.length) of this disk (with its parents). */
  readAt(voff: number, dst: Uint8Array): void {
    const bs = this.layout.meta.blockSize;
    for (let done = 0; done < dst.length; ) {
      const v = voff + done;
      const block = Math.floor(v / bs);
      const inBlock = v - block * bs;
      const piece = dst.subarray(done, done + Math.min(dst.length - done, bs - inBlock));
      const { state, offset } = this.blockEntry(block);
      if (state === PayloadState.FullyPresent) this.file.readAt(offset + inBlock, piece);
      else if (state === PayloadState.PartiallyPresent) this.readPartial(block, offset, v, piece);
      else if (state === PayloadState.NotPresent && this.parent) this.readParent(v, piece);
      else piece.fill(0);
      done += piece.length;
    }
  }

  private readParent(voff: number, dst: Uint8Array): void {
    this.parent!.readAt(voff, dst);
  }

  /** Runs of sectors from this file (bit 1) or the parent (bit 0). */
  private readPartial(block: number, offset: number, voff: number, dst: Uint8Array): void {
    const lss = this.sectorSize;
    const bits = this.bitmapBits(block, voff, dst.length);
    const inBlock = voff - block * this.layout.meta.blockSize;
    const sectors = dst.length / lss;
    for (let s = 0; s < sectors; ) {
      const here = bits[s];
      let e = s + 1;
      while (e < sectors && bits[e] === here) e++;
      const part = dst.subarray(s * lss, e * lss);
      if (here) this.file.readAt(offset + inBlock + s * lss, part);
      else this.readParent(voff + s * lss, part);
      s = e;
    }
  }

  /** One byte (0/1) per sector of [voff, voff + length), from the chunk's sector bitmap. */
  bitmapBits(block: number, voff: number, length: number): Uint8Array {
    const g = this.layout.geometry;
    const sbOffset = entryOffset(this.bat, g.bitmapIndex(Math.floor(block / g.chunkRatio)));
    const first = (voff / this.sectorSize) % 2 ** 23;
    const count = length / this.sectorSize;
    const byte0 = Math.floor(first / 8);
    const raw = this.file.readMeta(sbOffset + byte0, Math.floor((first + count - 1) / 8) - byte0 + 1);
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const bit = first + i;
      out[i] = (raw[(bit >> 3) - byte0] >> (bit & 7)) & 1;
    }
    return out;
  }

  private writeAt(voff: number, src: Uint8Array): void {
    const bs = this.layout.meta.blockSize;
    const g = this.layout.geometry;
    const sectors = new Map<number, Uint8Array>();
    const batSector = (index: number) => this.metaSector(sectors, this.layout.batRegion.fileOffset + Math.floor((index * 8) / 4096) * 4096);
    let needSync = false;
    const newEntries: [number, Uint8Array][] = [];
    // Sector-bitmap blocks allocated by this write, by chunk (the BAT shows them only after it).
    const newBitmaps = new Map<number, number>();
    this.file.beginSession();
    for (let done = 0; done < src.length; ) {
      const v = voff + done;
      const block = Math.floor(v / bs);
      const inBlock = v - block * bs;
      const piece = src.subarray(done, done + Math.min(src.length - done, bs - inBlock));
      done += piece.length;
      const index = g.payloadIndex(block);
      const { state, offset } = this.blockEntry(block);
      if (state === PayloadState.FullyPresent) {
        this.file.writeAt(offset + inBlock, piece);
        continue;
      }
      if (state === PayloadState.PartiallyPresent) {
        this.file.writeAt(offset + inBlock, piece);
        needSync = this.setBits(sectors, block, v, piece.length, newBitmaps) || needSync;
        continue;
      }
      // Not in this file. The new block reads zero except what is written, which is right for
      // every state but a differencing disk's NOT_PRESENT, where the rest is the parent's.
      const whole = piece.length === bs || (inBlock === 0 && v + piece.length === this.virtualSize);
      const partialChild = state === PayloadState.NotPresent && this.parent !== null && !whole;
      const at = this.allocate(bs);
      this.file.writeAt(at + inBlock, piece);
      needSync = true;
      if (partialChild) {
        const chunk = Math.floor(block / g.chunkRatio);
        const sbIndex = g.bitmapIndex(chunk);
        if (entryState(this.bat, sbIndex) !== BitmapState.Present && !newBitmaps.has(chunk)) {
          const sbAt = this.allocate(MiB);
          const e = encodeEntry(BitmapState.Present, sbAt);
          batSector(sbIndex).set(e, (sbIndex * 8) % 4096);
          newEntries.push([sbIndex, e]);
          newBitmaps.set(chunk, sbAt);
        }
        const e = encodeEntry(PayloadState.PartiallyPresent, at);
        batSector(index).set(e, (index * 8) % 4096);
        newEntries.push([index, e]);
        this.setBits(sectors, block, v, piece.length, newBitmaps);
      } else {
        const e = encodeEntry(PayloadState.FullyPresent, at);
        batSector(index).set(e, (index * 8) % 4096);
        newEntries.push([index, e]);
      }
    }
    if (!needSync) return;
    try {
      vhdxFaultPoint('alloc:data-written');
      this.file.sync();
      this.file.transaction([...sectors].map(([fileOffset, data]): LogSector => ({ fileOffset, data })));
    } catch (err) {
      this.metadataError = new HvError(
        VhdxError.Log,
        `VHDX ${this.path}: a metadata update failed (${(err as Error).message}); reopen the disk to recover it from its log`,
      );
      throw err;
    }
    for (const [i, e] of newEntries) new Uint8Array(this.bat.buffer, this.bat.byteOffset + i * 8, 8).set(e);
    this.stats.transactions++;
  }

  /** The 4 KiB metadata sector at `fileOffset`, read once per transaction and edited in place. */
  private metaSector(sectors: Map<number, Uint8Array>, fileOffset: number): Uint8Array {
    let s = sectors.get(fileOffset);
    if (!s) {
      s = this.file.readMeta(fileOffset, 4096);
      sectors.set(fileOffset, s);
    }
    return s;
  }

  /** Sets the bitmap bits of the sectors written; returns whether any changed. */
  private setBits(sectors: Map<number, Uint8Array>, block: number, voff: number, length: number, newBitmaps: Map<number, number>): boolean {
    const g = this.layout.geometry;
    const chunk = Math.floor(block / g.chunkRatio);
    const sbOffset = newBitmaps.get(chunk) ?? entryOffset(this.bat, g.bitmapIndex(chunk));
    const first = (voff / this.sectorSize) % 2 ** 23;
    let changed = false;
    for (let bit = first; bit < first + length / this.sectorSize; bit++) {
      const byteAt = sbOffset + (bit >> 3);
      const sector = this.metaSector(sectors, byteAt - (byteAt % 4096));
      const i = byteAt % 4096;
      const mask = 1 << (bit & 7);
      if (!(sector[i] & mask)) {
        sector[i] |= mask;
        changed = true;
      }
    }
    return changed;
  }

  private allocate(size: number): number {
    const at = this.allocationEnd;
    this.allocationEnd = at + size;
    this.file.extendTo(this.allocationEnd);
    this.stats.allocations++;
    return at;
  }

  private failed(operation: 'read' | 'write' | 'flush', lba: number, err: unknown): HvError {
    if (err instanceof VhdxCorruptError || (err instanceof HvError && !(err instanceof DiskIoError) && err.code !== 'HV_ERR_DISK_IO')) return err as HvError;
    const e = DiskIoError.from(this.path, operation, lba, err);
    this.stats.errors++;
    this.errorLog?.report(e);
    return e;
  }

  private requireOpen(): void {
    if (this.closed) throw new HvError(RawDiskError.Closed, `${this.path} is closed`);
  }

  private checkRange(lba: number, bytes: number): void {
    this.requireOpen();
    if (!Number.isSafeInteger(lba) || lba < 0 || bytes % this.sectorSize !== 0 || lba + bytes / this.sectorSize > this.sectorCount) {
      throw new HvError(
        RawDiskError.OutOfRange,
        `${this.path}: ${bytes} bytes at sector ${lba} is outside the ${this.sectorCount}-sector disk or not whole sectors`,
      );
    }
  }
}
