/**
 * Reading and checking a VHDX file's structure once its headers are current and its log is
 * replayed: the region table, the metadata items, and the BAT, every entry of which is checked
 * against the file (states valid for the disk type, blocks inside the file, no two structures
 * overlapping). Everything is bounded before it is read: table sizes, item sizes, the BAT.
 */
import { BatGeometry, BitmapState, entryOffset, entryState, PayloadState } from './vhdx-bat.ts';
import type { VhdxFile } from './vhdx-file.ts';
import {
  decodeMetadataTable,
  decodeRegionTable,
  FileParamFlag,
  getU32,
  getU64,
  HEADER_SECTION_SIZE,
  MAX_VIRTUAL_SIZE,
  MetadataFlag,
  MetadataGuid,
  METADATA_TABLE_SIZE,
  MiB,
  REGION_TABLE_OFFSETS,
  REGION_TABLE_SIZE,
  RegionGuid,
  VhdxCorruptError,
  VhdxError,
  type MetadataEntry,
  type RegionEntry,
} from './vhdx-format.ts';
import { guidEquals, type Guid } from './vhdx-guid.ts';
import { decodeParentLocator } from './vhdx-parent-locator.ts';

/** Largest BAT tsvisor holds in memory: 4 Mi entries (64 TiB at 16 MiB blocks, 4 TiB at 1 MiB). */
export const MAX_BAT_BYTES = 32 * MiB;

export interface VhdxMetadata {
  blockSize: number;
  leaveBlockAllocated: boolean;
  hasParent: boolean;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  diskId: Guid;
  locator: Map<string, string> | null;
  /** The table as read, for tools that copy IsVirtualDisk items. */
  entries: MetadataEntry[];
}

export interface VhdxLayout {
  regions: RegionEntry[];
  batRegion: RegionEntry;
  metadataRegion: RegionEntry;
  meta: VhdxMetadata;
  geometry: BatGeometry;
  /** The BAT's first roundup(entries × 8, 4 KiB) bytes, as in the file. */
  bat: Uint8Array;
  batEntries: number;
  /** Where the next block goes: past the end of the file and of every structure, 1 MiB aligned. */
  allocationEnd: number;
}

const KNOWN_ITEMS = Object.values(MetadataGuid);

export function readLayout(file: VhdxFile): VhdxLayout {
  const path = file.path;
  const regions = decodeRegionTable(path, file.readMeta(REGION_TABLE_OFFSETS[0], REGION_TABLE_SIZE));
  const batRegion = regions.find((r) => guidEquals(r.guid, RegionGuid.Bat));
  const metadataRegion = regions.find((r) => guidEquals(r.guid, RegionGuid.Metadata));
  if (!batRegion || !metadataRegion) throw new VhdxCorruptError(path, 'region table lacks the BAT or the metadata region');
  const meta = readMetadata(file, metadataRegion);
  const geometry = new BatGeometry(meta.virtualSize, meta.blockSize, meta.logicalSectorSize);
  const batEntries = geometry.entries(meta.hasParent);
  if (batEntries * 8 > batRegion.length) throw new VhdxCorruptError(path, `BAT region of ${batRegion.length} bytes cannot hold ${batEntries} entries`);
  const batBytes = Math.ceil((batEntries * 8) / 4096) * 4096;
  if (batBytes > MAX_BAT_BYTES) {
    throw new VhdxCorruptError(
      path,
      `its BAT needs ${batBytes} bytes of memory (tsvisor holds at most ${MAX_BAT_BYTES / MiB} MiB: use a larger block size)`,
      VhdxError.Unsupported,
    );
  }
  const bat = file.readMeta(batRegion.fileOffset, batBytes);
  const allocationEnd = checkExtents(file, regions, meta, geometry, bat, batEntries);
  return { regions, batRegion, metadataRegion, meta, geometry, bat, batEntries, allocationEnd };
}

function readMetadata(file: VhdxFile, region: RegionEntry): VhdxMetadata {
  const path = file.path;
  const table = decodeMetadataTable(path, file.readMeta(region.fileOffset, METADATA_TABLE_SIZE), region.length);
  const item = (id: Guid): Uint8Array | null => {
    const e = table.find((t) => guidEquals(t.itemId, id) && (t.flags & MetadataFlag.IsUser) === 0);
    return e ? file.readMeta(region.fileOffset + e.offset, e.length) : null;
  };
  for (const e of table) {
    const known = (e.flags & MetadataFlag.IsUser) === 0 && KNOWN_ITEMS.some((k) => guidEquals(k, e.itemId));
    if (!known && e.flags & MetadataFlag.IsRequired) throw new VhdxCorruptError(path, 'a required metadata item is unknown to tsvisor', VhdxError.Unsupported);
  }
  const need = (id: Guid, name: string, length: number) => {
    const b = item(id);
    if (!b) throw new VhdxCorruptError(path, `metadata lacks ${name}`);
    if (b.length < length) throw new VhdxCorruptError(path, `metadata item ${name} is ${b.length} bytes, not ${length}`);
    return b;
  };
  const params = need(MetadataGuid.FileParameters, 'File Parameters', 8);
  const blockSize = getU32(params, 0);
  const flags = getU32(params, 4);
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new VhdxCorruptError(path, `block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  }
  const logicalSectorSize = getU32(need(MetadataGuid.LogicalSectorSize, 'Logical Sector Size', 4), 0);
  const physicalSectorSize = getU32(need(MetadataGuid.PhysicalSectorSize, 'Physical Sector Size', 4), 0);
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096)
    throw new VhdxCorruptError(path, `logical sector size ${logicalSectorSize} is neither 512 nor 4096`);
  if (physicalSectorSize !== 512 && physicalSectorSize !== 4096)
    throw new VhdxCorruptError(path, `physical sector size ${physicalSectorSize} is neither 512 nor 4096`);
  const virtualSize = getU64(need(MetadataGuid.VirtualDiskSize, 'Virtual Disk Size', 8), 0);
  if (virtualSize === 0 || virtualSize > MAX_VIRTUAL_SIZE || virtualSize % logicalSectorSize !== 0) {
    throw new VhdxCorruptError(path, `virtual size ${virtualSize} is not a positive multiple of ${logicalSectorSize} up to 64 TiB`);
  }
  const diskId = need(MetadataGuid.VirtualDiskId, 'Virtual Disk ID', 16).slice(0, 16);
  const hasParent = (flags & FileParamFlag.HasParent) !== 0;
  let locator: Map<string, string> | null = null;
  if (hasParent) {
    const b = item(MetadataGuid.ParentLocator);
    if (!b) throw new VhdxCorruptError(path, 'a differencing disk without a parent locator');
    locator = decodeParentLocator(path, b);
  }
  return {
    blockSize,
    leaveBlockAllocated: (flags & FileParamFlag.LeaveBlockAllocated) !== 0,
    hasParent,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
    diskId,
    locator,
    entries: table,
  };
}

/**
 * Checks every BAT entry and every structure for overlap; returns the allocation end. Offsets
 * are collected as (start MiB × 2 + kind) in one Float64Array and sorted numerically, so the
 * check costs 8 bytes and O(n log n) per entry, whatever the file claims.
 */
function checkExtents(file: VhdxFile, regions: RegionEntry[], meta: VhdxMetadata, g: BatGeometry, bat: Uint8Array, entries: number): number {
  const path = file.path;
  const view = new DataView(bat.buffer, bat.byteOffset, bat.byteLength);
  const starts = new Float64Array(entries);
  let n = 0;
  for (let i = 0; i < entries; i++) {
    const state = entryState(view, i);
    const isBitmap = g.isBitmapIndex(i);
    if (isBitmap) {
      if (state === BitmapState.NotPresent) continue;
      if (state !== BitmapState.Present || !meta.hasParent) throw new VhdxCorruptError(path, `BAT entry ${i} (sector bitmap) has state ${state}`);
    } else {
      if (
        state === PayloadState.NotPresent ||
        state === PayloadState.Undefined ||
        state === PayloadState.Zero ||
        state === PayloadState.Unmapped ||
        state === PayloadState.UnmappedV095
      )
        continue;
      if (state === PayloadState.PartiallyPresent) {
        if (!meta.hasParent) throw new VhdxCorruptError(path, `BAT entry ${i} is PARTIALLY_PRESENT in a disk without a parent`);
        if (entryState(view, g.bitmapIndex(Math.floor(g.blockOfIndex(i) / g.chunkRatio))) !== BitmapState.Present) {
          throw new VhdxCorruptError(path, `BAT entry ${i} is PARTIALLY_PRESENT but its chunk has no sector bitmap`);
        }
      } else if (state !== PayloadState.FullyPresent) {
        throw new VhdxCorruptError(path, `BAT entry ${i} has the reserved state ${state}`);
      }
    }
    const off = entryOffset(view, i);
    const size = isBitmap ? MiB : meta.blockSize;
    const lastBlock = !isBitmap && g.blockOfIndex(i) === g.payloadBlocks - 1;
    // QEMU has written files whose last block ends past the end of the file; its reads are zeros.
    if (off < HEADER_SECTION_SIZE || off >= file.size || (!lastBlock && off + size > file.size)) {
      throw new VhdxCorruptError(path, `BAT entry ${i} points at ${off}, outside the ${file.size}-byte file (truncated?)`);
    }
    starts[n++] = (off / MiB) * 2 + (isBitmap ? 1 : 0);
  }
  const blocks = starts.subarray(0, n).sort();
  const extents: [number, number, string][] = [
    [0, HEADER_SECTION_SIZE, 'the header section'],
    [file.header.logOffset, file.header.logLength, 'the log'],
  ];
  for (const r of regions) extents.push([r.fileOffset, r.length, 'a region']);
  let end = 0;
  for (const [s, l] of extents) end = Math.max(end, s + l);
  extents.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < extents.length; i++) {
    if (extents[i][0] < extents[i - 1][0] + extents[i - 1][1]) throw new VhdxCorruptError(path, `${extents[i][2]} overlaps ${extents[i - 1][2]}`);
  }
  let prevEnd = 0;
  let e = 0;
  for (let i = 0; i < blocks.length; i++) {
    const start = Math.floor(blocks[i] / 2) * MiB;
    const len = blocks[i] % 2 === 1 ? MiB : meta.blockSize;
    if (start < prevEnd) throw new VhdxCorruptError(path, `two BAT entries share the file range at ${start}`);
    while (e < extents.length && extents[e][0] + extents[e][1] <= start) e++;
    if (e < extents.length && extents[e][0] < start + len) throw new VhdxCorruptError(path, `a block at ${start} overlaps ${extents[e][2]}`);
    prevEnd = start + len;
    end = Math.max(end, prevEnd);
  }
  return Math.ceil(Math.max(end, file.size) / MiB) * MiB;
}
