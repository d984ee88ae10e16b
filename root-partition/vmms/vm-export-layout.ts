/**
 * The directory Export-VM writes and Import-VM reads, laid out as Hyper-V lays it out:
 *
 *   <dir>/<VM name>/Virtual Machines/<id>.json   the definition (disk paths relative to <dir>/<VM name>)
 *   <dir>/<VM name>/Virtual Machines/<id>.vmrs   its saved state, when the VM was Saved
 *   <dir>/<VM name>/Virtual Hard Disks/<file>    every disk file: drives, checkpoints' frozen files, parents
 *   <dir>/<VM name>/Snapshots/tree.json          the checkpoint tree (same relative paths)
 *   <dir>/<VM name>/Snapshots/<checkpoint>.vmrs  each standard checkpoint's saved state
 *
 * The disk files sit side by side, each differencing file's parent locator naming its parent
 * by file name (`.\base.vhdx`), so the folder can be moved or copied whole.
 */
import type { DeviceDefinition } from './vm-definition.ts';

export const VM_DIR = 'Virtual Machines';
export const DISKS_DIR = 'Virtual Hard Disks';
export const SNAPSHOTS_DIR = 'Snapshots';
export const TREE_FILE = 'tree.json';
/** The JSON files an import reads into memory: larger ones are refused before a byte is read. */
export const MAX_DEFINITION_BYTES = 1 << 20;
export const MAX_TREE_BYTES = 8 << 20;
/** Files in `Virtual Hard Disks/` (every checkpoint's file of every drive fits many times over). */
export const MAX_EXPORTED_DISKS = 1024;

/** A file name that stays in its directory: no separator, not `.` or `..`, no NUL, not hidden. */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[/\\\0]/.test(name) && !name.startsWith('.');
}

/** `Virtual Hard Disks/<name>` as written in an exported definition. */
export function exportedDiskPath(name: string): string {
  return `${DISKS_DIR}/${name}`;
}

/** The file name an exported disk path names, or null if it is not exactly `Virtual Hard Disks/<plain name>`. */
export function exportedDiskName(path: unknown): string | null {
  if (typeof path !== 'string' || !path.startsWith(`${DISKS_DIR}/`)) return null;
  const name = path.slice(DISKS_DIR.length + 1);
  return isPlainFileName(name) ? name : null;
}

/** Every drive's image path (IDE disks and SCSI LUNs, read-only ones too), in a stable order; entries of the wrong shape are skipped (validation reports them). */
export function drivePaths(devices: readonly DeviceDefinition[]): string[] {
  const out: string[] = [];
  for (const d of devices) {
    if (!d || typeof d !== 'object') continue;
    if (d.kind === 'ide-disk' && typeof d.path === 'string') out.push(d.path);
    if (d.kind === 'scsi-controller' && Array.isArray(d.disks))
      for (const disk of d.disks as { path?: unknown }[]) if (disk && typeof disk.path === 'string') out.push(disk.path);
  }
  return out;
}

/** The same devices with each drive's image path passed through `map` (a copy; the input is not changed). */
export function mapDrivePaths(devices: readonly DeviceDefinition[], map: (path: string) => string): DeviceDefinition[] {
  const copy = structuredClone(devices) as DeviceDefinition[];
  for (const d of copy) {
    if (!d || typeof d !== 'object') continue;
    if (d.kind === 'ide-disk' && typeof d.path === 'string') d.path = map(d.path);
    if (d.kind === 'scsi-controller' && Array.isArray(d.disks))
      for (const disk of d.disks as { path?: unknown }[]) if (disk && typeof disk.path === 'string') disk.path = map(disk.path);
  }
  return copy;
}
