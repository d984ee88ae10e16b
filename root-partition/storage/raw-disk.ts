import * as fs from 'node:fs';
import { HvError } from '../../hypervisor/hv-error.ts';
import type { BlockBackend } from './block-backend.ts';

export const RAW_SECTOR_SIZE = 512;

export interface RawDiskOpenOptions {
  readOnly?: boolean;
  /** Judges the opened descriptor before anything is read from it (e.g. where it really leads); throws to refuse. */
  checkOpened?: (fd: number) => void;
}

export interface RawDiskCreateOptions {
  /** Image size in bytes; a positive multiple of 512. */
  sizeBytes: number;
  /** Replace an existing file instead of refusing. */
  overwrite?: boolean;
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
 * (missing file, permissions, a size that is not whole sectors) is refused at open.
 */
export class RawDisk implements BlockBackend {
  readonly sectorSize = RAW_SECTOR_SIZE;
  readonly sectorCount: number;
  readonly readOnly: boolean;
  readonly path: string;
  private fd: number | undefined;

  private constructor(path: string, fd: number, sectorCount: number, readOnly: boolean) {
    this.path = path;
    this.fd = fd;
    this.sectorCount = sectorCount;
    this.readOnly = readOnly;
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
      return new RawDisk(path, fd, st.size / RAW_SECTOR_SIZE, readOnly);
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
    try {
      fd = fs.openSync(path, opts.overwrite ? 'w+' : 'wx+');
    } catch (err) {
      throw openError(path, err);
    }
    try {
      fs.ftruncateSync(fd, sizeBytes);
    } catch (err) {
      fs.closeSync(fd);
      throw openError(path, err);
    }
    return new RawDisk(path, fd, sizeBytes / RAW_SECTOR_SIZE, false);
  }

  read(lba: number, dst: Uint8Array): void {
    const fd = this.checkRange(lba, dst.length);
    let done = 0;
    let pos = lba * RAW_SECTOR_SIZE;
    while (done < dst.length) {
      const n = fs.readSync(fd, dst, done, dst.length - done, pos);
      if (n === 0) throw new HvError(RawDiskError.Io, `${this.path}: unexpected end of file at byte ${pos}`);
      done += n;
      pos += n;
    }
  }

  write(lba: number, src: Uint8Array): void {
    if (this.readOnly) throw new HvError(RawDiskError.ReadOnly, `${this.path} is open read-only`);
    const fd = this.checkRange(lba, src.length);
    let done = 0;
    let pos = lba * RAW_SECTOR_SIZE;
    while (done < src.length) {
      const n = fs.writeSync(fd, src, done, src.length - done, pos);
      done += n;
      pos += n;
    }
  }

  flush(): void {
    const fd = this.requireOpen();
    if (!this.readOnly) fs.fdatasyncSync(fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
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
      throw new HvError(RawDiskError.OutOfRange, `${this.path}: ${bytes} bytes at sector ${lba} is outside the ${this.sectorCount}-sector disk or not whole sectors`);
    }
    return fd;
  }
}
