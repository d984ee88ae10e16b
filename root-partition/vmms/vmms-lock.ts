/**
 * One VMMS per data directory: two would both drive the same workers and files. The service holds
 * an exclusive flock(2) on `<dataDir>/vmms.lock` for its whole life, taken before it touches the
 * socket or any VM. The kernel drops it when the process dies, however it dies, so a VMMS killed
 * with SIGKILL is replaced at once — a pid file cannot do that: a zombie or a recycled pid looks
 * alive, and check-then-write lets two starters both win. `vmms.pid` is still written, for
 * people and scripts; nothing decides on it.
 */
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { FileLockedError, lockDescriptor } from '../storage/file-lock.ts';
import { writeFileAtomic } from '../host/atomic-file.ts';
import type { DataDir } from '../host/data-dir.ts';

/** Another service holds the data directory; `pid` when /proc or its pid file names it. */
export class VmmsLockedError extends Error {
  readonly code = 'VMMS_ERR_IN_USE';
  constructor(
    readonly pid: number | null,
    root: string,
  ) {
    super(`another management service (${pid !== null ? `process ${pid}` : 'process unknown'}) runs on ${root}`);
  }
}

export class VmmsLock {
  private constructor(
    private readonly paths: DataDir,
    private fd: number | undefined,
  ) {}

  /** Takes the lock or throws VmmsLockedError; then records this process in the pid file. */
  static take(paths: DataDir): VmmsLock {
    const fd = openSync(paths.vmmsLock, 'a', 0o600);
    try {
      lockDescriptor(fd, paths.vmmsLock, 'exclusive', 'lock file');
    } catch (e) {
      closeSync(fd);
      if (!(e instanceof FileLockedError)) throw e;
      throw new VmmsLockedError(e.holders[0]?.pid ?? pidFileOwner(paths), paths.root);
    }
    writeFileAtomic(paths.vmmsPid, `${process.pid}\n`);
    return new VmmsLock(paths, fd);
  }

  get held(): boolean {
    return this.fd !== undefined;
  }

  /**
   * Lets the data directory go. The pid file goes only while it still names this process; the
   * lock file stays (removing it would let a starter lock a new file while another holds the old).
   */
  release(): void {
    if (this.fd === undefined) return;
    if (pidFileOwner(this.paths) === process.pid) rmSync(this.paths.vmmsPid, { force: true });
    closeSync(this.fd);
    this.fd = undefined;
  }
}

function pidFileOwner(paths: DataDir): number | null {
  try {
    const pid = Number(readFileSync(paths.vmmsPid, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
