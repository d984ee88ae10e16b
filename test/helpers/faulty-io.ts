import { hostIo, type RawDiskIo } from '../../root-partition/storage/raw-disk.ts';

type Op = 'pread' | 'pwrite' | 'fdatasync';

/**
 * The raw disk's system calls with failures on command: the next `times` calls of an operation
 * throw the errno a failing device or a full file system gives (EIO, ENOSPC), below everything the
 * disk does about it; calls that are not failed go to the real file. Counts successful calls.
 */
export class FaultyIo implements RawDiskIo {
  readonly calls: Record<Op, number> = { pread: 0, pwrite: 0, fdatasync: 0 };
  private readonly failing: Partial<Record<Op, { code: string; times: number }>> = {};

  fail(op: Op, code: string, times = 1): void {
    this.failing[op] = { code, times };
  }

  private check(op: Op): void {
    const f = this.failing[op];
    if (!f || f.times <= 0) return;
    f.times--;
    throw Object.assign(new Error(`${code(f.code)}: injected ${op} failure`), { code: f.code, syscall: op });
  }

  pread(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    this.check('pread');
    this.calls.pread++;
    return hostIo.pread(fd, buf, offset, length, position);
  }

  pwrite(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    this.check('pwrite');
    this.calls.pwrite++;
    return hostIo.pwrite(fd, buf, offset, length, position);
  }

  fdatasync(fd: number): void {
    this.check('fdatasync');
    this.calls.fdatasync++;
    hostIo.fdatasync(fd);
  }
}

function code(c: string): string {
  return c === 'EIO' ? 'EIO, i/o error' : c === 'ENOSPC' ? 'ENOSPC, no space left on device' : c;
}
