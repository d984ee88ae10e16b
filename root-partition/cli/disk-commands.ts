/**
 * `tsvisor disk new|info|convert|resize|merge|compact`: disk images offline, as Hyper-V's New-VHD,
 * Get-VHD, Convert-VHD, Resize-VHD, Merge-VHD and Optimize-VHD. They work on files directly (no
 * service needed) and take the images' locks, so an image attached to a running VM is refused.
 * Long work shows a progress bar on a terminal and stops cleanly on Ctrl-C (disk-job.ts); --json
 * prints the result for scripts.
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { DiskJobCancelled, runCancellable, type DiskSteps } from '../storage/disk-job.ts';
import { compactSteps, convertSteps, diskInfo, mergeSteps, newDisk, resizeDisk, type DiskInfo, type DiskKind, type Progress } from '../storage/disk-tools.ts';
import { parseSize } from './management-session.ts';
import { printJson } from './table.ts';

const GiB = 1024 ** 3;

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

function printInfo(i: DiskInfo): void {
  const rows: [string, string][] = [
    ['Path', i.path],
    ['Format', i.format.toUpperCase()],
    ['Type', i.type[0]!.toUpperCase() + i.type.slice(1)],
    ['Size', `${human(i.sizeBytes)} (${i.sizeBytes} bytes)`],
    ['FileSize', `${human(i.fileSizeBytes)} (${human(i.allocatedBytes)} allocated on the host)`],
  ];
  if (i.blockSizeBytes !== null) rows.push(['BlockSize', human(i.blockSizeBytes)], ['Blocks', `${i.allocatedBlocks} of ${i.blocks} in this file`]);
  rows.push(['LogicalSectorSize', String(i.logicalSectorSize)], ['PhysicalSectorSize', String(i.physicalSectorSize)]);
  if (i.diskIdentifier) rows.push(['DiskIdentifier', i.diskIdentifier]);
  if (i.identifier) rows.push(['Identifier', i.identifier]);
  if (i.parentPath) rows.push(['ParentPath', i.parentPath], ['ParentIdentifier', i.parentIdentifier ?? '']);
  for (const [k, v] of rows) console.log(`${k.padEnd(20)} ${v}`);
}

/** A progress bar on a terminal for work over a few hundred MiB; nothing otherwise. */
function progressBar(label: string, json: boolean | undefined): { progress?: Progress; stop: () => void } {
  if (json || !process.stderr.isTTY) return { stop: () => {} };
  let bar: SingleBar | null = null;
  return {
    progress: (done, total) => {
      if (!bar) {
        if (total < GiB / 4) return;
        bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} MiB`, hideCursor: true, clearOnComplete: true }, undefined);
        bar.start(Math.ceil(total / 2 ** 20), 0);
      }
      bar.update(Math.floor(done / 2 ** 20));
    },
    stop: () => bar?.stop(),
  };
}

function act<T extends unknown[]>(fn: (...a: T) => void): (...a: T) => void {
  return (...a: T) => {
    try {
      fn(...a);
    } catch (e) {
      const code = (e as { code?: string }).code;
      console.error(`tsvisor: ${code ? `${code}: ` : ''}${(e as Error).message}`);
      process.exitCode = 1;
    }
  };
}

/**
 * Runs long work a step per turn; the first Ctrl-C (SIGINT) stops it at its next safe point,
 * where it undoes what it made (exit status 130, as a shell reports an interrupted command); a
 * second one ends the process at once.
 */
async function interruptible<T>(steps: DiskSteps<T>, what: string): Promise<T> {
  const stop = new AbortController();
  const onInterrupt = () => {
    stop.abort();
    process.stderr.write(`\ntsvisor: stopping ${what} at the next safe point (Ctrl-C again to stop at once)\n`);
  };
  process.once('SIGINT', onInterrupt);
  try {
    return await runCancellable(steps, stop.signal, what);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

function actAsync<T extends unknown[]>(fn: (...a: T) => Promise<void>): (...a: T) => Promise<void> {
  return async (...a: T) => {
    try {
      await fn(...a);
    } catch (e) {
      const code = (e as { code?: string }).code;
      console.error(`tsvisor: ${code ? `${code}: ` : ''}${(e as Error).message}`);
      process.exitCode = e instanceof DiskJobCancelled ? 130 : 1;
    }
  };
}

function output(info: DiskInfo, json?: boolean): void {
  if (json) printJson(info);
  else printInfo(info);
}

export function registerDiskCommands(program: Command): void {
  const disk = program.command('disk').description("disk images: VHDX (fixed, dynamic, differencing) and raw, as Hyper-V's *-VHD cmdlets");

  disk
    .command('new <path>')
    .description('create a disk image (New-VHD); .vhdx/.avhdx names make VHDX, other names raw')
    .option('--size <bytes>', 'virtual size, e.g. 64M, 20G (not for differencing disks)')
    .option('--fixed', 'every block allocated up front (VHDX: LeaveBlockAllocated)')
    .option('--dynamic', 'blocks allocated as they are written (the default for VHDX)')
    .option('--differencing', 'a child of --parent: reads fall through to the parent until written')
    .option('--parent <path>', 'the parent of a differencing disk (its current identifier is linked)')
    .option('--block-size <bytes>', 'VHDX block size, a power of two from 1M to 256M (default 8M up to 1 GiB, 16M up to 100 GiB, else 32M)')
    .option('--physical-sector-size <bytes>', 'VHDX physical sector size reported to the guest: 512 or 4096', '4096')
    .option('--json', 'machine-readable output')
    .action(
      act(
        (
          path: string,
          o: {
            size?: string;
            fixed?: boolean;
            dynamic?: boolean;
            differencing?: boolean;
            parent?: string;
            blockSize?: string;
            physicalSectorSize: string;
            json?: boolean;
          },
        ) => {
          const kinds = [o.fixed && 'fixed', o.dynamic && 'dynamic', (o.differencing || o.parent) && 'differencing'].filter(Boolean) as DiskKind[];
          if (kinds.length > 1) throw new Error('choose one of --fixed, --dynamic, --differencing');
          const vhdx = /\.a?vhdx$/i.test(path);
          const kind = kinds[0] ?? (vhdx ? 'dynamic' : 'raw');
          if (kind === 'differencing' && !o.parent) throw new Error('a differencing disk needs --parent');
          if (kind !== 'differencing' && !o.size) throw new Error('--size is required');
          const pss = Number(o.physicalSectorSize);
          if (pss !== 512 && pss !== 4096) throw new Error('--physical-sector-size must be 512 or 4096');
          output(
            newDisk(path, {
              kind: !vhdx && kind === 'fixed' ? 'raw' : kind,
              sizeBytes: o.size ? parseSize(o.size) : undefined,
              blockSizeBytes: o.blockSize ? parseSize(o.blockSize) : undefined,
              parentPath: o.parent,
              physicalSectorSize: pss,
            }),
            o.json,
          );
        },
      ),
    );

  disk
    .command('info <path>')
    .description('describe a disk image (Get-VHD): format, type, sizes, identifiers, parent')
    .option('--json', 'machine-readable output')
    .action(act((path: string, o: { json?: boolean }) => output(diskInfo(path), o.json)));

  disk
    .command('convert <source> <destination>')
    .description('copy a disk into a new image (Convert-VHD): raw ↔ VHDX, fixed ↔ dynamic; a differencing chain is flattened')
    .option('--fixed', 'destination VHDX fixed')
    .option('--dynamic', 'destination VHDX dynamic (the default for a .vhdx name)')
    .option('--block-size <bytes>', 'destination VHDX block size')
    .option('--json', 'machine-readable output')
    .action(
      actAsync(async (src: string, dst: string, o: { fixed?: boolean; dynamic?: boolean; blockSize?: string; json?: boolean }) => {
        const bar = progressBar('convert', o.json);
        try {
          const steps = convertSteps(src, dst, {
            kind: o.fixed ? 'fixed' : o.dynamic ? 'dynamic' : undefined,
            blockSizeBytes: o.blockSize ? parseSize(o.blockSize) : undefined,
            progress: bar.progress,
          });
          output(await interruptible(steps, 'the conversion'), o.json);
        } finally {
          bar.stop();
        }
      }),
    );

  disk
    .command('resize <path>')
    .description('grow a disk image (Resize-VHD -SizeBytes); shrinking is refused')
    .requiredOption('--size <bytes>', 'the new virtual size')
    .option('--json', 'machine-readable output')
    .action(act((path: string, o: { size: string; json?: boolean }) => output(resizeDisk(path, parseSize(o.size)), o.json)));

  disk
    .command('merge <child>')
    .description('merge a differencing disk into its parent and delete it (Merge-VHD)')
    .option('--json', 'machine-readable output (the parent after the merge)')
    .action(
      actAsync(async (child: string, o: { json?: boolean }) => {
        const bar = progressBar('merge', o.json);
        try {
          output(await interruptible(mergeSteps(child, bar.progress), 'the merge'), o.json);
        } finally {
          bar.stop();
        }
      }),
    );

  disk
    .command('compact <path>')
    .description('return the space of zeroed data of a dynamic VHDX to the host (Optimize-VHD)')
    .option('--json', 'machine-readable output')
    .action(
      actAsync(async (path: string, o: { json?: boolean }) => {
        const bar = progressBar('compact', o.json);
        try {
          const { before, after } = await interruptible(compactSteps(path, bar.progress), 'compacting');
          if (o.json) printJson({ before, after });
          else {
            printInfo(after);
            console.log(`${'Compacted'.padEnd(20)} ${human(before.fileSizeBytes)} → ${human(after.fileSizeBytes)}`);
          }
        } finally {
          bar.stop();
        }
      }),
    );
}
