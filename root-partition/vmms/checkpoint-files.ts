/**
 * The file work behind checkpoints: differencing children made on top of the files a checkpoint
 * freezes, and the files nobody needs any more collected — deleted, merged with their one child,
 * or kept as the shared parent of several (checkpoint-tree.ts's `fateOf`). Synchronous, so that
 * within VMMS no other request runs between the steps of one change.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatOf } from '../storage/open-disk.ts';
import { createVhdx } from '../storage/vhdx/vhdx-create.ts';
import { copyIntoParent, mergeVhdx, setIdentity } from '../storage/vhdx/vhdx-edit.ts';
import { randomGuid, type Guid } from '../storage/vhdx/vhdx-guid.ts';
import { openVhdx } from '../storage/vhdx/vhdx-open.ts';
import { linkageOf, namesParent, readLocator, repointPastChild } from '../storage/vhdx/vhdx-repoint.ts';
import { differencingPath, fateOf, knownFiles, type CheckpointTree, type PendingMerge } from './checkpoint-tree.ts';
import type { DeviceDefinition } from './vm-definition.ts';

export class CheckpointDiskError extends Error {
  readonly code = 'VMMS_ERR_CHECKPOINT_DISK';
}

/** Refuses disks a checkpoint cannot build on: every writable drive must hold a VHDX (Hyper-V's rule too). */
export function checkCheckpointable(paths: readonly string[]): void {
  for (const p of paths) {
    let format: string;
    try {
      format = formatOf(p);
    } catch (e) {
      throw new CheckpointDiskError(`cannot checkpoint disk ${p}: ${(e as Error).message}`);
    }
    if (format !== 'vhdx') {
      throw new CheckpointDiskError(
        `cannot checkpoint: disk ${p} is a ${format} image; checkpoints need VHDX disks ` +
          `(convert it with \`tsvisor disk convert ${p} <new>.vhdx\` and attach the new file)`,
      );
    }
  }
}

/** Free names for a differencing child of each parent, named after the checkpoint. */
export function childNames(parents: readonly string[], checkpointId: string): string[] {
  const names: string[] = [];
  for (const parent of parents) {
    let child = differencingPath(parent, checkpointId);
    for (let n = 1; existsSync(child) || names.includes(child); n++) child = differencingPath(parent, checkpointId, n);
    names.push(child);
  }
  return names;
}

/** Makes a differencing child of each parent (of a VM that is not running), named after the checkpoint; all or none. */
export function makeChildren(parents: readonly string[], checkpointId: string): string[] {
  const made: string[] = [];
  try {
    for (const [i, child] of childNames(parents, checkpointId).entries()) {
      createVhdx(child, { type: 'differencing', parentPath: parents[i] });
      made.push(child);
    }
  } catch (e) {
    for (const f of made) rmSync(f, { force: true });
    throw e;
  }
  return made;
}

const UNREADABLE = '\u0000unreadable';

/** parentOf, or UNREADABLE for a file that does not open (damaged, its own parent gone). */
function parentOfSafe(path: string): string | null {
  try {
    return parentOf(path);
  } catch {
    return UNREADABLE;
  }
}

/**
 * The parent file of a VHDX (null for a base disk or a file that is not there), read without
 * locks: the file may be attached to the running VM, and only its metadata is read.
 */
export function parentOf(path: string): string | null {
  if (!existsSync(path)) return null;
  const d = openVhdx(path, { readOnly: true, lock: false });
  try {
    return d.parent ? resolve(d.parent.path) : null;
  } finally {
    d.close();
  }
}

export interface CollectResult {
  tree: CheckpointTree;
  /** The VM's drives, with a leaf that was merged into its parent renamed to that parent. */
  devices: DeviceDefinition[];
  /** What was done, one line each (for the log and the caller). */
  done: string[];
  /** Files left for later (a lock held, a merge that failed), each with why. */
  deferred: string[];
  /**
   * Merges the running VM's worker does (the child is in a drive's open chain): into the drive
   * file's parent (live-merge.ts), or deeper in the chain (chain-merge.ts: the file then takes the
   * child's name and identity, `childIdentity`).
   */
  live: LiveMerge[];
}

export interface LiveMerge {
  file: string;
  child: string;
  /** The child's DataWriteGuid (hex) when files build on it, as in PendingMerge. */
  childIdentity: string | null;
  /** The files that build on the child, re-pointed at `file` (an operator's disk), as in PendingMerge. */
  repoint?: string[];
}

/**
 * Collects `tree.retainedFiles` (the files no checkpoint and no drive references): each is
 * deleted, merged, or kept as its children require, until nothing more changes. Only files this
 * service created are deleted or merged away; an operator's file stays. A file in use (locked by
 * the running VM) stays in the list for a later collection.
 */
export function collectFiles(
  tree: CheckpointTree,
  devices: readonly DeviceDefinition[],
  save: (t: CheckpointTree) => void = () => {},
  /** The running VM's writable drive files (resolved): a merge in one's chain is left to the worker. */
  runningLeaves: ReadonlySet<string> = new Set(),
): CollectResult {
  let t: CheckpointTree = structuredClone(tree);
  let devs = structuredClone(devices) as DeviceDefinition[];
  const done: string[] = [];
  const deferred: string[] = [];
  const live: LiveMerge[] = [];
  const created = (f: string) => t.createdFiles.includes(f);
  const forget = (f: string) => {
    t.retainedFiles = t.retainedFiles.filter((x) => x !== f);
    t.createdFiles = t.createdFiles.filter((x) => x !== f);
  };
  const settled = new Set<string>();
  /** The merge's last steps: `f` stands for the child — by its name and identity, or in every reference. */
  const finish = (m: PendingMerge) => {
    if (m.repoint) {
      // The identity the grandchildren already name if a run stopped part way, else a new one.
      const identity = repointedIdentity(m) ?? randomGuid();
      repointPastChild(m.file, m.child, m.repoint, identity);
      t = renameInTree(t, m.child, m.file);
      devs = renameDevices(devs, m.child, m.file);
      t.retainedFiles = t.retainedFiles.filter((x) => x !== m.file);
      t.createdFiles = t.createdFiles.filter((x) => x !== m.child);
      done.push(`merged ${m.child} into ${m.file}, and pointed ${m.repoint.join(', ')} at it`);
    } else if (m.childIdentity) {
      const merged = openVhdx(m.file);
      try {
        setIdentity(merged, merged.layout.meta.diskId, Buffer.from(m.childIdentity, 'hex'));
      } finally {
        merged.close();
      }
      renameSync(m.file, m.child);
      forget(m.file);
      done.push(`merged ${m.child} into ${m.file}, which took its name`);
    } else {
      t = renameInTree(t, m.child, m.file);
      devs = renameDevices(devs, m.child, m.file);
      t.retainedFiles = t.retainedFiles.filter((x) => x !== m.file);
      t.createdFiles = t.createdFiles.filter((x) => x !== m.child);
      done.push(`merged ${m.child} into ${m.file}`);
    }
    t.pendingMerges = (t.pendingMerges ?? []).filter((x) => x !== m);
  };
  // Merges a crash interrupted: finished where the child is gone (its data is in the file);
  // dropped where the child still opens against the file (the merge had not begun); otherwise
  // both files are kept, untouched, for the operator.
  for (const m of [...(t.pendingMerges ?? [])]) {
    if (m.repoint) {
      // Re-pointing begins only once the file holds all the child's data: a grandchild that
      // names the file, or the child gone, means what is left is to finish.
      if (existsSync(m.file) && (!existsSync(m.child) || repointedIdentity(m) !== null)) {
        try {
          finish(m);
          if (!m.live) done.push(`(finished a merge a crash had interrupted)`);
        } catch (e) {
          settled.add(m.file);
          deferred.push(`${m.file}: finishing the interrupted merge of ${m.child} into it failed (${(e as Error).message})`);
        }
      } else if (existsSync(m.child) && parentOfSafe(m.child) === resolve(m.file)) {
        t.pendingMerges = t.pendingMerges!.filter((x) => x !== m);
      } else {
        settled.add(m.file);
        deferred.push(`${m.file}: a merge of ${m.child} into it was interrupted part way; both files are kept as they are`);
      }
      continue;
    }
    if (!existsSync(m.child) && existsSync(m.file)) {
      finish(m);
      if (!m.live) done.push(`(finished a merge a crash had interrupted)`);
    } else if (existsSync(m.child) && !existsSync(m.file)) {
      t.pendingMerges = t.pendingMerges!.filter((x) => x !== m);
      forget(m.file);
    } else if (existsSync(m.child) && parentOfSafe(m.child) === resolve(m.file)) {
      t.pendingMerges = t.pendingMerges!.filter((x) => x !== m);
    } else if (m.childIdentity && existsSync(m.file) && hasIdentity(m.file, m.childIdentity)) {
      // The file takes the child's identity only once it holds all the child's data (a crash
      // came before the rename): the rename is what is left.
      try {
        finish(m);
        done.push(`(finished a merge a crash had interrupted)`);
      } catch (e) {
        settled.add(m.file);
        deferred.push(`${m.file}: finishing the interrupted merge of ${m.child} into it failed (${(e as Error).message})`);
      }
    } else {
      settled.add(m.file);
      deferred.push(`${m.file}: a merge of ${m.child} into it was interrupted part way; both files are kept as they are`);
    }
  }
  for (let changed = true; changed; ) {
    changed = false;
    const files = knownFiles(t, devs);
    const parents = new Map(files.map((f) => [f, parentOfSafe(f)]));
    // A file whose parent cannot be read might build on any other: nothing is deleted or merged.
    const unreadable = files.filter((f) => parents.get(f) === UNREADABLE);
    if (unreadable.length) {
      deferred.push(...t.retainedFiles.map((f) => `${f}: not collected while ${unreadable.join(', ')} cannot be read`));
      break;
    }
    for (const f of t.retainedFiles) {
      if (settled.has(f)) continue;
      const children = files.filter((c) => parents.get(c) === resolve(f));
      const fate = fateOf(children);
      try {
        if (fate.kind === 'keep') continue;
        if (fate.kind === 'delete') {
          if (created(f)) {
            rmSync(f, { force: true });
            done.push(`deleted ${f}`);
          } else done.push(`left ${f} (not made by a checkpoint)`);
          forget(f);
          changed = true;
          break;
        }
        const child = fate.child;
        const below = files.filter((c) => parents.get(c) === resolve(child));
        const grandchildren = below.length > 0;
        if (!created(child)) {
          settled.add(f);
          continue;
        }
        if (grandchildren && !created(f)) {
          // An operator's disk keeps its name: the child's data goes into it, and the files
          // that built on the child are pointed at it (Hyper-V's merge into the base disk).
          if (inRunningChain(child, parents, runningLeaves)) {
            live.push({ file: f, child, childIdentity: null, repoint: below });
            settled.add(f);
            continue;
          }
          const m: PendingMerge = { file: f, child, childIdentity: null, repoint: below };
          t.pendingMerges = [...(t.pendingMerges ?? []), m];
          save(t);
          try {
            copyIntoParent(child);
          } catch (e) {
            // The file keeps its identity while it is copied into: the child opens as before.
            t.pendingMerges = t.pendingMerges.filter((x) => x !== m);
            throw e;
          }
          finish(m);
          save(t);
          changed = true;
          break;
        }
        // Files that build on the child link to its DataWriteGuid (read before the merge deletes
        // the child): `f` takes it and the child's name; else whatever named the child names `f`.
        const childIdentity = grandchildren ? Buffer.from(dataWriteGuidOf(child)).toString('hex') : null;
        if (!grandchildren ? runningLeaves.has(resolve(child)) : inRunningChain(child, parents, runningLeaves)) {
          live.push({ file: f, child, childIdentity });
          settled.add(f);
          continue;
        }
        const m: PendingMerge = { file: f, child, childIdentity };
        t.pendingMerges = [...(t.pendingMerges ?? []), m];
        save(t);
        // The child's own data goes into `f` (Merge-VHD), and the child is deleted.
        try {
          mergeVhdx(child);
        } catch (e) {
          // Refused before it wrote (a lock held by the running VM): nothing to finish.
          if (parentOfSafe(child) === resolve(f)) t.pendingMerges = t.pendingMerges.filter((x) => x !== m);
          throw e;
        }
        finish(m);
        // A merge that moved drives is recorded done only after the caller writes the definition.
        if (m.childIdentity) save(t);
        changed = true;
        break;
      } catch (e) {
        settled.add(f);
        deferred.push(`${f}: ${(e as Error).message}`);
      }
    }
  }
  return { tree: t, devices: devs, done, deferred, live };
}

/** True when `file` is below one of the running drive files in its chain (their worker holds it open). */
function inRunningChain(file: string, parents: ReadonlyMap<string, string | null>, leaves: ReadonlySet<string>): boolean {
  const parentOf = new Map([...parents].map(([f, p]) => [resolve(f), p]));
  for (const leaf of leaves) {
    let at = parentOf.get(leaf);
    for (let steps = 0; at && steps <= parentOf.size; steps++) {
      if (at === resolve(file)) return true;
      at = parentOf.get(at);
    }
  }
  return false;
}

/** The DataWriteGuid the files being pointed at `m.file` name, once one of them does (null before). */
function repointedIdentity(m: PendingMerge): Guid | null {
  for (const g of m.repoint ?? []) {
    try {
      if (existsSync(g) && namesParent(g, m.file)) return linkageOf(readLocator(g)!);
    } catch {
      /* unreadable: another grandchild may tell */
    }
  }
  return null;
}

/** True when the file's DataWriteGuid is `hex` (false when it cannot be read). */
function hasIdentity(path: string, hex: string): boolean {
  try {
    return Buffer.from(dataWriteGuidOf(path)).toString('hex') === hex;
  } catch {
    return false;
  }
}

function dataWriteGuidOf(path: string): Guid {
  const d = openVhdx(path, { readOnly: true, lock: false });
  try {
    return Uint8Array.from(d.file.header.dataWriteGuid) as Guid;
  } finally {
    d.close();
  }
}

function renameInTree(t: CheckpointTree, from: string, to: string): CheckpointTree {
  return {
    ...t,
    checkpoints: t.checkpoints.map((c) => ({ ...c, settings: { ...c.settings, devices: renameDevices(c.settings.devices, from, to) } })),
    retainedFiles: t.retainedFiles.map((f) => (f === from ? to : f)),
  };
}

/** The devices with every drive that named `from` naming `to`. */
export function renameDevices(devices: readonly DeviceDefinition[], from: string, to: string): DeviceDefinition[] {
  const copy = structuredClone(devices) as DeviceDefinition[];
  for (const d of copy) {
    if (d.kind === 'ide-disk' && d.path === from) d.path = to;
    if (d.kind === 'scsi-controller' && Array.isArray(d.disks)) for (const disk of d.disks as { path?: string }[]) if (disk.path === from) disk.path = to;
  }
  return copy;
}
