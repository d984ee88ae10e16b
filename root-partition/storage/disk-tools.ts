/**
 * Offline disk image operations behind `tsvisor disk` (Hyper-V's New-VHD, Get-VHD, Convert-VHD,
 * Resize-VHD, Merge-VHD, Optimize-VHD): create, describe, convert between raw and VHDX (a chain
 * is flattened), grow, merge a differencing disk into its parent, and compact a dynamic VHDX by
 * copying only non-zero data. The VHDX-specific edits are in vhdx/vhdx-edit.ts.
 * Every operation takes the images' locks, so an attached image is refused, not damaged.
 */
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { HvError } from '../../hypervisor/hv-error.ts';
import type { BlockBackend } from './block-backend.ts';
import { namedVhdx } from './disk-format.ts';
import { formatOf, openDisk, type DiskOpenOptions } from './open-disk.ts';
import { RawDisk, RawDiskError } from './raw-disk.ts';
import { createVhdx, type VhdxCreateOptions } from './vhdx/vhdx-create.ts';
import { VhdxDisk } from './vhdx/vhdx-disk.ts';
import { guidToText } from './vhdx/vhdx-guid.ts';
import { mergeVhdxSteps, resizeVhdx, setIdentity } from './vhdx/vhdx-edit.ts';
import { DiskJobCancelled, runSteps, type DiskSteps } from './disk-job.ts';
import { openVhdx, parentPathOf } from './vhdx/vhdx-open.ts';
import { lockDescriptor } from './file-lock.ts';

export type DiskKind = 'raw' | 'fixed' | 'dynamic' | 'differencing';
/** Called as work proceeds: bytes done of bytes in all. */
export type Progress = (done: number, total: number) => void;

export interface NewDiskOptions {
  kind: DiskKind;
  sizeBytes?: number;
  blockSizeBytes?: number;
  parentPath?: string;
  physicalSectorSize?: 512 | 4096;
}

/** New-VHD: the format follows the name (.vhdx/.avhdx VHDX, anything else raw). */
export function newDisk(path: string, o: NewDiskOptions): DiskInfo {
  if (namedVhdx(path)) {
    if (o.kind === 'raw') throw new HvError(RawDiskError.BadSize, `${path} is named as VHDX; a raw image needs another name`);
    createVhdx(path, {
      type: o.kind,
      sizeBytes: o.sizeBytes,
      blockSizeBytes: o.blockSizeBytes,
      parentPath: o.parentPath,
      physicalSectorSize: o.physicalSectorSize,
    });
  } else {
    if (o.kind !== 'raw' && o.kind !== 'fixed') throw new HvError(RawDiskError.BadSize, `${o.kind} disks are VHDX: name the file .vhdx`);
    RawDisk.create(path, { sizeBytes: o.sizeBytes ?? 0 }).close();
  }
  return diskInfo(path);
}

/** Get-VHD's fields, as far as they apply here. */
export interface DiskInfo {
  path: string;
  format: 'raw' | 'vhdx';
  type: DiskKind;
  sizeBytes: number;
  fileSizeBytes: number;
  /** Bytes the file takes on the host file system (sparse files take less). */
  allocatedBytes: number;
  blockSizeBytes: number | null;
  logicalSectorSize: number;
  physicalSectorSize: number;
  /** VHDX Virtual Disk ID (SCSI page 83). */
  diskIdentifier: string | null;
  /** The current DataWriteGuid: what a child's parent_linkage names. */
  identifier: string | null;
  parentPath: string | null;
  parentIdentifier: string | null;
  /** Share of the payload blocks present in this file. */
  allocatedBlocks: number | null;
  blocks: number | null;
  /** Percent of allocated blocks (after the first) that do not follow the previous one in the file; null for raw. */
  fragmentationPercent: number | null;
}

/** `open`: how to open it (e.g. without locks to describe an attached image, or confined to storage roots). */
export function diskInfo(path: string, open: Omit<DiskOpenOptions, 'readOnly'> = {}): DiskInfo {
  const st = fs.statSync(path);
  const base = { path, fileSizeBytes: st.size, allocatedBytes: st.blocks * 512 };
  const d = openDisk(path, { ...open, readOnly: true });
  try {
    if (!(d instanceof VhdxDisk)) {
      return {
        ...base,
        format: 'raw',
        type: 'raw',
        sizeBytes: d.sectorCount * d.sectorSize,
        blockSizeBytes: null,
        logicalSectorSize: 512,
        physicalSectorSize: 512,
        diskIdentifier: null,
        identifier: null,
        parentPath: null,
        parentIdentifier: null,
        allocatedBlocks: null,
        blocks: null,
        fragmentationPercent: null,
      };
    }
    const m = d.layout.meta;
    let present = 0;
    let breaks = 0;
    let previous = -1;
    for (let b = 0; b < d.layout.geometry.payloadBlocks; b++) {
      const { state, offset } = d.blockEntry(b);
      if (state < 6) continue;
      if (present > 0 && offset !== previous + m.blockSize) breaks++;
      present++;
      previous = offset;
    }
    return {
      ...base,
      format: 'vhdx',
      type: d.type,
      sizeBytes: m.virtualSize,
      blockSizeBytes: m.blockSize,
      logicalSectorSize: m.logicalSectorSize,
      physicalSectorSize: m.physicalSectorSize,
      diskIdentifier: guidToText(m.diskId),
      identifier: d.identifier,
      parentPath: m.locator ? parentPathOf(path, m.locator) : null,
      parentIdentifier: m.locator?.get('parent_linkage')?.replace(/[{}]/g, '').toLowerCase() ?? null,
      allocatedBlocks: present,
      blocks: d.layout.geometry.payloadBlocks,
      fragmentationPercent: present > 1 ? Math.round((100 * breaks) / (present - 1)) : 0,
    };
  } finally {
    d.close();
  }
}

const COPY_CHUNK = 4 * 1024 * 1024;

function isZero(b: Uint8Array): boolean {
  const w = new BigUint64Array(b.buffer, b.byteOffset, b.length / 8);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  return true;
}

/** Zero detection granule: the smallest VHDX block, so an all-zero block is never allocated. */
const ZERO_GRANULE = 1024 * 1024;

/**
 * Copies `src` into `dst` (which reads zero everywhere to start with), skipping all-zero
 * megabytes and writing each run of non-zero ones in one call.
 */
function* copyData(src: BlockBackend, dst: BlockBackend, progress?: Progress): DiskSteps<void> {
  const total = src.sectorCount * src.sectorSize;
  const buf = new Uint8Array(COPY_CHUNK);
  for (let at = 0; at < total; at += COPY_CHUNK) {
    const piece = buf.subarray(0, Math.min(COPY_CHUNK, total - at));
    src.read(at / src.sectorSize, piece);
    for (let g = 0; g < piece.length; ) {
      const granule = (o: number) => piece.subarray(o, Math.min(o + ZERO_GRANULE, piece.length));
      if (isZero(granule(g))) {
        g += ZERO_GRANULE;
        continue;
      }
      let e = g + ZERO_GRANULE;
      while (e < piece.length && !isZero(granule(e))) e += ZERO_GRANULE;
      e = Math.min(e, piece.length);
      dst.write((at + g) / dst.sectorSize, piece.subarray(g, e));
      g = e;
    }
    progress?.(at + piece.length, total);
    yield;
  }
  dst.flush();
}

export interface ConvertOptions {
  /** Destination kind; by default dynamic for a .vhdx name, raw otherwise. */
  kind?: Exclude<DiskKind, 'differencing'>;
  blockSizeBytes?: number;
  progress?: Progress;
}

/** Convert-VHD: raw ↔ VHDX, fixed ↔ dynamic; a differencing chain becomes one self-contained disk. */
export function convertDisk(srcPath: string, dstPath: string, o: ConvertOptions = {}): DiskInfo {
  return runSteps(convertSteps(srcPath, dstPath, o));
}

/** convertDisk as safe points (disk-job.ts): stopped, the new file is removed; the source is only ever read. */
export function* convertSteps(srcPath: string, dstPath: string, o: ConvertOptions = {}): DiskSteps<DiskInfo> {
  if (fs.existsSync(dstPath)) throw new HvError(RawDiskError.Exists, `disk image ${dstPath} already exists`);
  const src = openDisk(srcPath, { readOnly: true });
  let created = false;
  try {
    const size = src.sectorCount * src.sectorSize;
    const kind = o.kind ?? (namedVhdx(dstPath) ? 'dynamic' : 'raw');
    let dst: BlockBackend;
    if (namedVhdx(dstPath)) {
      if (kind === 'raw') throw new HvError(RawDiskError.BadSize, `${dstPath} is named as VHDX; convert to raw under another name`);
      const block = o.blockSizeBytes ?? (src instanceof VhdxDisk ? src.blockSize : undefined);
      createVhdx(dstPath, { type: kind, sizeBytes: size, blockSizeBytes: block });
      created = true;
      dst = openVhdx(dstPath);
    } else {
      dst = RawDisk.create(dstPath, { sizeBytes: size });
      created = true;
    }
    try {
      yield* copyData(src, dst, o.progress);
    } finally {
      dst.close();
    }
  } catch (e) {
    if (created) fs.rmSync(dstPath, { force: true });
    if (e instanceof DiskJobCancelled)
      throw new DiskJobCancelled(`the conversion of ${srcPath} was cancelled: ${dstPath} was removed, ${srcPath} is unchanged`);
    throw e;
  } finally {
    src.close();
  }
  return diskInfo(dstPath);
}

/**
 * Optimize-VHD for a dynamic VHDX: a copy that holds only non-zero data replaces the file
 * (rename, so a crash leaves the old or the new file whole). The copy keeps the Virtual Disk ID
 * and the DataWriteGuid, since the content is the same: differencing children stay linked.
 */
export function compactDisk(path: string, progress?: Progress): { before: DiskInfo; after: DiskInfo } {
  return runSteps(compactSteps(path, progress));
}

/** compactDisk as safe points (disk-job.ts): stopped, the copy is removed and the file is as it was. */
export function* compactSteps(path: string, progress?: Progress): DiskSteps<{ before: DiskInfo; after: DiskInfo }> {
  if (formatOf(path) !== 'vhdx') throw new HvError(RawDiskError.BadSize, `${path} is not a VHDX file; only dynamic VHDX files are compacted`);
  const before = diskInfo(path);
  if (before.type !== 'dynamic') throw new HvError(RawDiskError.BadSize, `${path} is a ${before.type} disk; only dynamic VHDX files are compacted`);
  const tmp = join(dirname(path), `.${Date.now()}-${process.pid}.compact.vhdx`);
  // The original stays locked (exclusive) until the copy has replaced it.
  const src = openVhdx(path);
  try {
    const opts: VhdxCreateOptions = {
      type: 'dynamic',
      sizeBytes: src.virtualSize,
      blockSizeBytes: src.blockSize,
      physicalSectorSize: src.layout.meta.physicalSectorSize as 512 | 4096,
    };
    createVhdx(tmp, opts);
    const dst = openVhdx(tmp);
    try {
      yield* copyData(src, dst, progress);
      setIdentity(dst, src.layout.meta.diskId, src.file.header.dataWriteGuid);
    } finally {
      dst.close();
    }
    fs.renameSync(tmp, path);
    const dirFd = fs.openSync(dirname(path), 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof DiskJobCancelled) throw new DiskJobCancelled(`compacting ${path} was cancelled: the file is as it was`);
    throw e;
  } finally {
    src.close();
  }
  return { before, after: diskInfo(path) };
}

/** Resize-VHD (growing): a VHDX's virtual size, or a raw file's length. */
export function resizeDisk(path: string, sizeBytes: number): DiskInfo {
  if (formatOf(path) === 'vhdx') {
    resizeVhdx(path, sizeBytes);
    return diskInfo(path);
  }
  const fd = fs.openSync(path, 'r+');
  try {
    lockDescriptor(fd, path, 'exclusive', 'disk image');
    const size = fs.fstatSync(fd).size;
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes % 512 !== 0) throw new HvError(RawDiskError.BadSize, `size ${sizeBytes} is not a multiple of 512`);
    if (sizeBytes < size) throw new HvError(RawDiskError.BadSize, `${path} is ${size} bytes; shrinking is not supported (it would drop data)`);
    fs.ftruncateSync(fd, sizeBytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return diskInfo(path);
}

/** Merge-VHD: a differencing disk into its parent; the child is deleted. */
export function mergeDisk(childPath: string, progress?: Progress): DiskInfo {
  return runSteps(mergeSteps(childPath, progress));
}

/** mergeDisk as safe points (disk-job.ts): stopped, the child is kept and reads as before (vhdx-edit.ts). */
export function* mergeSteps(childPath: string, progress?: Progress): DiskSteps<DiskInfo> {
  const { parentPath } = yield* mergeVhdxSteps(childPath, progress);
  return diskInfo(parentPath);
}
