/**
 * Merging a running drive's differencing disk into its parent without stopping the VM, as
 * Hyper-V merges a removed checkpoint's AVHDX while the VM runs on. The drive keeps serving from
 * the child the whole time; the merge, on the same thread as the devices, copies the child's own
 * sectors into the parent a piece at a time, with a turn of the event loop (guest I/O) between
 * pieces, and mirrors every guest write into the parent once the child has taken it. Each piece
 * is read and written in one turn, so a sector is either copied after the guest's last write to
 * it or written by the mirror: the parent ends up with the child's content. At the end, in one
 * turn (the only pause the guest's I/O sees), the parent is flushed, the drive moves onto it —
 * the already open file, now locked exclusively — and the child is deleted.
 *
 * Until that switch the parent keeps its DataWriteGuid (vhdx-file.ts `beginSession`): it
 * receives only sectors the child holds itself, which the child never reads from it, so a
 * failure or a crash at any point leaves the chain as it was — the child opens against the
 * parent and reads the same data. After the switch the parent gets a new DataWriteGuid: its
 * content changed for anything made from it before.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { lockDescriptor } from '../storage/file-lock.ts';
import { ownDataRuns } from '../storage/vhdx/vhdx-edit.ts';
import { VhdxDisk } from '../storage/vhdx/vhdx-disk.ts';
import { randomGuid } from '../storage/vhdx/vhdx-guid.ts';
import type { ImageOpener, SwitchableDisk } from './disk-switch.ts';

export class LiveMergeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes copied per turn: the longest stretch the guest's I/O waits behind the merge. */
export const LIVE_MERGE_PIECE = 1024 * 1024;

export interface LiveMergeOptions {
  /** Lets the devices serve the guest between pieces (the device thread's event loop). */
  yieldTurn?: () => Promise<void>;
  /** True once the merge must stop (the VM is turning off). */
  cancelled?: () => boolean;
  progress?: (done: number, total: number) => void;
  /** Bytes per turn (default LIVE_MERGE_PIECE). */
  piece?: number;
  /** Runs between a deep merge's identity change and its rename (chain-merge.ts); a throw there stands for a crash at that point. */
  beforeRename?: () => void;
  /** Runs in a merge into the base (chain-merge.ts) once the copy is flushed, before the re-pointing; a throw there stands for a failure at that point. */
  beforeRepoint?: () => void;
}

export interface LiveMergeResult {
  /** Bytes of the child's own data copied (mirrored writes not counted). */
  copiedBytes: number;
  /** How long the drive's I/O stood still for the switch, ms. */
  switchMs: number;
  /** Set when the child file outlived the merge (it could not be deleted), with why. */
  leftover: string | null;
}

/**
 * Merges the child `disk` runs on into `target`, its parent opened read-write without a lock
 * (this process already holds the parent shared through the child's chain). On success the drive
 * is on the parent and the child file is gone; on failure the drive is still on the child and
 * `target` is closed. `open` reopens images as the drive's owner does (for the switch's undo).
 */
export async function mergeLive(disk: SwitchableDisk, target: VhdxDisk, open: ImageOpener, o: LiveMergeOptions = {}): Promise<LiveMergeResult> {
  const childPath = disk.path;
  const child = disk.image;
  let mirrorFailure: unknown = null;
  try {
    if (!(child instanceof VhdxDisk) || !child.parent) throw new LiveMergeError('VMWP_ERR_MERGE_NOT_DIFFERENCING', `${childPath} is not a differencing disk`);
    if (resolve(child.parent.path) !== resolve(target.path)) {
      throw new LiveMergeError('VMWP_ERR_MERGE_NOT_PARENT', `${target.path} is not the parent of ${childPath} (its parent is ${child.parent.path})`);
    }
    if (disk.onWrite) throw new LiveMergeError('VMWP_ERR_MERGE_BUSY', `a merge of ${childPath} is already under way`);
    if (disk.readOnly) throw new LiveMergeError('VMWP_ERR_MERGE_READ_ONLY', `${childPath} is attached read-only`);
    target.file.beginSession({ keepDataWriteGuid: true });
    disk.onWrite = (lba, src) => {
      try {
        target.write(lba, src);
      } catch (e) {
        // The guest's write is in the child, which stays authoritative: only the merge fails.
        mirrorFailure = e;
        disk.onWrite = null;
      }
    };
    const copied = await copyOwnDataBetweenTurns(child, target, o, () => {
      if (mirrorFailure) throw mirrorFailure;
    });
    if (mirrorFailure) throw mirrorFailure;
    // The switch, in this one turn: nothing the guest sends is served until it is done.
    const t0 = performance.now();
    disk.onWrite = null;
    target.flush();
    disk.switchTo(target.path, (path, readOnly) => {
      if (path !== target.path) return open(path, readOnly);
      lockDescriptor(target.file.fd, target.path, 'exclusive', 'disk image');
      return target;
    });
    const switchMs = performance.now() - t0;
    // From here the merge has happened: what fails now is reported, not undone.
    let leftover: string | null = null;
    try {
      rmSync(childPath, { force: true });
    } catch (e) {
      leftover = `${childPath} could not be deleted (${(e as Error).message}); nothing uses it any more`;
    }
    try {
      const dataWriteGuid = randomGuid();
      target.file.updateHeader({ dataWriteGuid });
      target.file.updateHeader({ dataWriteGuid });
    } catch {
      /* the drive's next open renews it with its first write */
    }
    return { copiedBytes: copied, switchMs, leftover };
  } catch (e) {
    disk.onWrite = null;
    if (disk.image !== target) target.close();
    throw e;
  }
}

/**
 * Copies `child`'s own sectors into `target`, a piece per turn of guest I/O so the guest waits at
 * most one piece behind the merge; after each turn `afterTurn` may throw to stop, then a
 * cancellation stops it. Returns the bytes copied.
 */
export async function copyOwnDataBetweenTurns(child: VhdxDisk, target: VhdxDisk, o: LiveMergeOptions, afterTurn?: () => void): Promise<number> {
  const yieldTurn = o.yieldTurn ?? (() => new Promise<void>((r) => setImmediate(r)));
  const piece = o.piece ?? LIVE_MERGE_PIECE;
  let copied = 0;
  let sinceTurn = 0;
  for (const run of ownDataRuns(child, piece)) {
    if (run.bytes.length) target.write(run.lba, run.bytes);
    copied += run.bytes.length;
    sinceTurn += Math.max(run.bytes.length, 4096);
    o.progress?.(run.done, run.total);
    if (sinceTurn < piece) continue;
    sinceTurn = 0;
    await yieldTurn();
    afterTurn?.();
    if (o.cancelled?.()) throw new LiveMergeError('VMWP_ERR_MERGE_CANCELLED', `the merge of ${child.path} stopped: the VM is turning off`);
  }
  return copied;
}
