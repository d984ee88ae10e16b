import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';

/**
 * An in-memory BlockBackend for storage protocol tests. It checks what a real backend would
 * (whole sectors, inside the disk, not read-only) so that a caller's mistake fails the test,
 * and counts calls so tests can see how I/O was split. `failNext` injects one I/O error.
 */
export class MemoryDisk implements BlockBackend {
  readonly sectorSize = 512;
  readonly bytes: Uint8Array;
  reads = 0;
  writes = 0;
  flushes = 0;
  failNext = false;

  constructor(
    readonly sectorCount: number,
    readonly readOnly = false,
  ) {
    this.bytes = new Uint8Array(sectorCount * this.sectorSize);
  }

  private check(lba: number, len: number): void {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('injected I/O error');
    }
    if (!Number.isInteger(lba) || lba < 0 || len % this.sectorSize !== 0 || lba * this.sectorSize + len > this.bytes.length) {
      throw new RangeError(`bad disk access lba ${lba} len ${len}`);
    }
  }

  read(lba: number, dst: Uint8Array): void {
    this.check(lba, dst.length);
    this.reads++;
    dst.set(this.bytes.subarray(lba * this.sectorSize, lba * this.sectorSize + dst.length));
  }

  write(lba: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error('read-only disk');
    this.check(lba, src.length);
    this.writes++;
    this.bytes.set(src, lba * this.sectorSize);
  }

  flush(): void {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('injected flush error');
    }
    this.flushes++;
  }

  close(): void {}
}
