/**
 * A storage move arriving at this host, in VMMS: before the VM's worker starts, each drive the
 * source describes in HELLO gets an empty image of its format and size in the move's directory,
 * named as the source's file (`<dir>/<file name>`), and the VM's definition is rewritten to use
 * them. The directory must be one of this host's storage roots (when it has any); an existing
 * file is never overwritten. A move that fails removes what was made here (`remove`); the
 * source's files are never touched by a move.
 *
 * Raw images are made sparse (ftruncate); VHDX ones as dynamic VHDX with the source's Virtual Disk
 * ID, so a SCSI guest sees the same disk serial after the move.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { StorageRoots } from '../host/storage-roots.ts';
import { RawDisk } from '../storage/raw-disk.ts';
import { createVhdx } from '../storage/vhdx/vhdx-create.ts';
import type { VmDefinition } from '../vmms/vm-definition.ts';
import type { MovedDiskInfo } from '../vmwp/disk-copy-source.ts';
import { MAX_MOVED_DISKS, MigrationProtocolError } from './migration-wire.ts';

export class StorageMoveError extends Error {
  readonly code = 'MIGRATION_ERR_STORAGE';
}

/** Where a drive's copy goes: the move's directory, the source file's name. */
export function movedDiskPath(dir: string, sourcePath: string): string {
  return join(dir, basename(sourcePath));
}

/** The drives HELLO describes, checked field by field (a remote program wrote them). */
export function movedDisks(storage: unknown): { dir: string; disks: MovedDiskInfo[] } {
  const s = storage as { dir?: unknown; disks?: unknown };
  if (!s || typeof s.dir !== 'string' || !s.dir.startsWith('/') || s.dir.length > 4096)
    throw new MigrationProtocolError('the storage move names no absolute destination directory');
  if (!Array.isArray(s.disks) || s.disks.length > MAX_MOVED_DISKS)
    throw new MigrationProtocolError(`the storage move lists no drives, or more than ${MAX_MOVED_DISKS}`);
  const disks = s.disks.map((d: Partial<MovedDiskInfo>, i: number): MovedDiskInfo => {
    const ok =
      d &&
      typeof d.path === 'string' &&
      d.path.startsWith('/') &&
      d.path.length <= 4096 &&
      (d.format === 'raw' || d.format === 'vhdx') &&
      d.sectorSize === 512 &&
      Number.isSafeInteger(d.sectorCount) &&
      d.sectorCount! > 0 &&
      typeof d.readOnly === 'boolean' &&
      (d.virtualDiskId === null || (typeof d.virtualDiskId === 'string' && /^[0-9a-f]{32}$/.test(d.virtualDiskId)));
    if (!ok) throw new MigrationProtocolError(`the storage move's drive ${i} is malformed`);
    return { path: d.path!, format: d.format!, sectorSize: d.sectorSize!, sectorCount: d.sectorCount!, readOnly: d.readOnly!, virtualDiskId: d.virtualDiskId! };
  });
  return { dir: resolve(s.dir), disks };
}

/** Makes one drive's empty copy (refuses an existing file). */
export function createDiskCopy(info: MovedDiskInfo, target: string): void {
  const sizeBytes = info.sectorCount * info.sectorSize;
  if (info.format === 'raw') {
    RawDisk.create(target, { sizeBytes }).close();
    return;
  }
  if (existsSync(target)) throw new StorageMoveError(`${target} exists already; a storage move never overwrites a file`);
  createVhdx(target, { type: 'dynamic', sizeBytes, ...(info.virtualDiskId ? { diskId: Buffer.from(info.virtualDiskId, 'hex') } : {}) });
}

export interface PreparedStorageMove {
  /** The VM's definition with its drives on the copies. */
  definition: VmDefinition;
  /** The copies made here. */
  files: string[];
  /** Removes the copies (the move failed). */
  remove(): void;
}

/**
 * Makes the copies and the definition that uses them; all or nothing. `roots`: this host's
 * storage roots (null: none configured, any directory).
 */
export function prepareStorageMove(definition: VmDefinition, storage: unknown, roots: StorageRoots | null): PreparedStorageMove {
  const { dir, disks } = movedDisks(storage);
  if (roots) roots.check(dir, 'storage move directory');
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) throw new StorageMoveError(`the storage move's directory ${dir} does not exist on this host`);
  const targets = new Map<string, string>();
  for (const d of disks) {
    const target = movedDiskPath(dir, d.path);
    if ([...targets.values()].includes(target))
      throw new StorageMoveError(`two of the VM's drives are named ${basename(d.path)}; their copies would be one file in ${dir}`);
    targets.set(resolve(d.path), target);
  }
  const move = <T extends { path?: string }>(drive: T): T => {
    if (!drive.path) return drive;
    const target = targets.get(resolve(drive.path));
    if (!target) throw new StorageMoveError(`the VM's drive ${drive.path} is not among the drives the source sends`);
    return { ...drive, path: target };
  };
  const devices = definition.devices.map((d) => {
    const e = d as unknown as { kind: string; path?: string; disks?: { path?: string }[] };
    if (e.kind === 'ide-disk') return move(e) as unknown as typeof d;
    if (e.kind === 'scsi-controller' && Array.isArray(e.disks)) return { ...e, disks: e.disks.map(move) } as unknown as typeof d;
    return d;
  });
  const files: string[] = [];
  const remove = () => {
    for (const f of files.splice(0)) rmSync(f, { force: true });
  };
  try {
    disks.forEach((d) => {
      const target = targets.get(resolve(d.path))!;
      createDiskCopy(d, target);
      files.push(target);
    });
  } catch (e) {
    remove();
    throw e instanceof StorageMoveError ? e : new StorageMoveError(`the copies of the VM's drives cannot be made in ${dir}: ${(e as Error).message}`);
  }
  return { definition: { ...definition, devices }, files: [...files], remove };
}
