import type { BlockBackend } from '../../storage/block-backend.ts';
import { MAX_LBA28_SECTORS, MAX_MULTIPLE_SECTORS, SECTOR_SIZE } from './ata-protocol.ts';

export interface AtaDriveOptions {
  /** 20 ASCII characters at most (IDENTIFY words 10–19). */
  serial?: string;
  /** 8 characters (words 23–26). */
  firmware?: string;
  /** 40 characters (words 27–46). */
  model?: string;
}

/** CHS geometry used for addressing and IDENTIFY words 1/3/6 and 54–58. */
export interface ChsGeometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

/** Transfer modes SET FEATURES can select (IDENTIFY words 63, 88 "selected" bits). */
export type TransferMode = { kind: 'pio'; mode: number } | { kind: 'mwdma'; mode: number } | { kind: 'udma'; mode: number };

/** The default translation (ATA-6 annex: 16 heads, 63 sectors per track, at most 16383 cylinders). */
function defaultGeometry(sectors: number): ChsGeometry {
  const heads = 16;
  const sectorsPerTrack = 63;
  const cylinders = Math.max(1, Math.min(16383, Math.floor(sectors / (heads * sectorsPerTrack))));
  return { cylinders, heads, sectorsPerTrack };
}

/**
 * An ATA hard disk on an IDE channel: its backend and the settings commands change
 * (multiple count, current geometry, transfer mode, cache switches). The protocol state lives in
 * the channel.
 */
export class AtaDrive {
  readonly backend: BlockBackend;
  readonly serial: string;
  readonly firmware: string;
  readonly model: string;
  readonly defaultGeometry: ChsGeometry;
  /** Sectors per DRQ block for READ/WRITE MULTIPLE; 0 = multiple mode disabled. */
  multipleSectors = 0;
  geometry: ChsGeometry;
  transferMode: TransferMode = { kind: 'mwdma', mode: 2 };
  writeCache = true;
  readLookAhead = true;

  constructor(backend: BlockBackend, opts: AtaDriveOptions = {}) {
    if (backend.sectorSize !== SECTOR_SIZE) throw new RangeError(`ATA drives here use ${SECTOR_SIZE}-byte sectors, backend has ${backend.sectorSize}`);
    this.backend = backend;
    this.serial = opts.serial ?? 'TSV0000000000000001';
    this.firmware = opts.firmware ?? '1.1.0';
    this.model = opts.model ?? 'Virtual HD';
    this.defaultGeometry = defaultGeometry(backend.sectorCount);
    this.geometry = { ...this.defaultGeometry };
  }

  get sectorCount(): number {
    return this.backend.sectorCount;
  }

  /** Power-on/hardware-reset values of the settings SET FEATURES 0xCC would restore. */
  revertToDefaults(): void {
    this.geometry = { ...this.defaultGeometry };
    this.transferMode = { kind: 'mwdma', mode: 2 };
    this.writeCache = true;
    this.readLookAhead = true;
  }

  /** IDENTIFY DEVICE data (ATA/ATAPI-6, IDENTIFY DEVICE data table; Linux ata.h). */
  identify(): Uint8Array {
    const bytes = new Uint8Array(512);
    const w = new Uint16Array(256);
    const sectors = this.sectorCount;
    const g = this.geometry;
    const dg = this.defaultGeometry;
    w[0] = 0x0040; // fixed device, not removable
    w[1] = dg.cylinders;
    w[3] = dg.heads;
    w[6] = dg.sectorsPerTrack;
    putString(w, 10, 20, this.serial);
    putString(w, 23, 8, this.firmware);
    putString(w, 27, 40, this.model);
    w[47] = 0x8000 | MAX_MULTIPLE_SECTORS;
    w[49] = (1 << 11) | (1 << 9) | (1 << 8); // IORDY supported, LBA supported, DMA supported
    w[50] = 0x4000;
    w[51] = 0x0200; // PIO data transfer cycle timing mode (obsolete field, mode 2)
    w[53] = 0x0007; // words 54–58, 64–70 and 88 are valid
    const curCapacity = Math.min(g.cylinders * g.heads * g.sectorsPerTrack, sectors);
    w[54] = g.cylinders;
    w[55] = g.heads;
    w[56] = g.sectorsPerTrack;
    w[57] = curCapacity & 0xffff;
    w[58] = curCapacity >>> 16;
    w[59] = this.multipleSectors ? 0x0100 | this.multipleSectors : 0;
    const lba28 = Math.min(sectors, MAX_LBA28_SECTORS);
    w[60] = lba28 & 0xffff;
    w[61] = lba28 >>> 16;
    w[63] = 0x0007 | (this.transferMode.kind === 'mwdma' ? 0x0100 << this.transferMode.mode : 0);
    w[64] = 0x0003; // PIO modes 3 and 4
    w[65] = 120; // minimum MWDMA cycle time (ns)
    w[66] = 120; // recommended MWDMA cycle time
    w[67] = 120; // minimum PIO cycle time without flow control
    w[68] = 120; // minimum PIO cycle time with IORDY
    w[80] = 0x007e; // ATA-1 … ATA/ATAPI-6
    w[82] = (1 << 6) | (1 << 5); // read look-ahead and write cache supported
    w[83] = 0x4000 | (1 << 13) | (1 << 12) | (1 << 10); // FLUSH CACHE EXT, FLUSH CACHE, 48-bit address
    w[84] = 0x4000;
    w[85] = (this.readLookAhead ? 1 << 6 : 0) | (this.writeCache ? 1 << 5 : 0);
    w[86] = (1 << 13) | (1 << 12) | (1 << 10);
    w[87] = 0x4000;
    w[88] = 0x003f | (this.transferMode.kind === 'udma' ? 0x0100 << this.transferMode.mode : 0);
    // 48-bit capacity: a 64-bit count in words 100–103 (least significant word first).
    let rest = sectors;
    for (let i = 100; i <= 103; i++) {
      w[i] = rest % 0x10000;
      rest = Math.floor(rest / 0x10000);
    }
    w[106] = 0x4000; // word valid; one 512-byte logical sector per physical sector
    w[209] = 0x4000; // logical sector 0 is aligned
    for (let i = 0; i < 256; i++) {
      bytes[2 * i] = w[i]! & 0xff;
      bytes[2 * i + 1] = w[i]! >> 8;
    }
    // Word 255: signature 0xA5 and a checksum making the 512 bytes sum to 0 mod 256 (ATA/ATAPI-6, IDENTIFY word 255: integrity word).
    bytes[510] = 0xa5;
    let sum = 0;
    for (let i = 0; i < 511; i++) sum += bytes[i]!;
    bytes[511] = (256 - (sum & 0xff)) & 0xff;
    return bytes;
  }
}

/**
 * ATA strings: space padded, two characters per word with the first in the high byte
 * ("Virtual HD" reads "iVtrau lDH" byte by byte).
 */
function putString(w: Uint16Array, word: number, chars: number, text: string): void {
  const s = text
    .replace(/[^\x20-\x7e]/g, ' ')
    .padEnd(chars, ' ')
    .slice(0, chars);
  for (let i = 0; i < chars; i += 2) w[word + i / 2] = (s.charCodeAt(i) << 8) | s.charCodeAt(i + 1);
}
