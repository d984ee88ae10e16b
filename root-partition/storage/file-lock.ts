/**
 * Whole-file advisory locks (flock(2)) for disk images and the VMMS lock file.
 *
 * Node 20 has no flock(2). util-linux `flock(1)` takes the lock for us on a descriptor we pass it
 * as its fd 3: the child and this process then share one open file description, so the lock
 * belongs to that description, stays after the child exits, and goes away when this process
 * closes the descriptor — or dies, since the kernel closes its descriptors (no stale lock after
 * kill -9, unlike a pid file). The descriptor is O_CLOEXEC (Node opens every file so), so no
 * other program started later inherits it. A conflict fails at once (--nonblock).
 *
 * Holders are named from /proc/<pid>/fdinfo, whose `lock:` lines list the locks held through
 * each descriptor (the pid /proc/locks shows for a flock lock is the process that called
 * flock(2) — here the short-lived flock(1) child — so it cannot name the holder).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { HvError } from '../../hypervisor/hv-error.ts';

export type FileLockMode = 'exclusive' | 'shared';

export const FileLockError = {
  /** Another open file description holds a conflicting lock. */
  Busy: 'HV_ERR_FILE_LOCKED',
  /** The lock could not be attempted (flock(1) missing or failing). */
  Unavailable: 'HV_ERR_FILE_LOCK_UNAVAILABLE',
} as const;

/** A process that holds a lock on the file, as /proc shows it. */
export interface LockHolder {
  pid: number;
  /** Its command line (a VM worker's reads `tsvisor-vmwp <vm id>`). */
  command: string;
  mode: 'exclusive' | 'shared';
}

/** flock(1)'s exit status when the lock is held elsewhere (chosen apart from its usage errors). */
const CONFLICT_EXIT = 75;

/** A refused lock, with who holds the file when /proc lets this process see it. */
export class FileLockedError extends HvError {
  constructor(
    readonly path: string,
    readonly holders: LockHolder[],
    what: string,
  ) {
    super(FileLockError.Busy, `${what} ${path} is in use: ${describeHolders(holders)}`);
    this.name = 'FileLockedError';
  }
}

export function describeHolders(holders: LockHolder[]): string {
  if (holders.length === 0) return 'locked by a process this user cannot see';
  return holders.map((h) => `process ${h.pid} (${h.command}) holds ${h.mode === 'exclusive' ? 'an exclusive' : 'a shared'} lock`).join('; ');
}

/**
 * Locks the open file description behind `fd` (opened by the caller on `path`). Throws
 * FileLockedError naming the holders when another description holds a conflicting lock.
 * `what` names the file in messages ("disk image", "lock file").
 */
export function lockDescriptor(fd: number, path: string, mode: FileLockMode, what = 'file'): void {
  const r = spawnSync('flock', [`--${mode}`, '--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT), '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    timeout: 10_000,
  });
  if (r.status === 0) return;
  if (r.status === CONFLICT_EXIT) throw new FileLockedError(path, lockHolders(path), what);
  const why = r.error ? r.error.message : `flock(1) exited with ${r.status ?? r.signal}: ${r.stderr?.toString().trim()}`;
  throw new HvError(FileLockError.Unavailable, `cannot lock ${what} ${path}: ${why}`);
}

/** Linux dev_t as /proc prints it (major:minor in hex), from a stat's `dev`. */
function devString(dev: number): string {
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

/**
 * Processes holding a flock on `path`, from every /proc/<pid>/fdinfo/<fd> this process may read.
 * Only called after a refusal, so the scan's cost (one small read per open descriptor) is paid
 * on the error path alone.
 */
export function lockHolders(path: string): LockHolder[] {
  let key: string;
  try {
    const st = fs.statSync(path);
    key = `${devString(st.dev)}:${st.ino}`;
  } catch {
    return [];
  }
  const found = new Map<number, LockHolder>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      let info: string;
      try {
        info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      // "lock:\t1: FLOCK  ADVISORY  WRITE 11379 fe:00:2146589 0 EOF"
      for (const m of info.matchAll(/^lock:\s+\d+: FLOCK\s+\S+\s+(READ|WRITE)\s+\S+\s+(\S+)\s/gm)) {
        if (m[2] !== key) continue;
        found.set(Number(pid), { pid: Number(pid), command: commandOf(pid), mode: m[1] === 'WRITE' ? 'exclusive' : 'shared' });
      }
    }
  }
  return [...found.values()];
}

function commandOf(pid: string): string {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return argv.length > 160 ? `${argv.slice(0, 157)}...` : argv;
  } catch {
    return '?';
  }
}
