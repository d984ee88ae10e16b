/**
 * A queue thread's view of a borrowed raw image: every I/O failure is passed to the owner of the
 * drive (whose first failure reaches VMMS, and whose flushes must fail from then on, as the
 * kernel reports a writeback error once per descriptor), then thrown on as the SCSI target expects.
 */
import type { BlockBackend } from '../../storage/block-backend.ts';
import { DiskIoError } from '../../storage/disk-io-error.ts';

export class FailureReportingDisk implements BlockBackend {
  constructor(
    private readonly inner: BlockBackend,
    private readonly onFailure: (e: DiskIoError) => void,
  ) {}

  get sectorSize(): number {
    return this.inner.sectorSize;
  }
  get sectorCount(): number {
    return this.inner.sectorCount;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get ioUs(): number | undefined {
    return this.inner.ioUs;
  }
  read(lba: number, dst: Uint8Array): void {
    this.run(() => this.inner.read(lba, dst));
  }
  write(lba: number, src: Uint8Array): void {
    this.run(() => this.inner.write(lba, src));
  }
  flush(): void {
    this.run(() => this.inner.flush());
  }
  close(): void {
    this.inner.close();
  }
  private run(io: () => void): void {
    try {
      io();
    } catch (e) {
      if (e instanceof DiskIoError) this.onFailure(e);
      throw e;
    }
  }
}
