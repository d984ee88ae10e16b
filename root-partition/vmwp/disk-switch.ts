/**
 * Moving a running VM's drive to another image while its VPs are parked (a checkpoint puts each
 * drive on a differencing child of its file). The device models hold a SwitchableDisk, which
 * forwards to the image open now; a switch flushes and closes that image — its exclusive lock
 * must go before the child can open it as a shared parent — then opens the new one, and opens
 * the old one again should the new one fail.
 *
 * A new file is made here, after the old one is closed, not by VMMS beforehand: a child links to
 * its parent's DataWriteGuid, which the VM's first write of a session changes; closed, the
 * parent's identity is final.
 */
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { BlockBackend, BlockIoDone } from '../storage/block-backend.ts';
import { DiskIoError } from '../storage/disk-io-error.ts';
import { RawDisk, type SharedRawDescriptor } from '../storage/raw-disk.ts';
import { createVhdx } from '../storage/vhdx/vhdx-create.ts';
import { VhdxCorruptError } from '../storage/vhdx/vhdx-format.ts';
import { VhdxDisk } from '../storage/vhdx/vhdx-disk.ts';
import type { DiskConfig, VmDeviceConfig } from './device-config.ts';
import type { DirtyBlockMap } from './disk-dirty-map.ts';

export interface DiskSwitch {
  from: string;
  to: string;
}

export type ImageOpener = (path: string, readOnly: boolean) => BlockBackend;

export class SwitchableDisk implements BlockBackend {
  /** I/O time of the images this drive has left (a switch closes them). */
  private ioUsBefore = 0;
  /** Sees every write after the image took it (a live merge mirrors them into the parent). */
  onWrite: ((lba: number, src: Uint8Array) => void) | null = null;
  /** Marks the blocks each write or unmap touches while a storage move copies the drive (disk-copy-source.ts). */
  dirtyMap: DirtyBlockMap | null = null;

  /** The drive's first failure (an I/O error of its file, or a damaged VHDX): it stays the drive's until the VM stops. */
  failure: Error | null = null;

  /** Queued requests not yet completed (a switch waits for none: the caller drains first). */
  private queued = 0;

  /** `onFailure` hears the drive's first failure (each later one reaches the guest and the log, not this). */
  constructor(
    private inner: BlockBackend,
    public path: string,
    private readonly onFailure?: (e: Error) => void,
  ) {}

  get sectorSize(): number {
    return this.inner.sectorSize;
  }
  get sectorCount(): number {
    return this.inner.sectorCount;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  /** The drive's I/O time across switches (storvsp's stage split reads it); absent when its images do not count it. */
  get ioUs(): number | undefined {
    const now = this.inner.ioUs;
    return now === undefined && this.ioUsBefore === 0 ? undefined : this.ioUsBefore + (now ?? 0);
  }
  read(lba: number, dst: Uint8Array): void {
    try {
      this.inner.read(lba, dst);
    } catch (e) {
      throw this.failed(e);
    }
  }
  write(lba: number, src: Uint8Array): void {
    // Marked first: a write that fails half-way may still have changed the image.
    this.dirtyMap?.markSectors(lba, Math.ceil(src.length / this.sectorSize));
    try {
      this.inner.write(lba, src);
    } catch (e) {
      throw this.failed(e);
    }
    this.onWrite?.(lba, src);
  }
  flush(): void {
    try {
      this.inner.flush();
    } catch (e) {
      throw this.failed(e);
    }
  }
  /**
   * Queued I/O while no live merge mirrors the drive's writes (a merge's mirror runs inline with
   * each write, and its switch needs the drive still); the image decides the rest (a raw file can).
   */
  get canQueue(): boolean {
    return this.onWrite === null && this.inner.canQueue === true;
  }
  get inFlight(): number {
    return this.queued;
  }
  readAsync(lba: number, dst: Uint8Array, done: BlockIoDone): void {
    this.queue((inner, finish) => inner.readAsync!(lba, dst, finish), done);
  }
  writeAsync(lba: number, src: Uint8Array, done: BlockIoDone, fua = false): void {
    // Marked when started, as a synchronous write: a storage move copies the block again.
    this.dirtyMap?.markSectors(lba, Math.ceil(src.length / this.sectorSize));
    this.queue(
      (inner, finish) => inner.writeAsync!(lba, src, finish, fua),
      (err) => {
        if (err === null) this.onWrite?.(lba, src);
        done(err);
      },
    );
  }
  flushAsync(done: BlockIoDone): void {
    this.queue((inner, finish) => inner.flushAsync!(finish), done);
  }
  private queue(start: (inner: BlockBackend, finish: BlockIoDone) => void, done: BlockIoDone): void {
    if (this.inner.canQueue !== true) throw new Error(`${this.path}: the image takes no queued I/O`);
    start(this.inner, (err) => {
      this.queued--;
      done(err === null ? null : this.failed(err));
    });
    this.queued++;
  }
  get unmapGranularity(): number | undefined {
    return this.inner.unmap ? this.inner.unmapGranularity : undefined;
  }
  unmap(lba: number, sectors: number): [number, number][] {
    let runs: [number, number][];
    this.dirtyMap?.markSectors(lba, sectors);
    try {
      runs = this.inner.unmap?.(lba, sectors) ?? [];
    } catch (e) {
      throw this.failed(e);
    }
    // What was released reads zero now: a mirror (a live merge) gets those zeros written.
    if (this.onWrite) {
      const zeros = new Uint8Array(1024 * 1024);
      for (const [at, n] of runs) {
        for (let s = 0; s < n; s += zeros.length / 512) this.onWrite?.(at + s, zeros.subarray(0, Math.min(zeros.length, (n - s) * 512)));
      }
    }
    return runs;
  }

  /** A failure of the medium (not a request the device refused) makes the drive, and so the VM, unhealthy. */
  private failed(e: unknown): unknown {
    if (this.failure === null && (e instanceof DiskIoError || e instanceof VhdxCorruptError)) {
      this.failure = e;
      this.onFailure?.(e);
    }
    return e;
  }
  close(): void {
    this.inner.close();
  }

  /**
   * The raw image's descriptor for a storvsp queue thread, or null when writes must stay on this
   * thread: a storage move marks them, a live merge mirrors them, a failed drive keeps its failure,
   * and only a raw image can be shared (a VHDX's metadata lives in this thread's objects).
   */
  get sharedDescriptor(): SharedRawDescriptor | null {
    if (this.dirtyMap !== null || this.onWrite !== null || this.failure !== null || !(this.inner instanceof RawDisk)) return null;
    return this.inner.sharedDescriptor;
  }

  /** A queue thread's request failed on this drive's image: the drive takes the failure as its own (and a flush's stays sticky). */
  adoptFailure(e: DiskIoError): void {
    if (this.inner instanceof RawDisk) this.inner.adoptFailure(e);
    this.failed(e);
  }

  /** The image open now (a live merge reads its chain). */
  get image(): BlockBackend {
    return this.inner;
  }

  /** A VHDX's Virtual Disk ID (a differencing child has its parent's), null for a raw image. */
  get virtualDiskId(): Uint8Array | null {
    return this.inner instanceof VhdxDisk ? Uint8Array.from(this.inner.layout.meta.diskId) : null;
  }

  /** Moves to the image at `path` (same size); on failure it is back on its own image and throws. */
  switchTo(path: string, open: ImageOpener, prepare?: () => void): void {
    if (this.queued > 0) throw new Error(`${this.path}: ${this.queued} requests still in flight; the drive is switched once they completed`);
    const readOnly = this.inner.readOnly;
    this.inner.flush();
    this.ioUsBefore += this.inner.ioUs ?? 0;
    this.inner.close();
    let next: BlockBackend;
    try {
      prepare?.();
      next = open(path, readOnly);
    } catch (e) {
      this.inner = open(this.path, readOnly);
      throw e;
    }
    if (next.sectorCount !== this.inner.sectorCount || next.sectorSize !== this.inner.sectorSize) {
      next.close();
      this.inner = open(this.path, readOnly);
      throw new Error(`${path} is not the size of ${this.path}`);
    }
    this.inner = next;
    this.path = path;
  }
}

/**
 * Switches each drive named by `switches`, making `to` as a differencing child of `from` when it
 * does not exist yet (all or none: a failure moves the switched ones back and deletes what it made).
 */
export function switchDisks(disks: readonly SwitchableDisk[], switches: readonly DiskSwitch[], open: ImageOpener): void {
  const done: { disk: SwitchableDisk; from: string }[] = [];
  const made: string[] = [];
  try {
    for (const s of switches) {
      const disk = disks.find((d) => resolve(d.path) === resolve(s.from) && !d.readOnly);
      if (!disk) throw new Error(`no writable drive of this VM uses ${s.from}`);
      const create = existsSync(s.to)
        ? undefined
        : () => {
            createVhdx(s.to, { type: 'differencing', parentPath: s.from });
            made.push(s.to);
          };
      disk.switchTo(s.to, open, create);
      done.push({ disk, from: s.from });
    }
  } catch (e) {
    for (const { disk, from } of done.reverse()) disk.switchTo(from, open);
    for (const f of made) rmSync(f, { force: true });
    throw e;
  }
}

/**
 * The 16 bytes a SCSI disk reports as its serial number and WWN: the configured id, else a VHDX's
 * Virtual Disk ID — which a checkpoint's differencing children and merges keep, so the guest sees
 * the same disk across checkpoints, applies and restarts, as Hyper-V reports it — else (a raw
 * image) a hash of the path.
 */
export function scsiDiskId(d: DiskConfig, disk: SwitchableDisk): Uint8Array {
  if (d.diskId && /^[0-9a-f]{32}$/i.test(d.diskId)) return Buffer.from(d.diskId, 'hex');
  return disk.virtualDiskId ?? createHash('sha256').update(d.path).digest().subarray(0, 16);
}

/** The device configuration with the switched drives on their new files (a reset in this worker opens those). */
export function switchedDeviceConfig(config: VmDeviceConfig, switches: readonly DiskSwitch[]): VmDeviceConfig {
  const move = (d: DiskConfig | null): DiskConfig | null => {
    if (!d || d.readOnly) return d;
    const s = switches.find((w) => resolve(w.from) === resolve(d.path));
    return s ? { ...d, path: s.to } : d;
  };
  return {
    ...config,
    ...(config.ide ? { ide: config.ide.map(move) } : {}),
    ...(config.scsi ? { scsi: config.scsi.map((c) => ({ ...c, disks: c.disks.map((d) => move(d)!) })) } : {}),
  };
}
