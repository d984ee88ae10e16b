/**
 * The source side of a storage move (shared-nothing live migration), on the device thread: each
 * drive gets a dirty-block map (disk-dirty-map.ts) that its writes mark, and `take` reads the
 * next dirty blocks of one drive through the drive itself — the virtual disk the guest sees, raw
 * or VHDX alike — clearing their bits in the same turn. The migration (migration/disk-copy-stream.ts)
 * calls it round after round while the VM runs, then once more with the VPs parked.
 *
 * A drive is copied as its virtual disk, not as its file: the destination writes the blocks into a
 * new image of the same format and size, so nothing of the source file's layout (a VHDX's log,
 * BAT, freed blocks) has to be tracked or sent. A differencing drive (a VM with checkpoints) is
 * refused: its chain would have to move with it, and copying only the merged view would orphan
 * the checkpoints.
 */
import { VhdxDisk } from '../storage/vhdx/vhdx-disk.ts';
import { DeviceRequestError } from './device-requests.ts';
import { DirtyBlockMap, DIRTY_BLOCK_BYTES } from './disk-dirty-map.ts';
import type { SwitchableDisk } from './disk-switch.ts';

/** What the destination needs to make a drive's new image. */
export interface MovedDiskInfo {
  /** The drive's file on the source (its name is kept on the destination). */
  path: string;
  format: 'raw' | 'vhdx';
  sectorSize: number;
  sectorCount: number;
  readOnly: boolean;
  /** A VHDX's Virtual Disk ID (32 hex digits), kept by the copy: the guest sees the same disk serial. */
  virtualDiskId: string | null;
}

export interface DiskBlocksTaken {
  /** Block numbers (DIRTY_BLOCK_BYTES each, the last one maybe shorter), in order. */
  blocks: number[];
  /** Their bytes, one after the other. */
  data: Uint8Array;
  /** Where the next take of this round starts (≥ the block count: the round is through this drive). */
  next: number;
  /** Dirty blocks of this drive left after this take (those behind `next` are the next round's). */
  dirtyLeft: number;
}

/** The most a take reads (one DISK_BLOCKS frame's worth). */
export const MAX_TAKE_BYTES = 1024 * 1024;

export class DiskCopySource {
  private maps: DirtyBlockMap[] | null = null;
  private disks: readonly SwitchableDisk[] = [];

  get active(): boolean {
    return this.maps !== null;
  }

  /** Starts tracking every drive (all blocks dirty); refuses a differencing drive or a drive being merged. */
  begin(disks: readonly SwitchableDisk[]): MovedDiskInfo[] {
    if (this.maps) throw new DeviceRequestError('VMWP_ERR_MOVE_BUSY', 'a storage move of this VM is already under way');
    const infos = disks.map((d): MovedDiskInfo => {
      const image = d.image;
      if (image instanceof VhdxDisk && image.parent) {
        throw new DeviceRequestError(
          'VMWP_ERR_MOVE_DIFFERENCING',
          `${d.path} is a differencing disk (the VM has checkpoints); a storage move takes only drives that are one file: delete the VM's checkpoints first, which merges them`,
        );
      }
      if (d.onWrite) throw new DeviceRequestError('VMWP_ERR_MOVE_BUSY', `${d.path} is being merged; move the VM's storage once the merge has ended`);
      const id = d.virtualDiskId;
      return {
        path: d.path,
        format: image instanceof VhdxDisk ? 'vhdx' : 'raw',
        sectorSize: d.sectorSize,
        sectorCount: d.sectorCount,
        readOnly: d.readOnly,
        virtualDiskId: id ? Buffer.from(id).toString('hex') : null,
      };
    });
    this.disks = disks;
    this.maps = disks.map((d) => new DirtyBlockMap(d.sectorCount * d.sectorSize, d.sectorSize));
    disks.forEach((d, i) => {
      d.dirtyMap = this.maps![i];
    });
    return infos;
  }

  /**
   * Reads up to `maxBytes` of drive `disk`'s dirty blocks from block `from` on, clearing them.
   * `skipZero` (the first round, when the destination's new image reads zero everywhere) leaves
   * out blocks that read all zero.
   */
  take(disk: number, from: number, maxBytes: number, skipZero: boolean): DiskBlocksTaken {
    const maps = this.maps;
    if (!maps) throw new DeviceRequestError('VMWP_ERR_MOVE_NOT_STARTED', 'no storage move is under way');
    if (!Number.isInteger(disk) || disk < 0 || disk >= maps.length) throw new DeviceRequestError('VMWP_ERR_MOVE_DISK', `the VM has no drive #${disk}`);
    const map = maps[disk];
    const drive = this.disks[disk];
    const limit = Math.max(DIRTY_BLOCK_BYTES, Math.min(maxBytes, MAX_TAKE_BYTES));
    const out = new Uint8Array(limit);
    const blocks: number[] = [];
    let used = 0;
    let at = Math.max(0, Math.floor(from));
    for (;;) {
      const b = map.nextDirty(at);
      if (b < 0) {
        at = map.blockCount;
        break;
      }
      const bytes = map.blockBytes(b);
      if (used + bytes > limit) {
        at = b;
        break;
      }
      const view = out.subarray(used, used + bytes);
      drive.read((b * DIRTY_BLOCK_BYTES) / map.sectorSize, view);
      map.clear(b);
      at = b + 1;
      if (skipZero && isZero(view)) continue;
      blocks.push(b);
      used += bytes;
    }
    return { blocks, data: out.slice(0, used), next: at, dirtyLeft: map.count };
  }

  /** Dirty blocks left per drive. */
  dirtyCounts(): number[] {
    return (this.maps ?? []).map((m) => m.count);
  }

  /** Stops tracking (the move ended either way). */
  end(): void {
    for (const d of this.disks) d.dirtyMap = null;
    this.maps = null;
    this.disks = [];
  }
}

function isZero(b: Uint8Array): boolean {
  const words = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  for (let i = words.length << 2; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
