import type { BlockBackend } from '../../storage/block-backend.ts';
import { SECTOR_SIZE } from './ata-protocol.ts';

/**
 * Streams a run of whole sectors between a backend and a list of memory views whose boundaries
 * need not fall on sector boundaries (PRD regions can have any even length). Whole sectors go
 * straight between the backend and the view; only a sector split across two views passes through
 * one bounce sector.
 */
export class SectorStream {
  private readonly bounce = new Uint8Array(SECTOR_SIZE);
  private bounceSector = -1;
  private pos = 0;

  constructor(
    private readonly backend: BlockBackend,
    private readonly lba: number,
  ) {}

  /** Bytes moved so far. */
  get position(): number {
    return this.pos;
  }

  /** Device → memory: fills `view` with the next bytes of the run. */
  readInto(view: Uint8Array): void {
    let off = 0;
    while (off < view.length) {
      const inSector = this.pos % SECTOR_SIZE;
      const left = view.length - off;
      let n: number;
      if (inSector === 0 && left >= SECTOR_SIZE) {
        n = left - (left % SECTOR_SIZE);
        this.backend.read(this.lba + this.pos / SECTOR_SIZE, view.subarray(off, off + n));
      } else {
        const sector = Math.floor(this.pos / SECTOR_SIZE);
        if (this.bounceSector !== sector) {
          this.backend.read(this.lba + sector, this.bounce);
          this.bounceSector = sector;
        }
        n = Math.min(SECTOR_SIZE - inSector, left);
        view.set(this.bounce.subarray(inSector, inSector + n), off);
      }
      off += n;
      this.pos += n;
    }
  }

  /** Memory → device: writes the next bytes of the run from `view`. */
  writeFrom(view: Uint8Array): void {
    let off = 0;
    while (off < view.length) {
      const inSector = this.pos % SECTOR_SIZE;
      const left = view.length - off;
      let n: number;
      if (inSector === 0 && left >= SECTOR_SIZE) {
        n = left - (left % SECTOR_SIZE);
        this.backend.write(this.lba + this.pos / SECTOR_SIZE, view.subarray(off, off + n));
      } else {
        n = Math.min(SECTOR_SIZE - inSector, left);
        this.bounce.set(view.subarray(off, off + n), inSector);
        if (inSector + n === SECTOR_SIZE) this.backend.write(this.lba + Math.floor(this.pos / SECTOR_SIZE), this.bounce);
      }
      off += n;
      this.pos += n;
    }
  }
}
