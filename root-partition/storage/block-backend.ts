/**
 * A disk as the device models see it: fixed-size sectors, synchronous I/O straight between the
 * backing store and a caller-supplied view (for a guest, a view of guest memory: no bounce copy).
 * Emulated IDE and synthetic SCSI both sit on this interface.
 */
import type { DiskIoError } from './disk-io-error.ts';
import type { SharedRawDescriptor } from './raw-disk.ts';
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
  /**
   * True when the queued calls below may be used now: several reads and writes then run at once
   * (in libuv's thread pool) and complete in any order. Absent or false: synchronous I/O only.
   */
  readonly canQueue?: boolean;
  /** Queued requests started and not yet completed. */
  readonly inFlight?: number;
  /**
   * Starts a read of `dst.length` bytes at sector `lba`; `done` runs later (never inside this call)
   * with null or the error. Range and state errors throw at once, as for `read`.
   */
  readAsync?(lba: number, dst: Uint8Array, done: BlockIoDone): void;
  /**
   * Starts a write of `src` at sector `lba`; as `readAsync`. With `fua` it completes only once on
   * the medium (a flush of its own after it), and flushes started after it wait for that too.
   */
  writeAsync?(lba: number, src: Uint8Array, done: BlockIoDone, fua?: boolean): void;
  /**
   * A flush that completes only after every write started before it has completed, and then
   * after fdatasync: a write acknowledged before a SYNCHRONIZE CACHE is durable when it completes.
   */
  flushAsync?(done: BlockIoDone): void;
  close(): void;
  /**
   * Present on a raw image another thread of the process may run requests on (a storvsp queue
   * thread borrows the descriptor): null while it may not (see SwitchableDisk.sharedDescriptor).
   */
  readonly sharedDescriptor?: SharedRawDescriptor | null;
  /** A request that other thread ran on this image failed: the image (and its drive) takes the failure as its own. */
  adoptFailure?(e: DiskIoError): void;
}

/** Completion of a queued request: null, or the error (a DiskIoError for the medium's failures). */
export type BlockIoDone = (error: unknown) => void;
