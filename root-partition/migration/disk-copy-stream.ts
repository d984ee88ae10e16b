/**
 * A storage move's source side in the migration stream: each pre-copy round sends, after the
 * memory, every drive's blocks written since the last round (the first round: all of them but
 * those that read zero), read on the device thread through the drive (vmwp/disk-copy-source.ts);
 * the paused round sends what the guest wrote last. The source's own files are only read: they
 * stay as they were, and after a failure the VM runs on from them.
 */
import type { DeviceReplies, DeviceRequest } from '../vmwp/device-requests.ts';
import { MAX_TAKE_BYTES, type MovedDiskInfo } from '../vmwp/disk-copy-source.ts';
import type { MigrationChannel } from './migration-channel.ts';
import { DISK_BLOCK_BYTES, encodeDiskBlocks, MAX_MOVED_DISKS } from './migration-wire.ts';

type StorageOp = 'move-storage-begin' | 'move-storage-take' | 'move-storage-end';

export interface StorageMoveVm {
  storageMoveRequest<K extends StorageOp>(request: Extract<DeviceRequest, { op: K }>): Promise<DeviceReplies[K]>;
}

/** What HELLO says of a storage move: the destination directory and the drives, in order. */
export interface StorageMoveHello {
  dir: string;
  disks: MovedDiskInfo[];
}

export class DiskCopyStream {
  /** Blocks sent per round (pre-copy rounds, then the paused one). */
  readonly blocksPerRound: number[] = [];
  bytesSent = 0;
  private rounds = 0;
  private dirtyLeft: number[];

  private constructor(
    private readonly vm: StorageMoveVm,
    readonly hello: StorageMoveHello,
  ) {
    this.dirtyLeft = hello.disks.map((d) => blockCount(d));
  }

  /** Starts tracking the drives' writes (refused for a differencing drive: the reason says why). */
  static async begin(vm: StorageMoveVm, dir: string): Promise<DiskCopyStream> {
    const { disks } = await vm.storageMoveRequest({ op: 'move-storage-begin' });
    if (disks.length > MAX_MOVED_DISKS) {
      await vm.storageMoveRequest({ op: 'move-storage-end' }).catch(() => {});
      throw new Error(`the VM has ${disks.length} drives; a storage move carries at most ${MAX_MOVED_DISKS}`);
    }
    return new DiskCopyStream(vm, { dir, disks });
  }

  /** Total bytes of the drives (what the first round reads). */
  get diskBytes(): number {
    return this.hello.disks.reduce((n, d) => n + d.sectorCount * d.sectorSize, 0);
  }

  /** Bytes the next round would send at most (dirty blocks as of the last take). */
  get dirtyBytes(): number {
    return this.dirtyLeft.reduce((n, b) => n + b, 0) * DISK_BLOCK_BYTES;
  }

  /**
   * Sends every drive's dirty blocks; `step` runs between takes (a cancel check, progress with the
   * bytes read so far). Returns the blocks sent.
   */
  async round(channel: MigrationChannel, step?: (bytesRead: number) => void): Promise<number> {
    const first = this.rounds++ === 0;
    let sent = 0;
    let read = 0;
    for (const [i, d] of this.hello.disks.entries()) {
      const end = blockCount(d);
      for (let from = 0; from < end; ) {
        step?.(read);
        const t = await this.vm.storageMoveRequest({ op: 'move-storage-take', disk: i, from, maxBytes: MAX_TAKE_BYTES, skipZero: first });
        read += (Math.min(t.next, end) - from) * DISK_BLOCK_BYTES;
        if (t.blocks.length) {
          await channel.send(encodeDiskBlocks(i, t.blocks, t.data));
          this.bytesSent += t.data.length;
          sent += t.blocks.length;
        }
        if (t.next <= from) throw new Error(`the drive ${d.path} made no progress at block ${from}`);
        from = t.next;
        this.dirtyLeft[i] = t.dirtyLeft;
      }
    }
    this.blocksPerRound.push(sent);
    return sent;
  }

  /** Stops the tracking (best effort: a stopped device thread has none left). */
  async end(): Promise<void> {
    await this.vm.storageMoveRequest({ op: 'move-storage-end' }).catch(() => {});
  }
}

function blockCount(d: MovedDiskInfo): number {
  return Math.ceil((d.sectorCount * d.sectorSize) / DISK_BLOCK_BYTES);
}
