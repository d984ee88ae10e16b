/**
 * A disk as the device models see it: fixed-size sectors, synchronous I/O straight between the
 * backing store and a caller-supplied view (for a guest, a view of guest memory: no bounce copy).
 * Emulated IDE and synthetic SCSI both sit on this interface.
 */
export interface BlockBackend {
  /** Bytes per logical sector (512 for every image here). */
  readonly sectorSize: number;
  /** Number of logical sectors. */
  readonly sectorCount: number;
  readonly readOnly: boolean;
  /** Time spent in the backing store's system calls, µs, cumulative (absent: not counted). */
  readonly ioUs?: number;
  /** Reads `dst.length` bytes starting at sector `lba` into `dst`. Throws on I/O error. */
  read(lba: number, dst: Uint8Array): void;
  /** Writes `src` starting at sector `lba`. Throws on I/O error or when read-only. */
  write(lba: number, src: Uint8Array): void;
  /** Makes every acknowledged write durable (fdatasync). */
  flush(): void;
  /**
   * Present when the image can release space (a dynamic or differencing VHDX): the smallest run
   * `unmap` releases, in sectors (aligned to it from sector 0).
   */
  readonly unmapGranularity?: number;
  /**
   * Releases the whole granules inside [lba, lba + sectors) — they read zero afterwards — and
   * leaves partial ones as they are; returns the sector runs released. Throws when read-only.
   */
  unmap?(lba: number, sectors: number): [number, number][];
  close(): void;
}
