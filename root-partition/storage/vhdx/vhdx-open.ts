/**
 * Opening a VHDX file and, for a differencing disk, its chain of parents ([MS-VHDX] 2.6.2.6):
 * each parent found by its locator's relative_path, opened read-only with a shared lock, and
 * accepted only when its DataWriteGuid is the one the child links to and its size and sector
 * size match. Chains are bounded (MAX_CHAIN_DEPTH) and a file met twice is a loop.
 */
import * as fs from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { lockDescriptor } from '../file-lock.ts';
import { RawDiskError, type RawDiskIo } from '../raw-disk.ts';
import { VhdxDisk } from './vhdx-disk.ts';
import { VhdxFile } from './vhdx-file.ts';
import { VhdxCorruptError, VhdxError } from './vhdx-format.ts';
import { guidToText } from './vhdx-guid.ts';
import { readLayout } from './vhdx-layout.ts';
import { linkageMatches } from './vhdx-parent-locator.ts';

/** Longest chain tsvisor follows (a checkpoint tree is a chain of this depth at most). */
export const MAX_CHAIN_DEPTH = 64;

export interface VhdxOpenOptions {
  readOnly?: boolean;
  /** Take the lock (exclusive for read-write, shared for read-only; parents always shared). Default true. */
  lock?: boolean;
  io?: RawDiskIo;
  log?: (message: string) => void;
  /** Judges each opened descriptor (the leaf's and every parent's) before it is read; throws to refuse. */
  checkOpened?: (fd: number, path: string) => void;
  /** Judges a parent's path before it is opened (e.g. storage roots); throws to refuse. */
  checkPath?: (path: string) => void;
}

function openError(path: string, err: unknown): HvError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new HvError(RawDiskError.NotFound, `disk image ${path} does not exist`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
    return new HvError(RawDiskError.AccessDenied, `disk image ${path}: permission denied (${code})`);
  return new HvError(RawDiskError.Io, `disk image ${path}: ${(err as Error).message}`);
}

export function openVhdx(path: string, opts: VhdxOpenOptions = {}): VhdxDisk {
  return openInChain(path, opts, opts.readOnly ?? false, [], 0);
}

function openInChain(path: string, opts: VhdxOpenOptions, readOnly: boolean, seen: string[], depth: number): VhdxDisk {
  let fd: number;
  try {
    fd = fs.openSync(path, readOnly ? 'r' : 'r+');
  } catch (err) {
    throw openError(path, err);
  }
  let file: VhdxFile | undefined;
  let parent: VhdxDisk | null = null;
  try {
    opts.checkOpened?.(fd, path);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new HvError(RawDiskError.NotAFile, `disk image ${path} is not a regular file`);
    const id = `${st.dev}:${st.ino}`;
    if (seen.includes(id)) throw new VhdxCorruptError(path, 'the differencing chain loops back to this file', VhdxError.Parent);
    if (opts.lock ?? true) lockDescriptor(fd, path, readOnly ? 'shared' : 'exclusive', 'disk image');
    const sig = new Uint8Array(8);
    fs.readSync(fd, sig, 0, 8, 0);
    if (Buffer.from(sig).toString('latin1') !== 'vhdxfile') throw new VhdxCorruptError(path, 'no "vhdxfile" signature at offset 0');
    file = new VhdxFile(path, fd, readOnly, opts.io);
    file.loadHeaders();
    const layout = readLayout(file);
    if (layout.meta.logicalSectorSize !== 512) {
      throw new VhdxCorruptError(
        path,
        `logical sector size ${layout.meta.logicalSectorSize}: tsvisor's controllers use 512-byte sectors`,
        VhdxError.Unsupported,
      );
    }
    if (layout.meta.locator) {
      if (depth + 1 > MAX_CHAIN_DEPTH) throw new VhdxCorruptError(path, `differencing chain deeper than ${MAX_CHAIN_DEPTH}`, VhdxError.Parent);
      const parentPath = parentPathOf(path, layout.meta.locator);
      opts.checkPath?.(parentPath);
      parent = openInChain(parentPath, opts, true, [...seen, id], depth + 1);
      if (!linkageMatches(layout.meta.locator, parent.file.header.dataWriteGuid)) {
        throw new VhdxCorruptError(
          path,
          `its parent ${parentPath} has changed since this disk was made from it (parent_linkage ` +
            `${layout.meta.locator.get('parent_linkage')}, the parent's DataWriteGuid {${guidToText(parent.file.header.dataWriteGuid)}})`,
          VhdxError.Parent,
        );
      }
      if (parent.virtualSize !== layout.meta.virtualSize || parent.sectorSize !== layout.meta.logicalSectorSize) {
        throw new VhdxCorruptError(
          path,
          `its parent ${parentPath} is ${parent.virtualSize} bytes of ${parent.sectorSize}-byte sectors, ` +
            `this disk ${layout.meta.virtualSize} of ${layout.meta.logicalSectorSize}`,
          VhdxError.Parent,
        );
      }
    }
    return new VhdxDisk(file, layout, parent, opts.log);
  } catch (err) {
    parent?.close();
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * The parent's host path from the locator: relative_path against the child's directory (the
 * spec's first choice), `\` read as `/`. absolute_win32_path and volume_path name Windows
 * volumes, which this host cannot resolve.
 */
export function parentPathOf(childPath: string, locator: Map<string, string>): string {
  const rel = locator.get('relative_path');
  if (!rel) {
    throw new VhdxCorruptError(
      childPath,
      `its parent locator has no relative_path (absolute_win32_path ${locator.get('absolute_win32_path') ?? 'none'} cannot be resolved here)`,
      VhdxError.Parent,
    );
  }
  const posix = rel.replace(/\\/g, '/');
  if (isAbsolute(posix) || /^[a-z]:/i.test(posix)) throw new VhdxCorruptError(childPath, `relative_path ${rel} is not relative`, VhdxError.Parent);
  return resolve(dirname(resolve(childPath)), posix);
}
