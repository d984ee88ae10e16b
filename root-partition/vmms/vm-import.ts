/**
 * Import-VM: a folder `tsvisor vm export` wrote (vm-export-layout.ts) becomes a VM of this host —
 * registered where it is, or copied (its disks to a directory of the operator's choice), with its
 * id or a new one. The folder is untrusted: it may have been carried between hosts or made by
 * hand to attack the service, which runs with more rights than the user who names it. So before
 * anything is kept:
 *
 * - the folder and its three directories are real directories and every entry a regular file
 *   with a plain name (no symlink, FIFO or device; nothing named to climb out);
 * - the JSON files are read through one descriptor each (O_NOFOLLOW), refused above a size cap;
 * - every disk path in the definition and the checkpoint tree is exactly `Virtual Hard Disks/<name>`
 *   of a file that is there, and the definition and tree then pass the same validation as the
 *   service's own files;
 * - every disk file opens as a raw or VHDX image, and a differencing file's parent is a file of
 *   the same directory;
 * - a copy must fit the destination's free space.
 *
 * The import then writes saved states, the tree and the definition last (the definition makes
 * the VM exist); a failure at any step removes what the import made.
 */
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statfsSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { readFully } from '../host/read-fully.ts';
import { openDisk } from '../storage/open-disk.ts';
import { CHECKPOINT_TREE_VERSION, treeProblems, type CheckpointTree } from './checkpoint-tree.ts';
import { GUID, validateDefinition, type VmDefinition } from './vm-definition.ts';
import {
  DISKS_DIR,
  drivePaths,
  exportedDiskName,
  isPlainFileName,
  mapDrivePaths,
  MAX_DEFINITION_BYTES,
  MAX_EXPORTED_DISKS,
  MAX_TREE_BYTES,
  SNAPSHOTS_DIR,
  TREE_FILE,
  VM_DIR,
} from './vm-export-layout.ts';

export class VmImportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const refuse = (folder: string, why: string) => new VmImportError('VMMS_ERR_IMPORT', `cannot import ${folder}: ${why}`);

export interface ImportOptions {
  /** Where the disks go (Import-VM -Copy -VhdDestinationPath); absent: registered in place. */
  copyTo?: string;
  /** A new VM id (Import-VM -GenerateNewId); only with a copy, so that two VMs never share disk files. */
  newId?: boolean;
  /** The imported VM's name (default: the exported one). */
  name?: string;
}

/** What VMMS lends the import. */
export interface ImportHost {
  idTaken(id: string): boolean;
  nameTaken(name: string): boolean;
  savedStatePath(id: string): string;
  checkpointDir(id: string): string;
  /** Checks a directory the import reads from or writes to against the storage roots (throws). */
  checkRoot(path: string, what: string): void;
  /** Validates, confines and persists the definition; the VM exists from here (throws to refuse). */
  register(def: VmDefinition, tree: CheckpointTree | null, saved: boolean): void;
}

export interface ImportResult {
  vm: string;
  vmId: string;
  mode: 'register' | 'copy';
  disks: string[];
  checkpoints: number;
  savedState: boolean;
}

/** The plain-file entries of a directory of the export, each checked (absent directory: empty). */
function listFiles(folder: string, dir: string, optional: boolean): string[] {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch {
    if (optional) return [];
    throw refuse(folder, `it has no "${dir.slice(folder.length + 1)}" directory (is it the VM's folder, <export dir>/<VM name>?)`);
  }
  if (st.isSymbolicLink() || !st.isDirectory()) throw refuse(folder, `${dir} is not a directory (a symlink or another file is refused)`);
  const names = readdirSync(dir);
  if (names.length > MAX_EXPORTED_DISKS + 2) throw refuse(folder, `${dir} holds ${names.length} entries (at most ${MAX_EXPORTED_DISKS})`);
  for (const name of names) {
    if (!isPlainFileName(name)) throw refuse(folder, `${join(dir, name)}: an unexpected name`);
    const s = lstatSync(join(dir, name));
    if (!s.isFile())
      throw refuse(
        folder,
        `${join(dir, name)} is not a regular file (${s.isSymbolicLink() ? 'a symlink' : 'a directory or special file'}); an export holds only files`,
      );
  }
  return names;
}

/** A JSON file read through one descriptor that is not a symlink, refused above `max` bytes. */
function readJson(folder: string, path: string, max: number): unknown {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw refuse(folder, `${path}: ${(e as NodeJS.ErrnoException).code === 'ELOOP' ? 'a symlink' : (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(folder, `${path} is not a regular file`);
    if (st.size > max) throw refuse(folder, `${path} is ${st.size} bytes (at most ${max})`);
    const b = readFully(fd, st.size);
    try {
      return JSON.parse(b.toString('utf8'));
    } catch (e) {
      throw refuse(folder, `${path} is not valid JSON (${(e as Error).message})`);
    }
  } finally {
    closeSync(fd);
  }
}

/** The export read and checked, with disk paths still as file names in `Virtual Hard Disks/`. */
interface ExportContents {
  def: VmDefinition;
  tree: CheckpointTree | null;
  savedState: string | null;
  disks: string[];
}

function readExport(folder: string): ExportContents {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(folder);
  } catch {
    throw refuse(folder, 'no such directory');
  }
  if (st.isSymbolicLink() || !st.isDirectory()) throw refuse(folder, 'it is not a directory (a symlink is refused: name the folder itself)');
  const vmFiles = listFiles(folder, join(folder, VM_DIR), false);
  const disks = listFiles(folder, join(folder, DISKS_DIR), true);
  const snapshots = listFiles(folder, join(folder, SNAPSHOTS_DIR), true);
  const defs = vmFiles.filter((n) => n.endsWith('.json'));
  if (defs.length !== 1) throw refuse(folder, `"${VM_DIR}" must hold one definition (<id>.json), not ${defs.length}`);
  const id = defs[0]!.slice(0, -5);
  if (!GUID.test(id)) throw refuse(folder, `${defs[0]} is not named after a VM id (a lower-case GUID)`);
  for (const n of vmFiles) if (n !== `${id}.json` && n !== `${id}.vmrs`) throw refuse(folder, `"${VM_DIR}/${n}" is not part of an export`);

  const problems: string[] = [];
  const diskSet = new Set(disks);
  const local = (where: string) => (path: string) => {
    const name = exportedDiskName(path);
    if (name === null || !diskSet.has(name)) problems.push(`${where}: disk path ${JSON.stringify(path)} is not a file in "${DISKS_DIR}/"`);
    return name ?? '';
  };
  const raw = readJson(folder, join(folder, VM_DIR, `${id}.json`), MAX_DEFINITION_BYTES) as Record<string, unknown>;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw refuse(folder, 'the definition is not a JSON object');
  if (raw.id !== id) throw refuse(folder, `the definition's id ${JSON.stringify(raw.id)} is not its file name's ${id}`);
  const devices = Array.isArray(raw.devices) ? raw.devices : [];
  drivePaths(devices).forEach(local('the definition'));

  let tree: CheckpointTree | null = null;
  if (snapshots.length) {
    for (const n of snapshots)
      if (n !== TREE_FILE && !(n.endsWith('.vmrs') && GUID.test(n.slice(0, -5)))) throw refuse(folder, `"${SNAPSHOTS_DIR}/${n}" is not part of an export`);
    if (!snapshots.includes(TREE_FILE)) throw refuse(folder, `"${SNAPSHOTS_DIR}" has checkpoint states but no ${TREE_FILE}`);
    const t = readJson(folder, join(folder, SNAPSHOTS_DIR, TREE_FILE), MAX_TREE_BYTES) as Partial<CheckpointTree>;
    if (!t || typeof t !== 'object' || !Array.isArray(t.checkpoints)) throw refuse(folder, `${SNAPSHOTS_DIR}/${TREE_FILE} is not a checkpoint tree`);
    t.checkpoints.forEach((c, i) => {
      if (!c || typeof c !== 'object') return;
      if (c.settings && typeof c.settings === 'object' && Array.isArray(c.settings.devices)) drivePaths(c.settings.devices).forEach(local(`checkpoint ${i}`));
      if (c.savedState !== null && (c.savedState !== `${SNAPSHOTS_DIR}/${String(c.id)}.vmrs` || !snapshots.includes(`${String(c.id)}.vmrs`)))
        problems.push(`checkpoint ${i}: saved state ${JSON.stringify(c.savedState)} is not its file in "${SNAPSHOTS_DIR}/"`);
    });
    for (const key of ['createdFiles', 'retainedFiles'] as const) if (Array.isArray(t[key])) (t[key] as unknown[]).forEach((f) => local(key)(f as string));
    tree = t as CheckpointTree;
  }
  if (problems.length) throw refuse(folder, problems.join('; '));
  return { def: raw as unknown as VmDefinition, tree, savedState: vmFiles.includes(`${id}.vmrs`) ? join(folder, VM_DIR, `${id}.vmrs`) : null, disks };
}

/** Every disk file opens as an image, and a differencing file's parents are files of the same directory. */
function checkDisks(folder: string, diskDir: string, names: readonly string[]): void {
  for (const name of names) {
    const path = join(diskDir, name);
    const inside = (p: string) => dirname(p) === diskDir && names.includes(p.slice(diskDir.length + 1));
    try {
      openDisk(path, {
        readOnly: true,
        checkPath: (p) => {
          if (!inside(p)) throw new Error(`its parent locator points outside "${DISKS_DIR}/" (${p})`);
        },
      }).close();
    } catch (e) {
      throw refuse(folder, `disk ${DISKS_DIR}/${name}: ${(e as Error).message}`);
    }
  }
}

/** The definition and tree with each `Virtual Hard Disks/<name>` made `<dir>/<name>`, and the ids of the imported VM. */
function placed(c: ExportContents, dir: string, id: string, name: string, checkpointDir: string): { def: VmDefinition; tree: CheckpointTree | null } {
  const abs = (p: string) => join(dir, exportedDiskName(p)!);
  // Wrong shapes pass through unchanged for the validation to name.
  const devices = (d: VmDefinition['devices']) => (Array.isArray(d) ? mapDrivePaths(d, abs) : d);
  const files = (f: string[]) => (Array.isArray(f) ? f.map((p) => (typeof p === 'string' ? abs(p) : p)) : f);
  const def = { ...c.def, id, name, devices: devices(c.def.devices) };
  const tree = c.tree && {
    ...c.tree,
    vmId: id,
    checkpoints: c.tree.checkpoints.map((cp) =>
      !cp || typeof cp !== 'object' || !cp.settings || typeof cp.settings !== 'object'
        ? cp
        : {
            ...cp,
            settings: { ...cp.settings, id, devices: devices(cp.settings.devices) },
            savedState: cp.savedState === null ? null : join(checkpointDir, `${cp.id}.vmrs`),
          },
    ),
    createdFiles: files(c.tree.createdFiles),
    retainedFiles: files(c.tree.retainedFiles),
  };
  return { def, tree };
}

export function importVm(folder: string, o: ImportOptions, host: ImportHost): ImportResult {
  if (o.newId && o.copyTo === undefined)
    throw new VmImportError('VMMS_ERR_REQUEST', 'a new id needs a copy (--copy <dir>): two VMs must not share the same disk files');
  host.checkRoot(folder, 'import folder');
  const c = readExport(folder);
  const oldId = c.def.id;
  const id = o.newId ? randomUUID() : oldId;
  const name = o.name ?? (typeof c.def.name === 'string' ? c.def.name : '');
  if (!o.newId && host.idTaken(id))
    throw new VmImportError(
      'VMMS_ERR_VM_EXISTS',
      `a VM with id ${id} is already defined on this host; import a copy with a new id (--copy <dir> --new-id) or remove that VM`,
    );
  if (host.nameTaken(name))
    throw new VmImportError('VMMS_ERR_NAME_IN_USE', `a VM named "${name}" exists; import under another name (--name) or remove that VM`);

  // Validated as the service's own files are, at the place they will have (against the old id).
  const diskDir = o.copyTo ?? join(folder, DISKS_DIR);
  const check = placed(c, diskDir, oldId, name, host.checkpointDir(oldId));
  const def = validateDefinition(check.def, `cannot import ${folder}: the definition`);
  if (check.tree) {
    if (check.tree.version !== CHECKPOINT_TREE_VERSION) throw refuse(folder, `the checkpoint tree's version must be ${CHECKPOINT_TREE_VERSION}`);
    const p = treeProblems(check.tree, oldId);
    if (p.length) throw refuse(folder, `invalid checkpoint tree: ${p.join('; ')}`);
    for (const cp of check.tree.checkpoints) validateDefinition(cp.settings, `cannot import ${folder}: checkpoint ${cp.id}`);
  }
  checkDisks(folder, join(folder, DISKS_DIR), c.disks);
  const final = placed(c, diskDir, id, def.name, host.checkpointDir(id));

  const made: string[] = [];
  try {
    if (o.copyTo !== undefined) copyDisks(folder, c.disks, o.copyTo, host, made);
    const checkpointDir = host.checkpointDir(id);
    if (final.tree) {
      if (existsSync(checkpointDir)) throw new VmImportError('VMMS_ERR_VM_EXISTS', `${checkpointDir} exists: checkpoints of another VM with id ${id}`);
      mkdirSync(checkpointDir, { recursive: true });
      made.push(checkpointDir);
      for (const cp of c.tree!.checkpoints)
        if (cp.savedState) copyFileSync(join(folder, SNAPSHOTS_DIR, `${cp.id}.vmrs`), join(checkpointDir, `${cp.id}.vmrs`), constants.COPYFILE_EXCL);
    }
    if (c.savedState) {
      copyFileSync(c.savedState, host.savedStatePath(id), constants.COPYFILE_EXCL);
      made.push(host.savedStatePath(id));
    }
    host.register(final.def, final.tree, c.savedState !== null);
  } catch (e) {
    for (const p of made.reverse()) rmSync(p, { recursive: true, force: true });
    throw e;
  }
  return {
    vm: def.name,
    vmId: id,
    mode: o.copyTo !== undefined ? 'copy' : 'register',
    disks: c.disks.map((n) => join(diskDir, n)),
    checkpoints: final.tree?.checkpoints.length ?? 0,
    savedState: c.savedState !== null,
  };
}

/** The disks into `dest` (made if absent), none over an existing file, all or none. */
function copyDisks(folder: string, names: readonly string[], dest: string, host: ImportHost, made: string[]): void {
  host.checkRoot(dest, 'import destination');
  if (!existsSync(dest)) {
    mkdirSync(dest, { recursive: true });
    made.push(dest);
  }
  for (const n of names)
    if (existsSync(join(dest, n))) throw new VmImportError('VMMS_ERR_IMPORT', `${join(dest, n)} already exists; copy to another directory`);
  const need = names.reduce((sum, n) => sum + lstatSync(join(folder, DISKS_DIR, n)).size, 0);
  const fs = statfsSync(dest);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (need > free) throw new VmImportError('VMMS_ERR_IMPORT', `the disks take ${need} bytes but ${dest} has ${free} free`);
  // Copied under a temporary directory, then each renamed into place (same file system).
  const temp = join(dest, `.tsvisor-import-${randomUUID()}`);
  mkdirSync(temp);
  try {
    for (const n of names) copyFileSync(join(folder, DISKS_DIR, n), join(temp, n), constants.COPYFILE_EXCL);
    for (const n of names) {
      renameSync(join(temp, n), join(dest, n));
      made.push(join(dest, n));
    }
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
