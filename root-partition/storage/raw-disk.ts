import * as fs from 'node:fs';
import { HvError } from '../../hypervisor/hv-error.ts';
import type { BlockBackend, BlockIoDone } from './block-backend.ts';
import { DiskIoError, DiskErrorLog } from './disk-io-error.ts';
import { lockDescriptor } from './file-lock.ts';

export const RAW_SECTOR_SIZE = 512;

/**
 * The system calls a raw disk makes on its open file. Tests put a fault injector here to make
 * pwrite or fdatasync fail with EIO/ENOSPC below everything the disk does about it.
 */
export interface RawDiskIo {
  pread(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  pwrite(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fdatasync(fd: number): void;
  /** The same calls run in libuv's thread pool (absent: the disk does synchronous I/O only). */
  preadAsync?(fd: number, buf: Uint8Array, offset: number, length: number, position: number, done: (err: Error | null, bytes: number) => void): void;
  pwriteAsync?(fd: number, buf: Uint8Array, offset: number, length: number, position: number, done: (err: Error | null, bytes: number) => void): void;
  fdatasyncAsync?(fd: number, done: (err: Error | null) => void): void;
}

export const hostIo: RawDiskIo = {
  pread: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  pwrite: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  fdatasync: (fd) => fs.fdatasyncSync(fd),
  preadAsync: (fd, buf, offset, length, position, done) => fs.read(fd, buf, offset, length, position, done),
  pwriteAsync: (fd, buf, offset, length, position, done) => fs.write(fd, buf, offset, length, position, done),
  fdatasyncAsync: (fd, done) => fs.fdatasync(fd, done),
};

export interface RawDiskOpenOptions {
  readOnly?: boolean;
  /**
   * Take the image's lock: exclusive for read-write, shared for read-only (default true). A
   * conflicting holder makes open fail with HV_ERR_FILE_LOCKED, naming the holder.
   */
  lock?: boolean;
  io?: RawDiskIo;
  /** Host log for I/O errors (with file and errno), rate-limited per disk. */
  log?: (message: string) => void;
  /** Judges the opened descriptor before anything is read from it (e.g. where it really leads); throws to refuse. */
  checkOpened?: (fd: number) => void;
}

export interface RawDiskCreateOptions {
  /** Image size in bytes; a positive multiple of 512. */
  sizeBytes: number;
  /** Replace an existing file instead of refusing (never one another process has locked). */
  overwrite?: boolean;
  io?: RawDiskIo;
  log?: (message: string) => void;
}

/** Error codes a caller can switch on (VM start refuses a bad disk with one of these). */
export const RawDiskError = {
  NotFound: 'HV_ERR_DISK_NOT_FOUND',
  NotAFile: 'HV_ERR_DISK_NOT_A_FILE',
  BadSize: 'HV_ERR_DISK_SIZE',
  AccessDenied: 'HV_ERR_DISK_ACCESS_DENIED',
  Exists: 'HV_ERR_DISK_EXISTS',
  ReadOnly: 'HV_ERR_DISK_READ_ONLY',
  OutOfRange: 'HV_ERR_DISK_RANGE',
  Closed: 'HV_ERR_DISK_CLOSED',
  Io: 'HV_ERR_DISK_IO',
  Locked: 'HV_ERR_FILE_LOCKED',
} as const;

function openError(path: string, err: unknown): HvError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new HvError(RawDiskError.NotFound, `disk image ${path} does not exist`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new HvError(RawDiskError.AccessDenied, `disk image ${path}: permission denied (${code})`);
  }
  if (code === 'EEXIST') return new HvError(RawDiskError.Exists, `disk image ${path} already exists`);
  if (code === 'EISDIR') return new HvError(RawDiskError.NotAFile, `disk image ${path} is a directory`);
  return new HvError(RawDiskError.Io, `disk image ${path}: ${(err as Error).message}`);
}

/**
 * A raw (flat) disk image: sector n lives at byte n × 512 of a regular file. Reads and writes go
 * straight between the file and the caller's view with pread/pwrite (for a guest, a view of guest
 * memory), so a sector is copied once, by the kernel. Everything that would make a VM fail later
 * (missing file, permissions, a size that is not whole sectors, another VM using it) is refused
 * at open.
 *
 * The image is locked on the disk's own descriptor (file-lock.ts), so the lock lives exactly as
 * long as this open disk: close() or the death of the process releases it.
 *
 * A failed flush is sticky, as the kernel's errseq and QEMU make it: after one fdatasync error
 * the written data may be lost although a later fdatasync succeeds (the kernel reports a
 * writeback error once per descriptor), so every later flush fails with the first error until
 * the image is opened again.
 */
/** An open raw image's descriptor as another thread of the process borrows it (RawDisk.borrow). */
export interface SharedRawDescriptor {
  path: string;
  fd: number;
  sectorCount: number;
  readOnly: boolean;
}

export class RawDisk implements BlockBackend {
  readonly sectorSize = RAW_SECTOR_SIZE;
  readonly sectorCount: number;
  readonly readOnly: boolean;
  readonly path: string;
  private fd: number | undefined;
  private readonly io: RawDiskIo;
  private readonly errorLog: DiskErrorLog | undefined;
  /** The first flush failure, reported by every flush after it. */
  private flushError: DiskIoError | undefined;
  /** Lowest sector written since the last successful flush (Infinity: none). */
  private firstUnflushed = Infinity;
  /** Counts of what reached the file, for tests and benchmarks (`queued`: of those, the ones that ran in the thread pool). */
  readonly stats = { reads: 0, writes: 0, flushes: 0, errors: 0, queued: 0 };
  /** Queued requests (reads, writes, flushes) not yet completed. */
  private queuedNow = 0;
  /** Queued writes started so far, and the ones of them still running, by their number. */
  private writesStarted = 0;
  private readonly writesRunning = new Set<number>();
  /** Queued flushes waiting for the writes started before them (FIFO; `after` never decreases). */
  private readonly flushWaiters: { after: number; done: BlockIoDone }[] = [];
  /** close() came while requests were queued: the descriptor (and its lock) goes when the last completes. */
  private closingFd: number | undefined;
  /** Time inside pread/pwrite/fdatasync, µs (BlockBackend.ioUs: the backend's part of a request). */
  ioUs = 0;

  private constructor(path: string, fd: number, sectorCount: number, readOnly: boolean, opts: { io?: RawDiskIo; log?: (m: string) => void }) {
    this.path = path;
    this.fd = fd;
    this.sectorCount = sectorCount;
    this.readOnly = readOnly;
    this.io = opts.io ?? hostIo;
    this.errorLog = opts.log ? new DiskErrorLog(opts.log) : undefined;
  }

  /**
   * The same open image on another thread of this process (a storvsp queue thread): the
   * descriptor is the owner's, so close() here leaves it open and the owner's lock stands. The
   * owner must keep it open until this one is done with it.
   */
  static borrow(share: SharedRawDescriptor, opts: { io?: RawDiskIo } = {}): RawDisk {
    const d = new RawDisk(share.path, share.fd, share.sectorCount, share.readOnly, opts);
    d.borrowed = true;
    return d;
  }
  private borrowed = false;

  /** What borrow() needs, while the image is open and no flush has failed (a failed one must stay this disk's). */
  get sharedDescriptor(): SharedRawDescriptor | null {
    if (this.fd === undefined || this.flushError !== undefined || this.borrowed) return null;
    return { path: this.path, fd: this.fd, sectorCount: this.sectorCount, readOnly: this.readOnly };
  }

  /**
   * A flush through the same descriptor failed on another thread: the kernel reported the
   * writeback error there, once, so from now on every flush here fails with it (as its own would).
   */
  adoptFailure(e: DiskIoError): void {
    if (e.operation === 'flush') this.flushError ??= e;
  }

  /** Opens an existing image. */
  static open(path: string, opts: RawDiskOpenOptions = {}): RawDisk {
    const readOnly = opts.readOnly ?? false;
    let fd: number;
    try {
      fd = fs.openSync(path, readOnly ? 'r' : 'r+');
    } catch (err) {
      throw openError(path, err);
    }
    try {
      opts.checkOpened?.(fd);
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new HvError(RawDiskError.NotAFile, `disk image ${path} is not a regular file`);
      if (st.size === 0 || st.size % RAW_SECTOR_SIZE !== 0) {
        throw new HvError(RawDiskError.BadSize, `disk image ${path} is ${st.size} bytes, not a positive multiple of ${RAW_SECTOR_SIZE}`);
      }
      if (opts.lock ?? true) lockDescriptor(fd, path, readOnly ? 'shared' : 'exclusive', 'disk image');
      return new RawDisk(path, fd, st.size / RAW_SECTOR_SIZE, readOnly, opts);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Creates an image of `sizeBytes` as a sparse file (ftruncate: no blocks allocated until written). */
  static create(path: string, opts: RawDiskCreateOptions): RawDisk {
    const { sizeBytes } = opts;
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % RAW_SECTOR_SIZE !== 0) {
      throw new HvError(RawDiskError.BadSize, `disk size ${sizeBytes} is not a positive multiple of ${RAW_SECTOR_SIZE}`);
    }
    let fd: number;
    // Not O_TRUNC: an image another process has locked must be refused before a byte changes.
    const { O_RDWR, O_CREAT, O_EXCL } = fs.constants;
    try {
      fd = fs.openSync(path, O_RDWR | O_CREAT | (opts.overwrite ? 0 : O_EXCL), 0o666);
    } catch (err) {
      throw openError(path, err);
    }
    try {
      lockDescriptor(fd, path, 'exclusive', 'disk image');
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    try {
      if (opts.overwrite) fs.ftruncateSync(fd, 0);
      fs.ftruncateSync(fd, sizeBytes);
    } catch (err) {
      fs.closeSync(fd);
      throw openError(path, err);
    }
    return new RawDisk(path, fd, sizeBytes / RAW_SECTOR_SIZE, false, opts);
  }

  read(lba: number, dst: Uint8Array): void {
    const fd = this.checkRange(lba, dst.length);
    let done = 0;
    let pos = lba * RAW_SECTOR_SIZE;
    const t0 = performance.now();
    try {
      while (done < dst.length) {
        const n = this.io.pread(fd, dst, done, dst.length - done, pos);
        if (n === 0) throw new DiskIoError(this.path, 'read', 'EUNKNOWN', Math.floor(pos / RAW_SECTOR_SIZE), `unexpected end of file at byte ${pos}`);
        done += n;
        pos += n;
      }
    } catch (err) {
      throw this.failed('read', Math.floor(pos / RAW_SECTOR_SIZE), err);
    } finally {
      this.ioUs += (performance.now() - t0) * 1000;
    }
    this.stats.reads++;
  }

  write(lba: number, src: Uint8Array): void {
    if (this.readOnly) throw new HvError(RawDiskError.ReadOnly, `${this.path} is open read-only`);
    const fd = this.checkRange(lba, src.length);
    let done = 0;
    let pos = lba * RAW_SECTOR_SIZE;
    if (lba < this.firstUnflushed) this.firstUnflushed = lba;
    const t0 = performance.now();
    try {
      while (done < src.length) {
        const n = this.io.pwrite(fd, src, done, src.length - done, pos);
        done += n;
        pos += n;
      }
    } catch (err) {
      throw this.failed('write', Math.floor(pos / RAW_SECTOR_SIZE), err);
    } finally {
      this.ioUs += (performance.now() - t0) * 1000;
    }
    this.stats.writes++;
  }

  get canQueue(): boolean {
    return this.fd !== undefined && this.io.preadAsync !== undefined && this.io.pwriteAsync !== undefined && this.io.fdatasyncAsync !== undefined;
  }

  get inFlight(): number {
    return this.queuedNow;
  }

  readAsync(lba: number, dst: Uint8Array, done: BlockIoDone): void {
    const fd = this.checkRange(lba, dst.length);
    this.startQueued();
    this.transferQueued(fd, 'read', dst, lba, (err) => {
      if (err === null) this.stats.reads++;
      this.endQueued();
      done(err);
    });
  }

  writeAsync(lba: number, src: Uint8Array, done: BlockIoDone, fua = false): void {
    if (this.readOnly) throw new HvError(RawDiskError.ReadOnly, `${this.path} is open read-only`);
    const fd = this.checkRange(lba, src.length);
    if (lba < this.firstUnflushed) this.firstUnflushed = lba;
    const n = ++this.writesStarted;
    this.writesRunning.add(n);
    this.startQueued();
    // Running until its completion (a FUA write's own fdatasync included): flushes after it wait.
    const finish = (err: unknown): void => {
      this.writesRunning.delete(n);
      this.endQueued();
      done(err);
      this.startReadyFlushes();
    };
    this.transferQueued(fd, 'write', src, lba, (err) => {
      if (err !== null) return finish(err);
      this.stats.writes++;
      if (!fua) return finish(null);
      if (this.flushError) return finish(this.flushError);
      this.io.fdatasyncAsync!(fd, (e) => {
        if (e) {
          this.flushError ??= this.failed('flush', lba, e);
          return finish(this.flushError);
        }
        this.stats.flushes++;
        finish(null);
      });
    });
  }

  flushAsync(done: BlockIoDone): void {
    this.requireOpen();
    this.startQueued();
    this.flushWaiters.push({ after: this.writesStarted, done });
    // Even with nothing to wait for, the flush completes after this call returns.
    queueMicrotask(() => this.startReadyFlushes());
  }

  /** Starts, in order, the waiting flushes whose earlier writes have all completed. */
  private startReadyFlushes(): void {
    let oldest = Infinity;
    for (const n of this.writesRunning) if (n < oldest) oldest = n;
    while (this.flushWaiters.length > 0 && this.flushWaiters[0]!.after < oldest) {
      const { done } = this.flushWaiters.shift()!;
      const finish = (err: unknown): void => {
        this.endQueued();
        done(err);
      };
      const fd = this.fd ?? this.closingFd;
      if (this.readOnly || fd === undefined) {
        finish(fd === undefined ? new HvError(RawDiskError.Closed, `${this.path} is closed`) : null);
        continue;
      }
      if (this.flushError) {
        finish(this.flushError);
        continue;
      }
      // Writes started after this point are not covered: firstUnflushed is reset only if none came.
      const startedBefore = this.writesStarted;
      this.io.fdatasyncAsync!(fd, (err) => {
        if (err) {
          const lba = Number.isFinite(this.firstUnflushed) ? this.firstUnflushed : 0;
          this.flushError ??= this.failed('flush', lba, err);
          return finish(this.flushError);
        }
        if (this.writesStarted === startedBefore) this.firstUnflushed = Infinity;
        this.stats.flushes++;
        finish(null);
      });
    }
  }

  private startQueued(): void {
    this.queuedNow++;
    this.stats.queued++;
  }

  private endQueued(): void {
    if (--this.queuedNow === 0 && this.closingFd !== undefined) {
      const fd = this.closingFd;
      this.closingFd = undefined;
      fs.closeSync(fd);
    }
  }

  /** pread/pwrite of the whole view in the thread pool, continuing after a short transfer. */
  private transferQueued(fd: number, kind: 'read' | 'write', view: Uint8Array, lba: number, done: (err: DiskIoError | null) => void): void {
    let off = 0;
    let pos = lba * RAW_SECTOR_SIZE;
    const step = (): void => {
      if (kind === 'read') this.io.preadAsync!(fd, view, off, view.length - off, pos, moved);
      else this.io.pwriteAsync!(fd, view, off, view.length - off, pos, moved);
    };
    const moved = (err: Error | null, n: number): void => {
      if (err) return done(this.failed(kind, Math.floor(pos / RAW_SECTOR_SIZE), err));
      if (n === 0 && kind === 'read') {
        const e = new DiskIoError(this.path, 'read', 'EUNKNOWN', Math.floor(pos / RAW_SECTOR_SIZE), `unexpected end of file at byte ${pos}`);
        return done(this.failed('read', e.lba, e));
      }
      off += n;
      pos += n;
      if (off < view.length) step();
      else done(null);
    };
    step();
  }

  flush(): void {
    const fd = this.requireOpen();
    if (this.readOnly) return;
    if (this.flushError) throw this.flushError;
    const t0 = performance.now();
    try {
      this.io.fdatasync(fd);
    } catch (err) {
      const lba = Number.isFinite(this.firstUnflushed) ? this.firstUnflushed : 0;
      this.flushError = this.failed('flush', lba, err);
      throw this.flushError;
    } finally {
      this.ioUs += (performance.now() - t0) * 1000;
    }
    this.firstUnflushed = Infinity;
    this.stats.flushes++;
  }

  /** The flush failure every later flush reports, until the image is opened again. */
  get stickyError(): DiskIoError | undefined {
    return this.flushError;
  }

  private failed(operation: 'read' | 'write' | 'flush', lba: number, err: unknown): DiskIoError {
    const e = DiskIoError.from(this.path, operation, lba, err);
    this.stats.errors++;
    this.errorLog?.report(e);
    return e;
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    if (this.borrowed) return;
    // A request still in the thread pool holds the number: closing it now could hand it to another file.
    if (this.queuedNow > 0) this.closingFd = fd;
    else fs.closeSync(fd);
  }

  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  private requireOpen(): number {
    if (this.fd === undefined) throw new HvError(RawDiskError.Closed, `${this.path} is closed`);
    return this.fd;
  }

  private checkRange(lba: number, bytes: number): number {
    const fd = this.requireOpen();
    if (!Number.isSafeInteger(lba) || lba < 0 || bytes % RAW_SECTOR_SIZE !== 0 || lba + bytes / RAW_SECTOR_SIZE > this.sectorCount) {
      throw new HvError(
        RawDiskError.OutOfRange,
        `${this.path}: ${bytes} bytes at sector ${lba} is outside the ${this.sectorCount}-sector disk or not whole sectors`,
      );
    }
    return fd;
  }
}
