/**
 * A storage move's destination side, in the arriving VM's worker: the new images (made empty by
 * this host's VMMS, storage-move-destination.ts, in the directory the move named, and already in
 * the VM's definition: `<dir>/<the source file's name>`) are opened — locked, through the storage roots' checks — when HELLO
 * describes the drives, written block by block as DISK_BLOCKS frames come, flushed and closed
 * when the stream's state is complete, so the device thread opens them as the VM's drives before
 * the destination reports READY. Only files of this VM's own definition are ever written; a
 * drive whose size differs from the source's is refused.
 */
import { resolve } from 'node:path';
import { StorageRoots } from '../host/storage-roots.ts';
import type { BlockBackend } from '../storage/block-backend.ts';
import { openDisk } from '../storage/open-disk.ts';
import type { VmDeviceConfig } from '../vmwp/device-config.ts';
import { MigrationProtocolError, DISK_BLOCK_BYTES } from './migration-wire.ts';
import { movedDiskPath, movedDisks } from './storage-move-destination.ts';

/** The disk files a device configuration names (the only files a move may write). */
export function configuredDiskPaths(devices: VmDeviceConfig | undefined): Set<string> {
  const paths = new Set<string>();
  for (const d of devices?.ide ?? []) if (d?.path) paths.add(resolve(d.path));
  for (const c of devices?.scsi ?? []) for (const d of c.disks) if (d.path) paths.add(resolve(d.path));
  return paths;
}

export class DiskCopyTarget {
  private images: BlockBackend[] = [];
  /** Each drive's size in bytes, in the stream's order. */
  diskBytes: number[] = [];
  bytesWritten = 0;

  constructor(
    private readonly devices: VmDeviceConfig | undefined,
    private readonly storageRoots: readonly string[] | undefined,
  ) {}

  /** Opens the drives HELLO describes; refuses anything but this VM's own, same-sized files. */
  open(storage: unknown): void {
    const s = movedDisks(storage);
    const allowed = configuredDiskPaths(this.devices);
    const roots = this.storageRoots ? StorageRoots.of(this.storageRoots) : null;
    try {
      for (const [i, d] of s.disks.entries()) {
        const target = movedDiskPath(s.dir, d.path);
        if (!allowed.has(resolve(target))) throw new MigrationProtocolError(`drive ${i}'s copy ${target} is not one of this VM's drives here`);
        roots?.check(target, 'disk image');
        const image = openDisk(target, {
          readOnly: false,
          ...(roots ? { checkOpened: (fd, p) => roots.checkOpened(fd, p, 'disk image'), checkPath: (p) => roots.check(p, 'disk image') } : {}),
        });
        this.images.push(image);
        if (image.sectorSize !== d.sectorSize || image.sectorCount !== d.sectorCount) {
          throw new MigrationProtocolError(
            `${target} holds ${image.sectorCount} sectors of ${image.sectorSize} bytes; the source's drive ${i} has ${String(d.sectorCount)} of ${String(d.sectorSize)}`,
          );
        }
        this.diskBytes.push(image.sectorCount * image.sectorSize);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** One block (checked against the drive by the frame's decoder). */
  write(disk: number, block: number, bytes: Uint8Array): void {
    const image = this.images[disk];
    image.write((block * DISK_BLOCK_BYTES) / image.sectorSize, bytes);
    this.bytesWritten += bytes.length;
  }

  /** The copies are complete: durable, then closed (their locks go to the device thread). */
  finish(): void {
    try {
      for (const image of this.images) image.flush();
    } finally {
      this.close();
    }
  }

  close(): void {
    for (const image of this.images.splice(0)) {
      try {
        image.close();
      } catch {
        /* closing what failed; the reason is already on its way */
      }
    }
  }
}
