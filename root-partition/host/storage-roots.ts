/**
 * Storage roots: the directories the operator allowed VM files to come from (disks, guest images).
 * A definition names host paths, and the service (often root) opens them for the guest, so a
 * path anywhere else would hand a client the service's file access. Every path is judged by
 * where it really leads: symlinks resolved (realpath), `.` and `..` refused outright because the
 * kernel applies them after symlinks, not before as a lexical normalisation would.
 *
 * The refusal never says whether the path exists: a missing path, a dangling or looping symlink
 * and an existing file outside the roots all get the same sentence.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, realpathSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot } from './package-root.ts';
import { readFully } from './read-fully.ts';

export class StorageRootError extends Error {
  readonly code = 'VMMS_ERR_STORAGE_ROOT';
}

/** Where the package's built guest images live (`build/guests` beside package.json), if found. */
export function packageGuestImagesDir(from = import.meta.dirname): string | null {
  const root = packageRoot(from);
  return root === null ? null : join(root, 'build', 'guests');
}

/** A path in canonical absolute form: no empty, `.` or `..` component, no trailing slash. */
function isCanonical(path: string): boolean {
  if (!path.startsWith('/') || path.includes('\0')) return false;
  if (path === '/') return true;
  return path
    .slice(1)
    .split('/')
    .every((c) => c !== '' && c !== '.' && c !== '..');
}

/**
 * Where `path` leads: the realpath of its longest existing prefix plus the components not yet
 * there (they hold no symlink today; the start-time and open-time checks catch one made later).
 * Null when that cannot be told: a prefix that exists but does not resolve (a dangling or looping
 * symlink, a file used as a directory, no permission).
 */
export function resolvedPath(path: string): string | null {
  if (!isCanonical(path)) return null;
  const rest: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      const real = realpathSync(p);
      return rest.length ? join(real, ...rest.reverse()) : real;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
      try {
        lstatSync(p);
        return null; // it is there, yet does not resolve: a dangling symlink
      } catch {
        /* truly absent: try the parent */
      }
    }
    if (p === '/') return null;
    rest.push(p.slice(p.lastIndexOf('/') + 1));
  }
}

export class StorageRoots {
  private constructor(readonly dirs: readonly string[]) {}

  /** The roots as their real paths; each must exist and be a directory. */
  static of(dirs: readonly string[]): StorageRoots {
    const real = dirs.map((d) => {
      let r: string;
      try {
        r = realpathSync(d);
      } catch (e) {
        throw new Error(`storage root ${d}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
      }
      if (!lstatSync(r).isDirectory()) throw new Error(`storage root ${d} is not a directory`);
      return r;
    });
    return new StorageRoots([...new Set(real)]);
  }

  /** Whether an already resolved path lies in a root. */
  containsResolved(real: string): boolean {
    return this.dirs.some((d) => d === '/' || real === d || real.startsWith(`${d}/`));
  }

  /** The path's resolved form when it is in a root; otherwise the one refusal for every case. */
  check(path: string, what: string): string {
    const real = resolvedPath(path);
    if (real === null || !this.containsResolved(real))
      throw new StorageRootError(`${what} ${path} is not in a storage root this host allows (${this.dirs.join(', ')})`);
    return real;
  }

  /**
   * After the file is open: where the descriptor really points (the kernel's own record of what
   * was opened, /proc/self/fd/N) must be in a root, so that a symlink swapped in between the
   * check and the open gains nothing.
   */
  checkOpened(fd: number, path: string, what: string): void {
    let real: string | null = null;
    try {
      real = realpathSync(`/proc/self/fd/${fd}`);
    } catch {
      /* no /proc: refuse below */
    }
    if (real === null || !this.containsResolved(real))
      throw new StorageRootError(`${what} ${path} is not in a storage root this host allows (${this.dirs.join(', ')})`);
  }

  /** Reads a whole file through one descriptor checked with `checkOpened`. */
  readConfined(path: string, what: string): Buffer {
    this.check(path, what);
    // O_NONBLOCK: a FIFO put in the way must not hang the reader before the check refuses it.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      this.checkOpened(fd, path, what);
      const st: Stats = fstatSync(fd);
      if (!st.isFile()) throw new Error(`${what} ${path} is not a regular file`);
      return readFully(fd, st.size);
    } finally {
      closeSync(fd);
    }
  }
}
