/**
 * One VM's checkpoints (Hyper-V's snapshots) as data: a tree of checkpoints, each with a copy of
 * the VM's settings, the disk file each of its drives had when it was taken (frozen from then
 * on: the VM writes a differencing child of it), and optionally a whole-VM saved state. The
 * disk files form the same tree as the checkpoints: a checkpoint's file is the parent of the
 * files of its child checkpoints and, for the checkpoint the VM runs on from, of the VM's leaf.
 *
 * Everything here is pure (no files): the store (checkpoint-store.ts) persists the tree, the
 * operations (checkpoints.ts) do the file work the plans here describe.
 */
import { basename, dirname, join } from 'node:path';
import { GUID, type DeviceDefinition, type VmDefinition } from './vm-definition.ts';

export const CHECKPOINT_TREE_VERSION = 1;
/** Checkpoints per VM (Hyper-V allows 50). */
export const MAX_CHECKPOINTS = 50;
export const MAX_CHECKPOINT_NAME = 100;

export interface CheckpointRecord {
  /** A GUID: the snapshot VSSD's InstanceID is `Microsoft:<id>`. */
  id: string;
  name: string;
  parentId: string | null;
  /** ISO time of creation. */
  createdAt: string;
  /** The VM's settings when the checkpoint was taken; its drives name the frozen files. */
  settings: VmDefinition;
  /** Path of the whole-VM saved state taken with it (a standard checkpoint of a running VM). */
  savedState: string | null;
}

export interface CheckpointTree {
  version: number;
  vmId: string;
  checkpoints: CheckpointRecord[];
  /** The checkpoint the VM's current state derives from (Hyper-V's "Now" marker's parent). */
  currentId: string | null;
  /**
   * Differencing files this service created. Only these are ever deleted or merged away: a disk
   * the operator attached stays, whatever happens to the checkpoints taken of it.
   */
  createdFiles: string[];
  /** Files of removed checkpoints kept because several files still build on them. */
  retainedFiles: string[];
  /**
   * A merge under way, recorded before it starts: after a crash the next collection finishes it
   * (or, if it cannot tell how far it got, keeps both files) instead of taking the merged file
   * for one nothing needs.
   */
  pendingMerges?: PendingMerge[];
}

export interface PendingMerge {
  /** The unneeded file the child's data goes into. */
  file: string;
  child: string;
  /** The child's DataWriteGuid (hex) when files build on it: `file` then takes it and the child's name. */
  childIdentity: string | null;
  /** Merged by the running VM's worker (the child is the drive's file): no crash is implied by finishing it. */
  live?: boolean;
}

export function emptyTree(vmId: string): CheckpointTree {
  return { version: CHECKPOINT_TREE_VERSION, vmId, checkpoints: [], currentId: null, createdFiles: [], retainedFiles: [] };
}

/** A writable drive with an image: where it sits in a definition's `devices`. */
export interface DiskSlot {
  path: string;
  /** `devices[i]` or `devices[i].disks[j]`. */
  where: string;
}

/** The writable drives of a definition that have an image, in a stable order (IDE and SCSI as listed). */
export function writableDisks(devices: readonly DeviceDefinition[]): DiskSlot[] {
  const slots: DiskSlot[] = [];
  devices.forEach((d, i) => {
    if (d.kind === 'ide-disk' && typeof d.path === 'string' && d.readOnly !== true) slots.push({ path: d.path, where: `devices[${i}]` });
    if (d.kind === 'scsi-controller' && Array.isArray(d.disks)) {
      (d.disks as { path?: unknown; readOnly?: unknown }[]).forEach((disk, j) => {
        if (typeof disk.path === 'string' && disk.readOnly !== true) slots.push({ path: disk.path, where: `devices[${i}].disks[${j}]` });
      });
    }
  });
  return slots;
}

/** The same devices with each writable drive's image replaced by `paths` (in writableDisks order). */
export function withDiskPaths(devices: readonly DeviceDefinition[], paths: readonly string[]): DeviceDefinition[] {
  const copy = structuredClone(devices) as DeviceDefinition[];
  const slots = writableDisks(copy);
  if (slots.length !== paths.length) throw new Error(`${slots.length} writable drives but ${paths.length} paths`);
  let k = 0;
  copy.forEach((d) => {
    if (d.kind === 'ide-disk' && typeof d.path === 'string' && d.readOnly !== true) d.path = paths[k++];
    if (d.kind === 'scsi-controller' && Array.isArray(d.disks)) {
      for (const disk of d.disks as { path?: unknown; readOnly?: unknown }[]) if (typeof disk.path === 'string' && disk.readOnly !== true) disk.path = paths[k++];
    }
  });
  return copy;
}

/**
 * The differencing file a checkpoint puts on top of `parent`: beside it, named after the disk
 * and the checkpoint as Hyper-V names its AVHDX files (`disk_<checkpoint id>.avhdx`).
 */
export function differencingPath(parent: string, checkpointId: string, attempt = 0): string {
  const stem = basename(parent).replace(/\.a?vhdx$/i, '').replace(/_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-\d+)?$/, '');
  return join(dirname(parent), `${stem}_${checkpointId}${attempt ? `-${attempt}` : ''}.avhdx`);
}

/** Every file a tree and the VM's current drives reference (checkpoint disks, leaves, retained). */
export function knownFiles(tree: CheckpointTree, current: readonly DeviceDefinition[]): string[] {
  const files = new Set<string>();
  for (const c of tree.checkpoints) for (const s of writableDisks(c.settings.devices)) files.add(s.path);
  for (const s of writableDisks(current)) files.add(s.path);
  for (const f of tree.retainedFiles) files.add(f);
  return [...files];
}

/** The checkpoints under `id` (its children, their children, …). */
export function descendants(tree: CheckpointTree, id: string): CheckpointRecord[] {
  const out: CheckpointRecord[] = [];
  const walk = (p: string) => {
    for (const c of tree.checkpoints) if (c.parentId === p) { out.push(c); walk(c.id); }
  };
  walk(id);
  return out;
}

/**
 * What becomes of a file nobody references any more, given the files that build on it (its
 * children): none — delete it; one — merge it with that child (the data the child lacks goes into
 * it, and the child's chain gets one link shorter); more — keep it, as their shared parent.
 */
export type FileFate = { kind: 'delete' } | { kind: 'merge'; child: string } | { kind: 'keep' };

export function fateOf(children: readonly string[]): FileFate {
  if (children.length === 0) return { kind: 'delete' };
  if (children.length === 1) return { kind: 'merge', child: children[0] };
  return { kind: 'keep' };
}

/** The tree without checkpoint `id`: its children hang from its parent, and so does "Now" if it was there. */
export function withoutCheckpoint(tree: CheckpointTree, id: string): CheckpointTree {
  const gone = tree.checkpoints.find((c) => c.id === id);
  if (!gone) throw new Error(`no checkpoint ${id}`);
  return {
    ...tree,
    checkpoints: tree.checkpoints.filter((c) => c.id !== id).map((c) => (c.parentId === id ? { ...c, parentId: gone.parentId } : c)),
    currentId: tree.currentId === id ? gone.parentId : tree.currentId,
  };
}

/** Finds a checkpoint by id or name; a name several checkpoints share is refused as ambiguous. */
export function findCheckpoint(tree: CheckpointTree, idOrName: string): CheckpointRecord | { error: string } {
  const byId = tree.checkpoints.find((c) => c.id === idOrName);
  if (byId) return byId;
  const named = tree.checkpoints.filter((c) => c.name === idOrName);
  if (named.length === 1) return named[0];
  if (named.length > 1) return { error: `${named.length} checkpoints are named "${idOrName}"; name one by its id (${named.map((c) => c.id).join(', ')})` };
  return { error: `the VM has no checkpoint named or with id "${idOrName}"` };
}

/** Problems of a tree read from disk (empty when sound): a hand-edited or damaged file is refused, not trusted. */
export function treeProblems(value: unknown, vmId: string): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return ['must be a JSON object'];
  const t = value as Partial<CheckpointTree>;
  const p: string[] = [];
  if (t.version !== CHECKPOINT_TREE_VERSION) p.push(`version: must be ${CHECKPOINT_TREE_VERSION}`);
  if (t.vmId !== vmId) p.push(`vmId: must be ${vmId}`);
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string' && s.startsWith('/'));
  if (!strings(t.createdFiles)) p.push('createdFiles: must be an array of absolute paths');
  if (!strings(t.retainedFiles)) p.push('retainedFiles: must be an array of absolute paths');
  if (t.pendingMerges !== undefined && !(Array.isArray(t.pendingMerges) && t.pendingMerges.every((m) => m && typeof m.file === 'string' && m.file.startsWith('/') && typeof m.child === 'string' && m.child.startsWith('/')
    && (m.childIdentity === null || (typeof m.childIdentity === 'string' && /^[0-9a-f]{32}$/.test(m.childIdentity)))))) p.push('pendingMerges: must be an array of { file, child, childIdentity }');
  if (!Array.isArray(t.checkpoints) || t.checkpoints.length > MAX_CHECKPOINTS) { p.push(`checkpoints: must be an array of at most ${MAX_CHECKPOINTS}`); return p; }
  const ids = new Set<string>();
  t.checkpoints.forEach((c, i) => {
    if (!c || typeof c !== 'object') { p.push(`checkpoints[${i}]: must be an object`); return; }
    if (typeof c.id !== 'string' || !GUID.test(c.id) || ids.has(c.id)) p.push(`checkpoints[${i}].id: must be a unique lower-case GUID`);
    ids.add(c.id);
    if (typeof c.name !== 'string' || c.name.length === 0 || c.name.length > MAX_CHECKPOINT_NAME) p.push(`checkpoints[${i}].name: must be 1 to ${MAX_CHECKPOINT_NAME} characters`);
    if (c.savedState !== null && (typeof c.savedState !== 'string' || !c.savedState.startsWith('/'))) p.push(`checkpoints[${i}].savedState: must be null or an absolute path`);
    if (!c.settings || typeof c.settings !== 'object' || c.settings.id !== vmId) p.push(`checkpoints[${i}].settings: must be this VM's definition`);
  });
  for (const c of t.checkpoints) if (c?.parentId !== null && !ids.has(c?.parentId as string)) p.push(`checkpoint ${String(c?.id)}: parent ${String(c?.parentId)} is not in the tree`);
  if (t.currentId !== null && !ids.has(t.currentId as string)) p.push(`currentId: ${String(t.currentId)} is not in the tree`);
  // Parent links must end at a root: a loop would make every walk up the tree endless.
  for (const c of t.checkpoints) {
    let at: string | null = c?.parentId ?? null;
    for (let steps = 0; at !== null; steps++) {
      if (steps > t.checkpoints.length) { p.push(`checkpoint ${c.id}: its parent links form a loop`); break; }
      at = t.checkpoints.find((x) => x.id === at)?.parentId ?? null;
    }
  }
  return p;
}
