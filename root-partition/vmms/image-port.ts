/**
 * The image service's port over the host's disk tools (storage/disk-tools.ts): what
 * Msvm_ImageManagementService creates, describes, merges and resizes. Every path — and a
 * differencing disk's parent — must lie in a storage root; the tools take the images' locks, so
 * a file a VM holds is refused with the holder named, never changed under it.
 */
import { realpathSync } from 'node:fs';
import { HvError } from '../../hypervisor/hv-error.ts';
import type { ImageJobResult, ImagePort, ImageProgress, NewImageRequest, PortResult } from '../management/provider/vmms-port.ts';
import { DiskJobCancelled, runCancellable, type DiskSteps } from '../storage/disk-job.ts';
import { compactSteps, convertSteps, diskInfo, mergeSteps, newDisk, resizeDisk, type DiskInfo } from '../storage/disk-tools.ts';
import { FileLockError, lockHolders } from '../storage/file-lock.ts';
import { RawDiskError } from '../storage/raw-disk.ts';
import { StorageRootError, type StorageRoots } from '../host/storage-roots.ts';

const Code = { Failed: 32768, AccessDenied: 32769, NotSupported: 32770, InvalidParameter: 32773, InUse: 32774 } as const;

/** The Hyper-V code for a failure of the tools. */
function codeOf(e: unknown): number {
  if (e instanceof StorageRootError) return Code.AccessDenied;
  if (!(e instanceof HvError)) return Code.Failed;
  if (e.code === FileLockError.Busy) return Code.InUse;
  if (([RawDiskError.BadSize, RawDiskError.Exists, RawDiskError.NotFound, RawDiskError.NotAFile] as string[]).includes(e.code)) return Code.InvalidParameter;
  return Code.Failed;
}

const refusal = (e: unknown): PortResult => ({ returnValue: codeOf(e), error: (e as Error).message });

export function imagePort(roots: StorageRoots | null): ImagePort {
  const check = (path: string, what: string) => {
    if (!path.startsWith('/')) throw new StorageRootError(`${what} ${path} is not an absolute path`);
    roots?.check(path, what);
  };
  // Opened files and their parents are judged where they really lead, as a VM's disks are.
  const confined = roots
    ? {
        checkOpened: (fd: number, p: string) => roots.checkOpened(fd, p, 'disk image'),
        checkPath: (p: string) => {
          roots.check(p, 'parent disk image');
        },
      }
    : {};
  const info = (path: string): DiskInfo => diskInfo(path, { ...confined, lock: false });
  const percent = (progress: ImageProgress) => (done: number, total: number) => progress(total > 0 ? (100 * done) / total : 0);
  /**
   * Runs the tool from the next turn of the loop (the method's answer goes out first), a step per
   * turn (disk-job.ts): other requests are served meanwhile, and an aborted `signal` stops it at
   * its next safe point, where it undoes what it made.
   */
  const later = (signal: AbortSignal | undefined, what: string, steps: () => DiskSteps<unknown>): Promise<ImageJobResult> =>
    new Promise((resolve) => {
      setImmediate(() => {
        runCancellable(steps(), signal, what).then(
          () => resolve({ returnValue: 0 }),
          (e: unknown) => resolve(e instanceof DiskJobCancelled ? { returnValue: Code.Failed, error: e.message, cancelled: true } : refusal(e)),
        );
      });
    });
  /** Work done in one short step: a cancel that comes before it begins leaves nothing made. */
  const oneStep = (work: () => void) =>
    function* (): DiskSteps<void> {
      yield;
      work();
    };

  return {
    describe(path) {
      try {
        check(path, 'disk image');
        const i = info(path);
        return {
          image: {
            path: i.path,
            format: i.format,
            type: i.type,
            sizeBytes: i.sizeBytes,
            fileSizeBytes: i.fileSizeBytes,
            blockSizeBytes: i.blockSizeBytes,
            logicalSectorSize: i.logicalSectorSize,
            physicalSectorSize: i.physicalSectorSize,
            parentPath: i.parentPath,
            parentIdentifier: i.parentIdentifier,
            diskIdentifier: i.diskIdentifier,
            inUse: lockHolders(path).length > 0,
            fragmentationPercent: i.fragmentationPercent,
          },
        };
      } catch (e) {
        return refusal(e);
      }
    },

    create(r: NewImageRequest, progress, signal) {
      try {
        check(r.path, 'disk image');
        if (r.parentPath) check(r.parentPath, 'parent disk image');
      } catch (e) {
        return Promise.resolve(refusal(e));
      }
      if (r.logicalSectorSize !== undefined && r.logicalSectorSize !== 512) {
        return Promise.resolve({
          returnValue: Code.NotSupported,
          error: `LogicalSectorSize ${r.logicalSectorSize} is not supported: this host makes VHDX files with 512-byte logical sectors`,
        });
      }
      if (r.physicalSectorSize !== undefined && r.physicalSectorSize !== 512 && r.physicalSectorSize !== 4096) {
        return Promise.resolve({ returnValue: Code.InvalidParameter, error: `PhysicalSectorSize ${r.physicalSectorSize} is not 512 or 4096` });
      }
      return later(
        signal,
        `creating ${r.path}`,
        oneStep(() => {
          if (r.type === 'differencing' && r.sizeBytes !== undefined) {
            const parentSize = info(r.parentPath!).sizeBytes;
            if (r.sizeBytes !== parentSize)
              throw new HvError(RawDiskError.BadSize, `a differencing disk has its parent's size (${parentSize} bytes), not ${r.sizeBytes}`);
          }
          newDisk(r.path, {
            kind: r.type,
            ...(r.sizeBytes !== undefined && r.type !== 'differencing' ? { sizeBytes: r.sizeBytes } : {}),
            ...(r.blockSizeBytes !== undefined ? { blockSizeBytes: r.blockSizeBytes } : {}),
            ...(r.parentPath ? { parentPath: r.parentPath } : {}),
            ...(r.physicalSectorSize !== undefined ? { physicalSectorSize: r.physicalSectorSize as 512 | 4096 } : {}),
          });
          progress(100);
        }),
      );
    },

    convert(source, r, progress, signal) {
      try {
        check(source, 'disk image');
        check(r.path, 'disk image');
        // The source is opened confined like any image: a chain must not lead out of the roots.
        info(source);
      } catch (e) {
        return Promise.resolve(refusal(e));
      }
      return later(signal, `the conversion of ${source}`, () =>
        convertSteps(source, r.path, {
          kind: r.type,
          ...(r.blockSizeBytes ? { blockSizeBytes: r.blockSizeBytes } : {}),
          progress: percent(progress),
        }),
      );
    },

    compact(path, progress, signal) {
      try {
        check(path, 'disk image');
        info(path);
      } catch (e) {
        return Promise.resolve(refusal(e));
      }
      return later(signal, `compacting ${path}`, () => compactSteps(path, percent(progress)));
    },

    merge(source, destination, progress, signal) {
      try {
        check(source, 'disk image');
        check(destination, 'disk image');
      } catch (e) {
        return Promise.resolve(refusal(e));
      }
      return later(signal, `the merge of ${source}`, function* () {
        const parent = info(source).parentPath;
        if (!parent) throw new HvError(RawDiskError.BadSize, `${source} is not a differencing disk: there is nothing to merge`);
        if (realpathSync(parent) !== realpathSync(destination)) {
          throw new HvError(
            RawDiskError.BadSize,
            `${destination} is not the parent of ${source} (its parent is ${parent}); this host merges a differencing disk into its parent only`,
          );
        }
        yield* mergeSteps(source, percent(progress));
      });
    },

    resize(path, sizeBytes, progress, signal) {
      try {
        check(path, 'disk image');
      } catch (e) {
        return Promise.resolve(refusal(e));
      }
      return later(
        signal,
        `resizing ${path}`,
        oneStep(() => {
          info(path); // confined to the roots, its parents too
          resizeDisk(path, sizeBytes);
          progress(100);
        }),
      );
    },
  };
}
