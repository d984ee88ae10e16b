/**
 * Export-VM: a VM that is Off or Saved, with its checkpoints, written to `<dir>/<VM name>/`
 * (vm-export-layout.ts). Every disk file the VM and its checkpoints use is copied — the whole
 * differencing chain, parents the operator attached included — and each copied differencing
 * file is pointed at its parent's copy. The folder is built under a temporary name beside its
 * final one and renamed when complete: a failed export leaves nothing behind.
 *
 * A Running or Paused VM is refused: its disks change under the copy. Save it (the export then
 * carries the saved state and the VM continues where it stopped after an import) or turn it off.
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { formatOf } from '../storage/open-disk.ts';
import { openVhdx } from '../storage/vhdx/vhdx-open.ts';
import { setParentRelativePath } from '../storage/vhdx/vhdx-relink.ts';
import { writeFileAtomic } from '../host/atomic-file.ts';
import type { CheckpointTree } from './checkpoint-tree.ts';
import type { VmDefinition } from './vm-definition.ts';
import { DISKS_DIR, drivePaths, exportedDiskPath, mapDrivePaths, SNAPSHOTS_DIR, TREE_FILE, VM_DIR } from './vm-export-layout.ts';

export class VmExportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ExportSource {
  def: VmDefinition;
  /** The VM's saved-state file when it is Saved. */
  savedState: string | null;
  tree: CheckpointTree;
}

export interface ExportResult {
  vm: string;
  vmId: string;
  /** The VM's folder: what `tsvisor vm import` takes. */
  path: string;
  disks: string[];
  checkpoints: number;
  savedState: boolean;
}

/** Each file's parent in its differencing chain (null for a base), for every file the VM needs. */
function chainsOf(files: readonly string[]): Map<string, string | null> {
  const parents = new Map<string, string | null>();
  for (const f of files) {
    if (parents.has(f)) continue;
    if (formatOf(f) !== 'vhdx') {
      parents.set(f, null);
      continue;
    }
    const disk = openVhdx(f, { readOnly: true });
    try {
      for (let d: typeof disk | null = disk; d && !parents.has(d.file.path); d = d.parent) parents.set(d.file.path, d.parent?.file.path ?? null);
    } finally {
      disk.close();
    }
  }
  return parents;
}

/** One name per file in the flat `Virtual Hard Disks/`: its own, or `<stem>-<n><ext>` when another file took it. */
function exportNames(files: Iterable<string>): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const f of files) {
    const base = basename(f).replace(/^\.+/, '') || 'disk';
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base.slice(0, base.length - extname(base).length)}-${n}${extname(base)}`;
    taken.add(name);
    names.set(f, name);
  }
  return names;
}

export function exportVm(src: ExportSource, dir: string): ExportResult {
  const { def, tree } = src;
  if ((tree.pendingMerges ?? []).length)
    throw new VmExportError('VMMS_ERR_BUSY', `VM ${def.name} has a checkpoint merge to finish; list its checkpoints (which finishes it) and export again`);
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch {
    throw new VmExportError('VMMS_ERR_EXPORT_PATH', `export directory ${dir} does not exist; create it first`);
  }
  if (!st.isDirectory()) throw new VmExportError('VMMS_ERR_EXPORT_PATH', `export directory ${dir} is not a directory`);
  if (def.name === '.' || def.name === '..')
    throw new VmExportError('VMMS_ERR_EXPORT_PATH', `a VM named "${def.name}" cannot be exported (its folder would not be its own); rename it first`);
  const target = join(dir, def.name);
  if (existsSync(target)) throw new VmExportError('VMMS_ERR_EXPORT_EXISTS', `${target} already exists; export to another directory or remove it`);

  // Every file: the drives now and in each checkpoint, files the tree keeps, and their parents.
  const used = [...drivePaths(def.devices), ...tree.checkpoints.flatMap((c) => drivePaths(c.settings.devices)), ...tree.retainedFiles];
  const parents = chainsOf(used);
  const names = exportNames(parents.keys());
  const rel = (path: string) => exportedDiskPath(names.get(path)!);

  const temp = join(dir, `.tsvisor-export-${randomUUID()}`);
  try {
    for (const d of [VM_DIR, DISKS_DIR, SNAPSHOTS_DIR]) mkdirSync(join(temp, d), { recursive: true });
    for (const [file, parent] of parents) {
      const copy = join(temp, DISKS_DIR, names.get(file)!);
      copyFileSync(file, copy);
      if (parent !== null) setParentRelativePath(copy, `.\\${names.get(parent)!}`);
    }
    const exported: VmDefinition = { ...def, devices: mapDrivePaths(def.devices, rel) };
    writeFileAtomic(join(temp, VM_DIR, `${def.id}.json`), JSON.stringify(exported, null, 2) + '\n');
    if (src.savedState) copyFileSync(src.savedState, join(temp, VM_DIR, `${def.id}.vmrs`));
    if (tree.checkpoints.length) {
      const checkpoints = tree.checkpoints.map((c) => {
        if (c.savedState) copyFileSync(c.savedState, join(temp, SNAPSHOTS_DIR, `${c.id}.vmrs`));
        return {
          ...c,
          settings: { ...c.settings, devices: mapDrivePaths(c.settings.devices, rel) },
          savedState: c.savedState ? `${SNAPSHOTS_DIR}/${c.id}.vmrs` : null,
        };
      });
      const out = {
        ...tree,
        checkpoints,
        createdFiles: tree.createdFiles.filter((f) => names.has(f)).map(rel),
        retainedFiles: tree.retainedFiles.map(rel),
      };
      delete (out as { pendingMerges?: unknown }).pendingMerges;
      writeFileAtomic(join(temp, SNAPSHOTS_DIR, TREE_FILE), JSON.stringify(out, null, 2) + '\n');
    }
    renameSync(temp, target);
  } catch (e) {
    rmSync(temp, { recursive: true, force: true });
    throw e;
  }
  return { vm: def.name, vmId: def.id, path: target, disks: [...names.values()], checkpoints: tree.checkpoints.length, savedState: src.savedState !== null };
}
