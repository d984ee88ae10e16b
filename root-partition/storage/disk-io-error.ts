import { HvError } from '../../hypervisor/hv-error.ts';

/** What the host was doing when the image's file failed. */
export type DiskOperation = 'read' | 'write' | 'flush';

/**
 * A failed read, write or flush of a disk image, with its cause: the errno code from the host
 * (EIO, ENOSPC, EDQUOT, …), the file, and the first sector concerned — for a flush, the first
 * sector written since the last successful flush, which is what ATA's FLUSH CACHE reports in its
 * LBA registers and what SCSI's INFORMATION field would carry.
 */
export class DiskIoError extends HvError {
  constructor(
    readonly path: string,
    readonly operation: DiskOperation,
    /** The errno code (`EIO`, `ENOSPC`…), or `EUNKNOWN` when the host gave none. */
    readonly errno: string,
    readonly lba: number,
    detail: string,
  ) {
    super('HV_ERR_DISK_IO', `disk image ${path}: ${operation} failed at sector ${lba} (${errno}): ${detail}`);
    this.name = 'DiskIoError';
  }

  /** Out of space on the host: the guest sees a space-allocation failure rather than a medium error. */
  get outOfSpace(): boolean {
    return this.errno === 'ENOSPC' || this.errno === 'EDQUOT';
  }

  static from(path: string, operation: DiskOperation, lba: number, err: unknown): DiskIoError {
    if (err instanceof DiskIoError) return err;
    const code = (err as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN';
    return new DiskIoError(path, operation, code, lba, err instanceof Error ? err.message : String(err));
  }
}

/**
 * Bounds the host log lines one disk's errors produce: a failing disk under a guest that keeps
 * retrying would otherwise write a line per request. Up to `burst` lines per `windowMs`; the
 * first line after a quiet spell says how many were left out.
 */
export class DiskErrorLog {
  private windowStart = -Infinity;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly sink: (message: string) => void,
    private readonly burst = 5,
    private readonly windowMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  report(e: DiskIoError): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.burst) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    const more = this.suppressed > 0 ? ` (${this.suppressed} more disk errors were not logged)` : '';
    this.suppressed = 0;
    this.sink(`${e.message}${more}`);
  }
}
