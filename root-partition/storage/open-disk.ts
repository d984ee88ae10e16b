/**
 * Opens a disk image in the format its signature shows (disk-format.ts): raw files as RawDisk,
 * VHDX files (named .vhdx/.avhdx) as VhdxDisk with their parent chain, every other recognised
 * format refused with the command that converts it. This is the one entry point VM workers and
 * the CLI use, so no container is ever served to a guest as raw data.
 */
import * as fs from 'node:fs';
import { HvError } from '../../hypervisor/hv-error.ts';
import type { BlockBackend } from './block-backend.ts';
import { detectFormat, DiskFormatError, namedVhdx, unsupportedFormatError, type DiskFormat } from './disk-format.ts';
import { RawDisk, RawDiskError, type RawDiskIo } from './raw-disk.ts';
import { openVhdx } from './vhdx/vhdx-open.ts';

export interface DiskOpenOptions {
  readOnly?: boolean;
  lock?: boolean;
  io?: RawDiskIo;
  log?: (message: string) => void;
  /** Judges every opened descriptor (the image's, and each parent's for a chain) before it is read. */
  checkOpened?: (fd: number, path: string) => void;
  /** Judges a differencing disk's parent path before it is opened. */
  checkPath?: (path: string) => void;
}

/** The format of the file at `path` (checked with `checkOpened` before a byte is read). */
export function formatOf(path: string, checkOpened?: (fd: number, path: string) => void): DiskFormat {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new HvError(RawDiskError.NotFound, `disk image ${path} does not exist`);
    if (code === 'EACCES' || code === 'EPERM') throw new HvError(RawDiskError.AccessDenied, `disk image ${path}: permission denied (${code})`);
    throw new HvError(RawDiskError.Io, `disk image ${path}: ${(err as Error).message}`);
  }
  try {
    checkOpened?.(fd, path);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new HvError(RawDiskError.NotAFile, `disk image ${path} is not a regular file`);
    return detectFormat(fd, st.size);
  } finally {
    fs.closeSync(fd);
  }
}

export function openDisk(path: string, opts: DiskOpenOptions = {}): BlockBackend {
  const format = formatOf(path, opts.checkOpened);
  if (format === 'raw' && namedVhdx(path)) {
    // A VHDX whose identifier was overwritten must not be served as raw data (and then written).
    throw new HvError(
      DiskFormatError.NameMismatch,
      `disk image ${path} is named as VHDX but has no "vhdxfile" signature at byte 0; ` + 'it is damaged, or a raw image under the wrong name',
    );
  }
  if (format === 'raw') {
    return RawDisk.open(path, {
      readOnly: opts.readOnly,
      lock: opts.lock,
      io: opts.io,
      log: opts.log,
      ...(opts.checkOpened ? { checkOpened: (fd: number) => opts.checkOpened!(fd, path) } : {}),
    });
  }
  if (format !== 'vhdx') throw unsupportedFormatError(path, format);
  // A guest can write "vhdxfile" into sector 0 of its raw disk; only the host's file name may
  // make a file VHDX, or that guest could name a parent and read another VM's disk through it.
  if (!namedVhdx(path)) {
    throw new HvError(
      DiskFormatError.NameMismatch,
      `disk image ${path} holds a VHDX signature but its name does not end in .vhdx or .avhdx; ` +
        'rename it if it is a VHDX file (a raw image whose guest wrote this signature is refused rather than parsed)',
    );
  }
  return openVhdx(path, opts);
}
