import { hostIo, type RawDiskIo } from '../../root-partition/storage/raw-disk.ts';

/** One queued system call held back until the test completes it. */
export interface HeldCall {
  op: 'pread' | 'pwrite' | 'fdatasync';
  position: number;
  length: number;
  /** When it was issued and completed, on one clock counting both. */
  issuedAt: number;
  completedAt: number;
  /** Runs the real call on the file now (a short transfer moves only the first half) and completes it. */
  complete(short?: boolean): void;
  /** Completes it with this errno instead, the file untouched. */
  fail(code: string): void;
}

/**
 * A raw disk's system calls where the queued ones wait in `held` until the test completes them, in
 * any order it likes: the thread pool's reordering made deterministic. The calls themselves are the
 * real pread/pwrite/fdatasync on the real file, made when completed.
 */
export class DeferredIo implements RawDiskIo {
  readonly held: HeldCall[] = [];
  /** The call being completed now (its callbacks run inside complete()). */
  current: HeldCall | null = null;
  private clock = 0;
  readonly pread = hostIo.pread;
  readonly pwrite = hostIo.pwrite;
  readonly fdatasync = hostIo.fdatasync;

  preadAsync(fd: number, buf: Uint8Array, offset: number, length: number, position: number, done: (err: Error | null, bytes: number) => void): void {
    this.hold('pread', position, length, (short) => hostIo.pread(fd, buf, offset, short ? Math.max(1, length >> 1) : length, position), done);
  }

  pwriteAsync(fd: number, buf: Uint8Array, offset: number, length: number, position: number, done: (err: Error | null, bytes: number) => void): void {
    this.hold('pwrite', position, length, (short) => hostIo.pwrite(fd, buf, offset, short ? Math.max(1, length >> 1) : length, position), done);
  }

  fdatasyncAsync(fd: number, done: (err: Error | null) => void): void {
    this.hold(
      'fdatasync',
      0,
      0,
      () => {
        hostIo.fdatasync(fd);
        return 0;
      },
      (err) => done(err),
    );
  }

  /** Completes the held call at `index` (its callback runs before this returns). */
  complete(index: number, short = false): HeldCall {
    const [call] = this.held.splice(index, 1);
    call!.completedAt = ++this.clock;
    this.current = call!;
    try {
      call!.complete(short);
    } finally {
      this.current = null;
    }
    return call!;
  }

  private hold(op: HeldCall['op'], position: number, length: number, run: (short: boolean) => number, done: (err: Error | null, bytes: number) => void): void {
    this.held.push({
      op,
      position,
      length,
      issuedAt: ++this.clock,
      completedAt: 0,
      complete: (short = false) => done(null, run(short)),
      fail: (code) => done(Object.assign(new Error(`${code}: injected ${op} failure`), { code, syscall: op }), 0),
    });
  }
}
