/**
 * Merging a differencing file deeper in a running drive's chain into its parent, without
 * stopping the VM: removing a checkpoint whose file is not the drive's own (Hyper-V merges such
 * an AVHDX while the VM runs on). The chain is leaf → … → G → F → P, F the file to merge away
 * and P its parent, both read-only to the VM.
 *
 * F is never written while the VM runs (only the leaf is), so its content is fixed: the merge
 * copies F's own sectors into P (opened read-write by this worker, unlocked: the chain holds P
 * shared) with turns of guest I/O between pieces, and needs no mirror. Readers are not disturbed:
 * every sector written into P is one F holds itself, which the chain reads from F, never from P;
 * P's other sectors, and its in-memory BAT in the chain, are untouched (new blocks go at the end
 * of the file). P keeps its DataWriteGuid meanwhile, so a crash or a failure during the copy
 * leaves F opening against P with the same data.
 *
 * Then, in one turn: P is flushed, takes F's DataWriteGuid (both header slots) and F's name
 * (rename over F, atomic), so G's parent locator — F's relative path and F's DataWriteGuid —
 * names P from then on, and G needs no change; the drive reopens its chain from the files
 * (leaf … G → P → …), which also drops F's deleted inode. A crash between the identity and the
 * rename leaves P holding F's DataWriteGuid with F still there: the checkpoint tree's record of
 * the merge (checkpoint-files.ts) then finishes the rename, since P took the identity only once
 * it held all of F's data.
 */
import { renameSync } from 'node:fs';
import { resolve } from 'node:path';
import { VhdxDisk } from '../storage/vhdx/vhdx-disk.ts';
import { randomGuid } from '../storage/vhdx/vhdx-guid.ts';
import { rewriteLocator, rewriteLocatorIn } from '../storage/vhdx/vhdx-relink.ts';
import { lockedLocatorWriter, repointPastChild, type LocatorWriter } from '../storage/vhdx/vhdx-repoint.ts';
import type { ImageOpener, SwitchableDisk } from './disk-switch.ts';
import { copyOwnDataBetweenTurns, LiveMergeError, type LiveMergeOptions, type LiveMergeResult } from './live-merge.ts';

/** The file at `path` in the drive's chain below its own image (null when the chain has none). */
export function ancestorIn(disk: SwitchableDisk, path: string): VhdxDisk | null {
  const leaf = disk.image;
  if (!(leaf instanceof VhdxDisk)) return null;
  for (let d = leaf.parent; d; d = d.parent) if (resolve(d.path) === resolve(path)) return d;
  return null;
}

/**
 * Merges `childPath`, a file below the drive's own in its chain, into `target`, that file's
 * parent opened read-write without a lock. On success `target`'s file has the child's name and
 * identity, the drive's chain is reopened on it, and `target` is closed; on failure the chain is
 * as it was (the copy may have put some of the child's own sectors into the parent, which no
 * reader takes from there) and `target` is closed.
 */
export async function mergeInChainLive(
  disk: SwitchableDisk,
  childPath: string,
  target: VhdxDisk,
  open: ImageOpener,
  o: LiveMergeOptions = {},
): Promise<LiveMergeResult> {
  try {
    const child = childInChain(disk, childPath, target);
    const copied = await copyBetweenTurns(child, target, o);
    // The switch, in this one turn: nothing the guest sends is served until it is done.
    const t0 = performance.now();
    target.flush();
    const identity = Uint8Array.from(child.file.header.dataWriteGuid);
    target.file.updateHeader({ dataWriteGuid: identity });
    target.file.updateHeader({ dataWriteGuid: identity });
    o.beforeRename?.();
    renameSync(target.path, childPath);
    // From here the merge has happened on disk; the drive reads the chain as the files have it.
    disk.switchTo(disk.path, open);
    return { copiedBytes: copied, switchMs: performance.now() - t0, leftover: null };
  } finally {
    target.close();
  }
}

/**
 * Merges `childPath`, a file below the drive's own in its chain, into `target`, its parent — a
 * disk the operator attached, which keeps its name — and points `repoint`, the files that build
 * on the child, at `target` (storage/vhdx/vhdx-repoint.ts has the order and why each step leaves
 * a chain that opens with the same data). The copy is as in `mergeInChainLive`: the child is
 * read-only to the VM, the parent receives only sectors the child holds, and the parent keeps its
 * DataWriteGuid meanwhile. Then, in one turn: the parent is flushed, each file is re-pointed (the
 * drive's own leaf through its open file, files of its chain unlocked as this process holds them,
 * others locked), the parent takes a new DataWriteGuid, the child is deleted and the drive
 * reopens its chain from the files. On failure before the re-pointing the chain is as it was; a
 * failure during it leaves the drive on its open files and the files on disk opening as before
 * (the checkpoint tree's record finishes it later); `target` is closed either way.
 */
export async function mergeIntoBaseLive(
  disk: SwitchableDisk,
  childPath: string,
  target: VhdxDisk,
  repoint: readonly string[],
  open: ImageOpener,
  o: LiveMergeOptions = {},
): Promise<LiveMergeResult> {
  try {
    const child = childInChain(disk, childPath, target);
    const copied = await copyBetweenTurns(child, target, o);
    // The switch, in this one turn: nothing the guest sends is served until it is done.
    const t0 = performance.now();
    target.flush();
    o.beforeRepoint?.();
    const chain = new Map<string, VhdxDisk>();
    for (let d = disk.image instanceof VhdxDisk ? disk.image : null; d; d = d.parent) chain.set(resolve(d.path), d);
    const writeLocator: LocatorWriter = (path, edit) => {
      const held = chain.get(resolve(path));
      if (!held) lockedLocatorWriter(path, edit);
      else if (!held.readOnly) rewriteLocatorIn(held.file, edit);
      else rewriteLocator(path, false, edit);
    };
    repointPastChild(target.path, childPath, repoint, randomGuid(), { writeLocator, base: target.file });
    // From here the merge has happened on disk; the drive reads the chain as the files have it.
    disk.switchTo(disk.path, open);
    return { copiedBytes: copied, switchMs: performance.now() - t0, leftover: null };
  } finally {
    target.close();
  }
}

/** The VHDX of `childPath` in the drive's chain, checked to be below the drive's own file with `target` as its parent. */
function childInChain(disk: SwitchableDisk, childPath: string, target: VhdxDisk): VhdxDisk {
  const child = ancestorIn(disk, childPath);
  if (!child) throw new LiveMergeError('VMWP_ERR_MERGE_NOT_IN_CHAIN', `${childPath} is not below ${disk.path} in its differencing chain`);
  if (!child.parent || resolve(child.parent.path) !== resolve(target.path)) {
    throw new LiveMergeError('VMWP_ERR_MERGE_NOT_PARENT', `${target.path} is not the parent of ${childPath} (its parent is ${child.parent?.path ?? 'none'})`);
  }
  if (disk.onWrite) throw new LiveMergeError('VMWP_ERR_MERGE_BUSY', `a merge on ${disk.path} is already under way`);
  return child;
}

/** Copies the child's own sectors into `target`, which keeps its DataWriteGuid, between turns of guest I/O; the bytes copied. */
async function copyBetweenTurns(child: VhdxDisk, target: VhdxDisk, o: LiveMergeOptions): Promise<number> {
  target.file.beginSession({ keepDataWriteGuid: true });
  return copyOwnDataBetweenTurns(child, target, o);
}
