/**
 * VHDX on-disk structures ([MS-VHDX] v8.0 §2): the file identifier, the two headers, the region
 * table and the metadata table with its known items, as byte layouts to encode and decode. No
 * I/O here; decoding checks what the structure alone can tell (signatures, checksums, field
 * ranges) and throws VhdxCorruptError with the structure named.
 */
import { HvError } from '../../../hypervisor/hv-error.ts';
import { crc32c } from '../crc32c.ts';
import { guidFromText, guidEquals, type Guid } from './vhdx-guid.ts';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Error codes a caller can switch on. */
export const VhdxError = {
  Corrupt: 'HV_ERR_VHDX_CORRUPT',
  Unsupported: 'HV_ERR_VHDX_UNSUPPORTED',
  Parent: 'HV_ERR_VHDX_PARENT',
  Log: 'HV_ERR_VHDX_LOG',
} as const;

/** A file that breaks the format; the message names the file and the structure. */
export class VhdxCorruptError extends HvError {
  constructor(path: string, what: string, code: string = VhdxError.Corrupt) {
    super(code, `VHDX ${path}: ${what}`);
    this.name = 'VhdxCorruptError';
  }
}

/** Section offsets of the 1 MiB header section ([MS-VHDX] 2.2). */
export const FILE_ID_OFFSET = 0;
export const HEADER_OFFSETS = [0x10000, 0x20000] as const;
export const REGION_TABLE_OFFSETS = [0x30000, 0x40000] as const;
export const HEADER_SECTION_SIZE = MiB;
export const HEADER_SIZE = 4 * KiB;
export const REGION_TABLE_SIZE = 64 * KiB;
export const METADATA_TABLE_SIZE = 64 * KiB;

/** Limits from the spec ([MS-VHDX] 2.2.3, 2.6.1, 2.6.2.2). */
export const MAX_TABLE_ENTRIES = 2047;
export const MAX_METADATA_ITEM = MiB;
export const MAX_VIRTUAL_SIZE = 64 * 1024 * 1024 * MiB;

export const RegionGuid = {
  Bat: guidFromText('2DC27766-F623-4200-9D64-115E9BFD4A08'),
  Metadata: guidFromText('8B7CA206-4790-4B9A-B8FE-575F050F886E'),
} as const;

export const MetadataGuid = {
  FileParameters: guidFromText('CAA16737-FA36-4D43-B3B6-33F0AA44E76B'),
  VirtualDiskSize: guidFromText('2FA54224-CD1B-4876-B211-5DBED83BF4B8'),
  VirtualDiskId: guidFromText('BECA12AB-B2E6-4523-93EF-C309E000C746'),
  LogicalSectorSize: guidFromText('8141BF1D-A96F-4709-BA47-F233A8FAAB5F'),
  PhysicalSectorSize: guidFromText('CDA348C7-445D-4471-9CC9-E9885251C556'),
  ParentLocator: guidFromText('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C'),
} as const;

/** Metadata entry flags ([MS-VHDX] 2.6.1.2). */
export const MetadataFlag = { IsUser: 1, IsVirtualDisk: 2, IsRequired: 4 } as const;
/** File Parameters flags ([MS-VHDX] 2.6.2.1). */
export const FileParamFlag = { LeaveBlockAllocated: 1, HasParent: 2 } as const;

function sig(b: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

function putSig(b: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) b[at + i] = text.charCodeAt(i);
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A u64 read as a double: exact below 2^53, and every offset or size here is. */
export function getU64(b: Uint8Array, at: number): number {
  const v = dv(b);
  return v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
}

export function putU64(b: Uint8Array, at: number, value: number): void {
  const v = dv(b);
  v.setUint32(at, value % 2 ** 32, true);
  v.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

export const getU32 = (b: Uint8Array, at: number) => dv(b).getUint32(at, true);
export const putU32 = (b: Uint8Array, at: number, v: number) => dv(b).setUint32(at, v, true);
export const getU16 = (b: Uint8Array, at: number) => dv(b).getUint16(at, true);
export const putU16 = (b: Uint8Array, at: number, v: number) => dv(b).setUint16(at, v, true);

/** Stores the CRC-32C of `b` (checksum field at 4 taken as zero) at offset 4. */
export function sealChecksum(b: Uint8Array): void {
  putU32(b, 4, 0);
  putU32(b, 4, crc32c(b));
}

export function checksumOk(b: Uint8Array): boolean {
  const stored = getU32(b, 4);
  const copy = new Uint8Array(b);
  putU32(copy, 4, 0);
  return crc32c(copy) === stored;
}

/** The file type identifier: `vhdxfile` and the creator, UTF-16LE ([MS-VHDX] 2.2.1). */
export function encodeFileIdentifier(creator: string): Uint8Array {
  const b = new Uint8Array(64 * KiB);
  putSig(b, 0, 'vhdxfile');
  b.set(Buffer.from(creator.slice(0, 255), 'utf16le'), 8);
  return b;
}

export interface VhdxHeader {
  sequenceNumber: number;
  fileWriteGuid: Guid;
  dataWriteGuid: Guid;
  logGuid: Guid;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: number;
}

export function encodeHeader(h: VhdxHeader): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  putSig(b, 0, 'head');
  putU64(b, 8, h.sequenceNumber);
  b.set(h.fileWriteGuid, 16);
  b.set(h.dataWriteGuid, 32);
  b.set(h.logGuid, 48);
  putU16(b, 64, h.logVersion);
  putU16(b, 66, h.version);
  putU32(b, 68, h.logLength);
  putU64(b, 72, h.logOffset);
  sealChecksum(b);
  return b;
}

/** A header slot's content, or null when the slot is not a valid header (signature, CRC, version). */
export function decodeHeader(b: Uint8Array): VhdxHeader | null {
  if (b.length < HEADER_SIZE || !sig(b, 0, 'head') || !checksumOk(b.subarray(0, HEADER_SIZE))) return null;
  const version = getU16(b, 66);
  if (version !== 1) return null;
  return {
    sequenceNumber: getU64(b, 8),
    fileWriteGuid: b.slice(16, 32),
    dataWriteGuid: b.slice(32, 48),
    logGuid: b.slice(48, 64),
    logVersion: getU16(b, 64),
    version,
    logLength: getU32(b, 68),
    logOffset: getU64(b, 72),
  };
}

/**
 * The current header of the two slots: the valid one with the greater sequence number
 * ([MS-VHDX] 2.2.2). Equal numbers are accepted only with identical defined fields, as QEMU does.
 */
export function currentHeader(path: string, slots: [Uint8Array, Uint8Array]): { header: VhdxHeader; slot: 0 | 1 } {
  const [a, b] = slots.map(decodeHeader);
  if (!a && !b) throw new VhdxCorruptError(path, 'neither header (64 KiB, 128 KiB) has a valid signature and CRC-32C');
  if (a && b && a.sequenceNumber === b.sequenceNumber && !Buffer.from(slots[0].subarray(0, 80)).equals(Buffer.from(slots[1].subarray(0, 80)))) {
    throw new VhdxCorruptError(path, 'the two headers carry the same sequence number but different contents');
  }
  if (a && (!b || a.sequenceNumber >= b.sequenceNumber)) return { header: a, slot: 0 };
  return { header: b!, slot: 1 };
}

export interface RegionEntry {
  guid: Guid;
  fileOffset: number;
  length: number;
  required: boolean;
}

export function encodeRegionTable(entries: RegionEntry[]): Uint8Array {
  const b = new Uint8Array(REGION_TABLE_SIZE);
  putSig(b, 0, 'regi');
  putU32(b, 8, entries.length);
  entries.forEach((e, i) => {
    const at = 16 + 32 * i;
    b.set(e.guid, at);
    putU64(b, at + 16, e.fileOffset);
    putU32(b, at + 24, e.length);
    putU32(b, at + 28, e.required ? 1 : 0);
  });
  sealChecksum(b);
  return b;
}

export function decodeRegionTable(path: string, b: Uint8Array): RegionEntry[] {
  if (!sig(b, 0, 'regi')) throw new VhdxCorruptError(path, 'region table signature is not "regi"');
  if (!checksumOk(b)) throw new VhdxCorruptError(path, 'region table CRC-32C does not match');
  const count = getU32(b, 8);
  if (count > MAX_TABLE_ENTRIES) throw new VhdxCorruptError(path, `region table claims ${count} entries (at most ${MAX_TABLE_ENTRIES})`);
  const out: RegionEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 16 + 32 * i;
    const e = { guid: b.slice(at, at + 16), fileOffset: getU64(b, at + 16), length: getU32(b, at + 24), required: (getU32(b, at + 28) & 1) === 1 };
    if (out.some((o) => guidEquals(o.guid, e.guid))) throw new VhdxCorruptError(path, 'region table lists one region twice');
    if (e.fileOffset < MiB || e.fileOffset % MiB !== 0 || e.length === 0 || e.length % MiB !== 0) {
      throw new VhdxCorruptError(path, `region ${i} at ${e.fileOffset} length ${e.length} is not 1 MiB aligned past the header section`);
    }
    const known = guidEquals(e.guid, RegionGuid.Bat) || guidEquals(e.guid, RegionGuid.Metadata);
    if (!known && e.required) throw new VhdxCorruptError(path, `region ${i} is required but unknown to tsvisor`, VhdxError.Unsupported);
    out.push(e);
  }
  return out;
}

export interface MetadataEntry {
  itemId: Guid;
  offset: number;
  length: number;
  flags: number;
}

export function encodeMetadataTable(entries: MetadataEntry[]): Uint8Array {
  const b = new Uint8Array(METADATA_TABLE_SIZE);
  putSig(b, 0, 'metadata');
  putU16(b, 10, entries.length);
  entries.forEach((e, i) => {
    const at = 32 + 32 * i;
    b.set(e.itemId, at);
    putU32(b, at + 16, e.offset);
    putU32(b, at + 20, e.length);
    putU32(b, at + 24, e.flags);
  });
  return b;
}

/** The metadata table's entries, each checked to lie inside the region and overlap no other. */
export function decodeMetadataTable(path: string, b: Uint8Array, regionLength: number): MetadataEntry[] {
  if (!sig(b, 0, 'metadata')) throw new VhdxCorruptError(path, 'metadata table signature is not "metadata"');
  const count = getU16(b, 10);
  if (count > MAX_TABLE_ENTRIES) throw new VhdxCorruptError(path, `metadata table claims ${count} entries (at most ${MAX_TABLE_ENTRIES})`);
  const out: MetadataEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 32 + 32 * i;
    const e = { itemId: b.slice(at, at + 16), offset: getU32(b, at + 16), length: getU32(b, at + 20), flags: getU32(b, at + 24) };
    if (e.length > MAX_METADATA_ITEM) throw new VhdxCorruptError(path, `metadata item ${i} is ${e.length} bytes (at most 1 MiB)`);
    if ((e.length === 0) !== (e.offset === 0) || (e.length > 0 && (e.offset < METADATA_TABLE_SIZE || e.offset + e.length > regionLength))) {
      throw new VhdxCorruptError(path, `metadata item ${i} at ${e.offset} length ${e.length} lies outside the metadata region`);
    }
    const isUser = e.flags & MetadataFlag.IsUser;
    if (out.some((o) => guidEquals(o.itemId, e.itemId) && (o.flags & MetadataFlag.IsUser) === isUser)) {
      throw new VhdxCorruptError(path, 'metadata table lists one item twice');
    }
    if (e.length > 0 && out.some((o) => o.length > 0 && e.offset < o.offset + o.length && o.offset < e.offset + e.length)) {
      throw new VhdxCorruptError(path, `metadata item ${i} overlaps another item`);
    }
    out.push(e);
  }
  return out;
}
