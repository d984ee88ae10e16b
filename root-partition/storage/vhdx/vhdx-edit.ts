/**
 * Changes to a VHDX beyond guest writes (Resize-VHD, Merge-VHD, and the identity a compacted
 * copy keeps). Each metadata change goes through the log, like the BAT updates of a write.
 */
import * as fs from 'node:fs';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { lockDescriptor } from '../file-lock.ts';
import { RawDiskError } from '../raw-disk.ts';
import { BatGeometry, encodeEntry, PayloadState } from './vhdx-bat.ts';
import type { VhdxDisk } from './vhdx-disk.ts';
import { MAX_VIRTUAL_SIZE, MetadataFlag, MetadataGuid, MiB, putU64, VhdxCorruptError, VhdxError } from './vhdx-format.ts';
import { vhdxFaultPoint } from './vhdx-fault-point.ts';
import { guidEquals, type Guid } from './vhdx-guid.ts';
import type { LogSector } from './vhdx-log.ts';
import { openVhdx } from './vhdx-open.ts';
import { setParentLinkage } from './vhdx-relink.ts';
import { DiskJobCancelled, runSteps, STEP_BYTES, type DiskSteps } from '../disk-job.ts';

/** Progress callback: bytes done of bytes in all. */
export type EditProgress = (done: number, total: number) => void;

/** The 4 KiB sectors covering [at, at + bytes.length), with `bytes` written into them. */
function patchedSectors(disk: VhdxDisk, at: number, bytes: Uint8Array, into = new Map<number, Uint8Array>()): Map<number, Uint8Array> {
  for (let s = at - (at % 4096); s < at + bytes.length; s += 4096) if (!into.has(s)) into.set(s, disk.file.readMeta(s, 4096));
  for (let i = 0; i < bytes.length; i++) {
    const off = at + i;
    into.get(off - (off % 4096))![off % 4096] = bytes[i]!;
  }
  return into;
}

function itemOffset(disk: VhdxDisk, id: Guid, length: number): number {
  const e = disk.layout.meta.entries.find((t) => guidEquals(t.itemId, id) && (t.flags & MetadataFlag.IsUser) === 0);
  if (!e || e.length < length) throw new VhdxCorruptError(disk.path, 'a system metadata item is missing');
  return disk.layout.metadataRegion.fileOffset + e.offset;
}

const toLog = (m: Map<number, Uint8Array>): LogSector[] => [...m].map(([fileOffset, data]) => ({ fileOffset, data }));

/** Gives a copy the Virtual Disk ID and DataWriteGuid of the disk it copies (same content, same identity). */
export function setIdentity(disk: VhdxDisk, diskId: Guid, dataWriteGuid: Guid): void {
  disk.file.beginSession();
  disk.file.transaction(toLog(patchedSectors(disk, itemOffset(disk, MetadataGuid.VirtualDiskId, 16), diskId)));
  disk.file.updateHeader({ dataWriteGuid });
  disk.file.updateHeader({ dataWriteGuid });
}

/**
 * Resize-VHD, growing only: the Virtual Disk Size item and, for a fixed disk, the new blocks
 * (allocated and FULLY_PRESENT) in one log transaction. The BAT stays where it is, so the new
 * size must fit its region (files tsvisor makes leave room for the differencing count).
 * Shrinking would drop data and is refused; a differencing disk keeps its parent's size.
 */
export function resizeVhdx(path: string, newSize: number): void {
  const disk = openVhdx(path);
  try {
    const m = disk.layout.meta;
    if (m.hasParent) throw new HvError(RawDiskError.BadSize, `${path} is a differencing disk: it has its parent's size`);
    if (!Number.isSafeInteger(newSize) || newSize % m.logicalSectorSize !== 0 || newSize > MAX_VIRTUAL_SIZE) {
      throw new HvError(RawDiskError.BadSize, `size ${newSize} is not a multiple of ${m.logicalSectorSize} up to 64 TiB`);
    }
    if (newSize < m.virtualSize) throw new HvError(RawDiskError.BadSize, `${path} is ${m.virtualSize} bytes; shrinking is not supported (it would drop data)`);
    if (newSize === m.virtualSize) return;
    const g = new BatGeometry(newSize, m.blockSize, m.logicalSectorSize);
    const region = disk.layout.batRegion;
    if (g.dynamicEntries * 8 > region.length) {
      throw new HvError(
        RawDiskError.BadSize,
        `${path}: its BAT region (${region.length} bytes) cannot describe ${newSize} bytes; convert it to a new file of that size instead`,
      );
    }
    disk.file.beginSession();
    const sectors = new Map<number, Uint8Array>();
    const size = new Uint8Array(8);
    putU64(size, 0, newSize);
    patchedSectors(disk, itemOffset(disk, MetadataGuid.VirtualDiskSize, 8), size, sectors);
    if (disk.type === 'fixed') {
      let at = disk.layout.allocationEnd;
      for (let b = disk.layout.geometry.payloadBlocks; b < g.payloadBlocks; b++) {
        patchedSectors(disk, region.fileOffset + g.payloadIndex(b) * 8, encodeEntry(PayloadState.FullyPresent, at), sectors);
        at += m.blockSize;
      }
      disk.file.extendTo(at);
      disk.file.sync();
    }
    disk.file.transaction(toLog(sectors));
  } finally {
    disk.close();
  }
}

/**
 * Merge-VHD: the child's own data written into its parent, then the child deleted
 * ([MS-VHDX] 2.6.1.2; block states per 2.5.1.1). The parent is opened read-write
 * (exclusive) and the child is locked exclusively for the whole merge. The parent's
 * DataWriteGuid changes with its first write, so other children of that parent, and children of
 * the merged child, no longer open (they are refused with the linkage error).
 */
export function mergeVhdx(childPath: string, progress?: EditProgress): { parentPath: string } {
  return runSteps(mergeVhdxSteps(childPath, progress));
}

/** The parent file of the differencing disk at `childPath`; refused when it has none. */
function differencingParentPath(childPath: string): string {
  const probe = openVhdx(childPath, { readOnly: true });
  const parentPath = probe.parent ? probe.parent.path : null;
  probe.close();
  if (!parentPath) throw new HvError(VhdxError.Parent, `${childPath} is not a differencing disk`);
  return parentPath;
}

/**
 * mergeVhdx as safe points (disk-job.ts). A merge that stops before its end — cancelled, or a
 * failure — keeps the child and links it to the parent's new DataWriteGuid: the parent then holds
 * only sectors the child overrides, so the child reads as before.
 */
export function* mergeVhdxSteps(childPath: string, progress?: EditProgress): DiskSteps<{ parentPath: string }> {
  const parentPath = differencingParentPath(childPath);
  const childLock = fs.openSync(childPath, 'r');
  try {
    lockDescriptor(childLock, childPath, 'exclusive', 'disk image');
    const parent = openVhdx(parentPath);
    const identity = Uint8Array.from(parent.file.header.dataWriteGuid) as Guid;
    // The child read without locks: its own lock is held above, the parent's by `parent`.
    const child = openVhdx(childPath, { readOnly: true, lock: false });
    try {
      let looked = 0;
      for (const run of ownDataRuns(child)) {
        parent.write(run.lba, run.bytes);
        progress?.(run.done, run.total);
        if (run.done - looked >= STEP_BYTES) {
          looked = run.done;
          yield;
        }
      }
      parent.flush();
    } catch (e) {
      child.close();
      const now = Uint8Array.from(parent.file.header.dataWriteGuid) as Guid;
      parent.close();
      if (!guidEquals(now, identity)) {
        try {
          setParentLinkage(childPath, now, { lock: false });
        } catch (relink) {
          throw new HvError(
            VhdxError.Parent,
            `${(e as Error).message}; and ${childPath} could not be linked to its parent's new identity (${(relink as Error).message}): merge it again to finish`,
          );
        }
      }
      if (e instanceof DiskJobCancelled)
        throw new DiskJobCancelled(`the merge of ${childPath} was cancelled: ${childPath} is kept and reads as before; ${parentPath} holds part of its data`);
      throw e;
    }
    child.close();
    parent.close();
    fs.rmSync(childPath);
  } finally {
    fs.closeSync(childLock);
  }
  return { parentPath };
}

/**
 * The copy of a merge into a parent that keeps its name (vhdx-repoint.ts, step 1): the child's
 * own data written into its parent, which keeps its DataWriteGuid — it gains only sectors the
 * child overrides, so the child still opens against it and reads as before, whenever this stops —
 * then flushed. The child stays; both files are locked exclusively meanwhile.
 */
export function copyIntoParent(childPath: string): { parentPath: string } {
  const parentPath = differencingParentPath(childPath);
  const childLock = fs.openSync(childPath, 'r');
  try {
    lockDescriptor(childLock, childPath, 'exclusive', 'disk image');
    const parent = openVhdx(parentPath);
    const child = openVhdx(childPath, { readOnly: true, lock: false });
    try {
      parent.file.beginSession({ keepDataWriteGuid: true });
      let first = true;
      for (const run of ownDataRuns(child)) {
        if (!run.bytes.length) continue;
        parent.write(run.lba, run.bytes);
        if (first) vhdxFaultPoint('merge:copied-partly');
        first = false;
      }
      parent.flush();
      vhdxFaultPoint('merge:copied');
    } finally {
      child.close();
      parent.close();
    }
  } finally {
    fs.closeSync(childLock);
  }
  return { parentPath };
}

/** One run of sectors a differencing disk holds itself, read as the generator resumes. */
export interface OwnDataRun {
  /** First 512-byte sector. */
  lba: number;
  /** The data (a view of the generator's buffer: use it before the next step). */
  bytes: Uint8Array;
  /** Virtual bytes looked at so far, of `total`. */
  done: number;
  total: number;
}

/**
 * The sectors `child` holds itself — present or zeroed — in runs of at most `chunk` bytes.
 * Each block's state is read afresh at every piece, so a caller that lets writes in between the
 * steps (a live merge) copies what the child holds at that moment; a block with nothing of the
 * child's yields a zero-length run, so that progress and turns keep coming.
 */
export function* ownDataRuns(child: VhdxDisk, chunk = 8 * MiB): Generator<OwnDataRun> {
  const bs = child.blockSize;
  const size = child.virtualSize;
  const blocks = child.layout.geometry.payloadBlocks;
  const buf = new Uint8Array(Math.min(bs, chunk));
  for (let b = 0; b < blocks; b++) {
    const start = b * bs;
    const end = Math.min(size, start + bs);
    for (let at = start; at < end; at += buf.length) {
      const { state } = child.blockEntry(b);
      const piece = buf.subarray(0, Math.min(buf.length, end - at));
      const done = at + piece.length;
      if (state === PayloadState.NotPresent) {
        yield { lba: at / 512, bytes: piece.subarray(0, 0), done, total: size };
      } else if (state === PayloadState.PartiallyPresent) {
        const bits = child.bitmapBits(b, at, piece.length);
        child.readAt(at, piece);
        let any = false;
        for (let s = 0; s < bits.length; ) {
          let e = s;
          while (e < bits.length && bits[e] === bits[s]) e++;
          if (bits[s]) {
            any = true;
            yield { lba: at / 512 + s, bytes: piece.subarray(s * 512, e * 512), done, total: size };
          }
          s = e;
        }
        if (!any) yield { lba: at / 512, bytes: piece.subarray(0, 0), done, total: size };
      } else {
        child.readAt(at, piece); // FULLY_PRESENT data, or the zeros of ZERO/UNMAPPED/UNDEFINED
        yield { lba: at / 512, bytes: piece, done, total: size };
      }
    }
  }
}
