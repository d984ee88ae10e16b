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
import * as v from 'valibot';
import type { DeviceDefinition, VmDefinition } from './vm-definition.ts';
import { absolutePath, acrossEntries, entryPath, guid, knownFields, schemaProblems, type ListIssue } from './schema-problems.ts';

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
  /**
   * The files that build on the child, when `file` is one the operator attached: `file` keeps its
   * name and these are pointed at it (storage/vhdx/vhdx-repoint.ts).
   */
  repoint?: string[];
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
      for (const disk of d.disks as { path?: unknown; readOnly?: unknown }[])
        if (typeof disk.path === 'string' && disk.readOnly !== true) disk.path = paths[k++];
    }
  });
  return copy;
}

/**
 * The differencing file a checkpoint puts on top of `parent`: beside it, named after the disk
 * and the checkpoint as Hyper-V names its AVHDX files (`disk_<checkpoint id>.avhdx`).
 */
export function differencingPath(parent: string, checkpointId: string, attempt = 0): string {
  const stem = basename(parent)
    .replace(/\.a?vhdx$/i, '')
    .replace(/_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-\d+)?$/, '');
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
    for (const c of tree.checkpoints)
      if (c.parentId === p) {
        out.push(c);
        walk(c.id);
      }
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

const absolutePaths = v.array(absolutePath(), 'must be an array of absolute paths');

/** Each checkpoint's parent is in the tree and the parent links end at a root (a loop would make every walk up the tree endless). */
function parentLinks(checkpoints: readonly unknown[], addIssue: ListIssue): void {
  const list = checkpoints.filter((c): c is { id: unknown; parentId: unknown } => typeof c === 'object' && c !== null);
  const ids = new Set(list.map((c) => c.id));
  const parentOf = new Map(list.map((c) => [c.id, c.parentId]));
  checkpoints.forEach((c, i) => {
    if (typeof c !== 'object' || c === null) return;
    const { id, parentId } = c as { id: unknown; parentId: unknown };
    const path = entryPath(checkpoints, i, 'parentId');
    if (parentId !== null && !ids.has(parentId)) {
      addIssue({ message: `parent ${String(parentId)} is not in the tree`, path });
      return;
    }
    let at: unknown = parentId;
    for (let steps = 0; at !== null && at !== undefined; steps++) {
      if (steps > list.length) {
        addIssue({ message: `checkpoint ${String(id)}: its parent links form a loop`, path });
        return;
      }
      at = parentOf.get(at);
    }
  });
}

/** The schema of a VM's checkpoint tree file (valibot); `vmId` is the VM it must belong to. */
export function treeSchema(vmId: string) {
  const record = knownFields(
    {
      id: guid('a unique lower-case GUID'),
      name: v.pipe(
        v.string(`must be 1 to ${MAX_CHECKPOINT_NAME} characters`),
        v.minLength(1, `must be 1 to ${MAX_CHECKPOINT_NAME} characters`),
        v.maxLength(MAX_CHECKPOINT_NAME, `must be 1 to ${MAX_CHECKPOINT_NAME} characters`),
      ),
      parentId: v.nullable(v.string('must be null or a checkpoint id')),
      savedState: v.nullable(absolutePath('null or an absolute path')),
      settings: knownFields({ id: v.literal(vmId, `must be ${vmId} (this VM's id)`) }, "must be this VM's definition"),
    },
    'must be an object',
  );
  return v.pipe(
    v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'must be a JSON object'),
    knownFields(
      {
        version: v.literal(CHECKPOINT_TREE_VERSION, `must be ${CHECKPOINT_TREE_VERSION}`),
        vmId: v.literal(vmId, `must be ${vmId}`),
        createdFiles: absolutePaths,
        retainedFiles: absolutePaths,
        pendingMerges: v.optional(
          v.array(
            knownFields(
              {
                file: absolutePath(),
                child: absolutePath(),
                childIdentity: v.nullable(v.pipe(v.string('must be null or 32 hex digits'), v.regex(/^[0-9a-f]{32}$/, 'must be null or 32 hex digits'))),
                live: v.optional(v.boolean('must be true or false')),
                repoint: v.optional(v.pipe(absolutePaths, v.maxLength(MAX_CHECKPOINTS + 1, `must list at most ${MAX_CHECKPOINTS + 1} files`))),
              },
              'must be an object',
            ),
            'must be an array of { file, child, childIdentity, live?, repoint? }',
          ),
        ),
        checkpoints: v.pipe(
          v.array(record, `must be an array of at most ${MAX_CHECKPOINTS}`),
          v.maxLength(MAX_CHECKPOINTS, `must be an array of at most ${MAX_CHECKPOINTS}`),
          acrossEntries((checkpoints, addIssue) => {
            const seen = new Set<unknown>();
            checkpoints.forEach((c, i) => {
              const id = (c as { id?: unknown } | null)?.id;
              if (typeof id === 'string' && seen.has(id)) addIssue({ message: 'must be a unique lower-case GUID', path: entryPath(checkpoints, i, 'id') });
              seen.add(id);
            });
            parentLinks(checkpoints, addIssue);
          }),
        ),
        currentId: v.nullable(v.string('must be null or a checkpoint id')),
      },
      'must be a JSON object',
    ),
    v.rawCheck(({ dataset, addIssue }) => {
      const t = dataset.value as { checkpoints?: unknown; currentId?: unknown };
      if (typeof t.currentId !== 'string' || !Array.isArray(t.checkpoints) || t.checkpoints.some((c) => (c as { id?: unknown } | null)?.id === t.currentId))
        return;
      addIssue({
        message: `${t.currentId} is not in the tree`,
        path: [{ type: 'object', origin: 'value', input: t as Record<string, unknown>, key: 'currentId', value: t.currentId }],
      });
    }),
  );
}

/** Problems of a tree read from disk (empty when sound): a hand-edited or damaged file is refused, not trusted. */
export function treeProblems(value: unknown, vmId: string): string[] {
  return schemaProblems(treeSchema(vmId), value);
}
