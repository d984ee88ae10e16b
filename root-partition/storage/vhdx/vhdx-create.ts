/**
 * Creating VHDX files: fixed, dynamic and differencing (laid out as qemu-img lays them out, with the
 * regions marked Required as the spec lists them and the BAT sized for a differencing disk).
 *
 * Layout: header section (1 MiB), log at 1 MiB (1 MiB), BAT at 2 MiB, metadata region after the
 * BAT (1 MiB), payload after that. Written in this order: file identifier, metadata, region
 * tables, the file's full length, headers last, then one flush; a crash before the headers
 * leaves a file without a valid header, which no reader accepts.
 */
import * as fs from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { lockDescriptor } from '../file-lock.ts';
import { RawDiskError } from '../raw-disk.ts';
import { BatGeometry, encodeEntry, PayloadState } from './vhdx-bat.ts';
import {
  encodeFileIdentifier,
  encodeHeader,
  encodeMetadataTable,
  encodeRegionTable,
  FileParamFlag,
  HEADER_OFFSETS,
  MAX_VIRTUAL_SIZE,
  MetadataFlag,
  MetadataGuid,
  MiB,
  putU32,
  putU64,
  REGION_TABLE_OFFSETS,
  RegionGuid,
  type MetadataEntry,
} from './vhdx-format.ts';
import { randomGuid, ZERO_GUID, type Guid } from './vhdx-guid.ts';
import { openVhdx } from './vhdx-open.ts';
import { encodeParentLocator, linkageText } from './vhdx-parent-locator.ts';

export interface VhdxCreateOptions {
  type: 'fixed' | 'dynamic' | 'differencing';
  /** Virtual size in bytes (fixed, dynamic): a positive multiple of 512, at most 64 TiB. */
  sizeBytes?: number;
  /** Power of two, 1–256 MiB; default as qemu-img chooses (8 MiB up to 1 GiB, 16 up to 100 GiB, then 32). */
  blockSizeBytes?: number;
  /** Differencing: the parent's path (the child links to its current DataWriteGuid). */
  parentPath?: string;
  physicalSectorSize?: 512 | 4096;
  overwrite?: boolean;
  /** Creator string in the file identifier. */
  creator?: string;
  /** Fixed, dynamic: the Virtual Disk ID to give the new disk (a copy keeps its original's); default random. */
  diskId?: Guid;
}

const LOG_OFFSET = MiB;
const LOG_LENGTH = MiB;
const BAT_OFFSET = 2 * MiB;

export function defaultBlockSize(size: number): number {
  if (size <= 1024 * MiB) return 8 * MiB;
  if (size <= 100 * 1024 * MiB) return 16 * MiB;
  return 32 * MiB;
}

/** The Windows-style relative path of `parent` from the child's directory (`.\base.vhdx`, `..\x\p.vhdx`). */
export function relativeWindowsPath(child: string, parent: string): string {
  const rel = relative(dirname(resolve(child)), resolve(parent))
    .split('/')
    .join('\\');
  return rel.startsWith('..') ? rel : `.\\${rel}`;
}

/** Creates the file and returns nothing; open it with openVhdx (or openDisk). */
export function createVhdx(path: string, opts: VhdxCreateOptions): void {
  let virtualSize = opts.sizeBytes ?? 0;
  let diskId: Guid = opts.diskId ? Uint8Array.from(opts.diskId) : randomGuid();
  let locator: Uint8Array | null = null;
  let lss = 512;
  let pss: number = opts.physicalSectorSize ?? 4096;
  if (opts.type === 'differencing') {
    if (!opts.parentPath) throw new HvError(RawDiskError.BadSize, 'a differencing disk needs a parent');
    const parent = openVhdx(opts.parentPath, { readOnly: true });
    try {
      virtualSize = parent.virtualSize;
      diskId = parent.layout.meta.diskId;
      lss = parent.layout.meta.logicalSectorSize;
      pss = parent.layout.meta.physicalSectorSize;
      locator = encodeParentLocator([
        ['parent_linkage', linkageText(parent.file.header.dataWriteGuid)],
        ['relative_path', relativeWindowsPath(path, opts.parentPath)],
      ]);
    } finally {
      parent.close();
    }
    if (opts.sizeBytes !== undefined && opts.sizeBytes !== virtualSize) {
      throw new HvError(RawDiskError.BadSize, `a differencing disk has its parent's size (${virtualSize} bytes), not ${opts.sizeBytes}`);
    }
  }
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize % 512 !== 0 || virtualSize > MAX_VIRTUAL_SIZE) {
    throw new HvError(RawDiskError.BadSize, `disk size ${virtualSize} is not a positive multiple of 512 up to 64 TiB`);
  }
  const blockSize = opts.blockSizeBytes ?? defaultBlockSize(virtualSize);
  if (!Number.isSafeInteger(blockSize) || blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new HvError(RawDiskError.BadSize, `block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  }
  const g = new BatGeometry(virtualSize, blockSize, lss);
  const batLength = Math.ceil((g.differencingEntries * 8) / MiB) * MiB;
  const metaOffset = BAT_OFFSET + batLength;
  const payloadStart = metaOffset + MiB;

  const items: [Guid, Uint8Array, number][] = [];
  const params = new Uint8Array(8);
  putU32(params, 0, blockSize);
  putU32(params, 4, opts.type === 'fixed' ? FileParamFlag.LeaveBlockAllocated : opts.type === 'differencing' ? FileParamFlag.HasParent : 0);
  items.push([MetadataGuid.FileParameters, params, MetadataFlag.IsRequired]);
  const size = new Uint8Array(8);
  putU64(size, 0, virtualSize);
  const vd = MetadataFlag.IsRequired | MetadataFlag.IsVirtualDisk;
  items.push([MetadataGuid.VirtualDiskSize, size, vd]);
  items.push([MetadataGuid.VirtualDiskId, diskId, vd]);
  const l = new Uint8Array(4);
  putU32(l, 0, lss);
  items.push([MetadataGuid.LogicalSectorSize, l, vd]);
  const p = new Uint8Array(4);
  putU32(p, 0, pss);
  items.push([MetadataGuid.PhysicalSectorSize, p, vd]);
  if (locator) items.push([MetadataGuid.ParentLocator, locator, MetadataFlag.IsRequired]);
  const entries: MetadataEntry[] = [];
  let at = 64 * 1024;
  const metaBytes = new Uint8Array(MiB);
  for (const [itemId, data, flags] of items) {
    entries.push({ itemId, offset: at, length: data.length, flags });
    metaBytes.set(data, at);
    at += data.length;
  }
  metaBytes.set(encodeMetadataTable(entries), 0);

  let end = payloadStart;
  const bat = new Uint8Array(Math.ceil((g.differencingEntries * 8) / 4096) * 4096);
  if (opts.type === 'fixed') {
    for (let b = 0; b < g.payloadBlocks; b++) {
      bat.set(encodeEntry(PayloadState.FullyPresent, end), g.payloadIndex(b) * 8);
      end += blockSize;
    }
  }

  const { O_RDWR, O_CREAT, O_EXCL } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, O_RDWR | O_CREAT | (opts.overwrite ? 0 : O_EXCL), 0o666);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new HvError(RawDiskError.Exists, `disk image ${path} already exists`);
    throw new HvError(code === 'ENOENT' ? RawDiskError.NotFound : RawDiskError.Io, `cannot create ${path}: ${(err as Error).message}`);
  }
  try {
    lockDescriptor(fd, path, 'exclusive', 'disk image');
    if (opts.overwrite) fs.ftruncateSync(fd, 0);
    const write = (b: Uint8Array, pos: number) => {
      for (let done = 0; done < b.length; ) done += fs.writeSync(fd, b, done, b.length - done, pos + done);
    };
    write(encodeFileIdentifier(opts.creator ?? 'tsvisor'), 0);
    write(metaBytes, metaOffset);
    if (opts.type === 'fixed') write(bat, BAT_OFFSET);
    const regions = encodeRegionTable([
      { guid: RegionGuid.Bat, fileOffset: BAT_OFFSET, length: batLength, required: true },
      { guid: RegionGuid.Metadata, fileOffset: metaOffset, length: MiB, required: true },
    ]);
    write(regions, REGION_TABLE_OFFSETS[0]);
    write(regions, REGION_TABLE_OFFSETS[1]);
    fs.ftruncateSync(fd, end);
    const seq = 1 + Math.floor(Math.random() * 2 ** 31);
    const header = {
      fileWriteGuid: randomGuid(),
      dataWriteGuid: randomGuid(),
      logGuid: ZERO_GUID,
      logVersion: 0,
      version: 1,
      logLength: LOG_LENGTH,
      logOffset: LOG_OFFSET,
    };
    write(encodeHeader({ ...header, sequenceNumber: seq }), HEADER_OFFSETS[0]);
    write(encodeHeader({ ...header, sequenceNumber: seq + 1 }), HEADER_OFFSETS[1]);
    fs.fdatasyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
}
