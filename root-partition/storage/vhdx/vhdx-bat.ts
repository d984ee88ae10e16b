/**
 * The block allocation table's geometry and entries ([MS-VHDX] 2.4, 2.5): payload entries of
 * one chunk, then that chunk's sector-bitmap entry; an entry is a state in bits 0–2 and the file
 * offset in MiB in bits 20–63.
 */
import { MiB } from './vhdx-format.ts';

/** Payload block states ([MS-VHDX] 2.5.1.1); 5 is the 0.95 draft's UNMAPPED, read as zeros. */
export const PayloadState = {
  NotPresent: 0,
  Undefined: 1,
  Zero: 2,
  Unmapped: 3,
  UnmappedV095: 5,
  FullyPresent: 6,
  PartiallyPresent: 7,
} as const;
/** Sector bitmap block states ([MS-VHDX] 2.5.1.2). */
export const BitmapState = { NotPresent: 0, Present: 6 } as const;

/** Sectors one sector-bitmap block covers (a chunk). */
export const SECTORS_PER_CHUNK = 2 ** 23;

export class BatGeometry {
  readonly chunkRatio: number;
  readonly payloadBlocks: number;
  readonly chunks: number;
  /** Entries a dynamic or fixed disk needs (no trailing bitmap entry). */
  readonly dynamicEntries: number;
  /** Entries a differencing disk needs (every chunk's bitmap entry). */
  readonly differencingEntries: number;
  /** Bytes of a chunk's bitmap that one payload block owns. */
  readonly bitmapBytesPerBlock: number;

  constructor(
    readonly virtualSize: number,
    readonly blockSize: number,
    readonly logicalSectorSize: number,
  ) {
    this.chunkRatio = (SECTORS_PER_CHUNK * logicalSectorSize) / blockSize;
    this.payloadBlocks = Math.ceil(virtualSize / blockSize);
    this.chunks = Math.ceil(this.payloadBlocks / this.chunkRatio);
    this.dynamicEntries = this.payloadBlocks + Math.floor((this.payloadBlocks - 1) / this.chunkRatio);
    this.differencingEntries = this.chunks * (this.chunkRatio + 1);
    this.bitmapBytesPerBlock = blockSize / (8 * logicalSectorSize);
  }

  entries(differencing: boolean): number {
    return differencing ? this.differencingEntries : this.dynamicEntries;
  }

  payloadIndex(block: number): number {
    return block + Math.floor(block / this.chunkRatio);
  }

  bitmapIndex(chunk: number): number {
    return chunk * (this.chunkRatio + 1) + this.chunkRatio;
  }

  /** Whether BAT index `i` is a sector-bitmap entry. */
  isBitmapIndex(i: number): boolean {
    return i % (this.chunkRatio + 1) === this.chunkRatio;
  }

  /** The payload block of a payload entry index. */
  blockOfIndex(i: number): number {
    return i - Math.floor(i / (this.chunkRatio + 1));
  }
}

/** An entry's state and file offset from its two little-endian u32 halves, without BigInt. */
export function entryState(bat: DataView, index: number): number {
  return bat.getUint32(index * 8, true) & 7;
}

export function entryOffset(bat: DataView, index: number): number {
  const lo = bat.getUint32(index * 8, true);
  const hi = bat.getUint32(index * 8 + 4, true);
  return ((lo >>> 20) + hi * 4096) * MiB;
}

/** The 8 bytes of an entry with `state` at `fileOffset` (a MiB multiple; 0 for states 0–3). */
export function encodeEntry(state: number, fileOffset: number): Uint8Array {
  const mb = fileOffset / MiB;
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, (((mb % 4096) << 20) | state) >>> 0, true);
  v.setUint32(4, Math.floor(mb / 4096), true);
  return b;
}

/** Whether the reserved bits 3–19 are clear. */
export function entryReservedClear(bat: DataView, index: number): boolean {
  return (bat.getUint32(index * 8, true) & 0x000ffff8) === 0;
}
