/**
 * Merging a drive's differencing disk into its parent while the drive is in use (vmwp/live-merge.ts),
 * on real VHDX files: writes arrive between every step of the merge, to sectors already copied
 * and not yet copied, and a whole-block UNMAP; afterwards the drive is on the parent, the child is gone, every sector
 * reads what was last written, and qemu-img finds the parent clean and reads the same bytes.
 * A merge that fails part way leaves the drive on the child, and the child still opens against
 * its parent after the drive is closed (the parent kept its DataWriteGuid), with the same data;
 * a file that is not the parent, or a drive that is not differencing, is refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import { SwitchableDisk, type ImageOpener } from '../../root-partition/vmwp/disk-switch.ts';
import { prng } from '../helpers/prng.ts';
import { mergeLive } from '../../root-partition/vmwp/live-merge.ts';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const qemuImg = spawnSync('qemu-img', ['--version']).status === 0;
let dir: string;
// tmpfs where there is one: the merge's fsyncs are not what is tested, and the suite's time is shared.
beforeEach(() => {
  dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsv-live-merge-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const open: ImageOpener = (p, readOnly) => openDisk(p, { readOnly });

/** base.vhdx with data in some blocks, child.avhdx over it with data in others (whole and partial blocks). */
function chain(model: Buffer): { base: string; child: string } {
  const base = join(dir, 'base.vhdx');
  const child = join(dir, 'child.avhdx');
  newDisk(base, { kind: 'dynamic', sizeBytes: SIZE, blockSizeBytes: MiB });
  const write = (path: string, at: number, length: number, seed: number) => {
    const bytes = Buffer.alloc(length);
    const r = prng(seed);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(r() * 256);
    const d = openDisk(path);
    d.write(at / 512, bytes);
    d.close();
    bytes.copy(model, at);
  };
  write(base, 0, 2 * MiB, 1);
  write(base, 5 * MiB + 4096, 64 * 1024, 2);
  newDisk(child, { kind: 'differencing', parentPath: base, blockSizeBytes: MiB });
  write(child, MiB + 512, 7 * 512, 3); // partial, over the parent's data
  write(child, 3 * MiB, 2 * MiB, 4); // whole blocks
  write(child, 5 * MiB, 8192, 5); // beside the parent's run in one block
  write(child, 7 * MiB + 512 * 100, 512, 6);
  return { base, child };
}

function readAll(d: { read(lba: number, dst: Uint8Array): void }): Buffer {
  const b = Buffer.alloc(SIZE);
  d.read(0, b);
  return b;
}

describe("merging a drive's differencing disk while it is in use", () => {
  it('copies between writes; every sector reads the last write, on the parent, which qemu-img finds clean', async () => {
    const model = Buffer.alloc(SIZE);
    const { base, child } = chain(model);
    const disk = new SwitchableDisk(open(child, false), child);
    expect(readAll(disk).equals(model)).toBe(true);
    const r = prng(7);
    let turns = 0;
    let writes = 0;
    const progress: number[] = [];
    // Between every step: writes through the drive, anywhere (copied already or not yet).
    const yieldTurn = async () => {
      turns++;
      // A TRIM of a whole block the merge has copied already (the parent must get its zeros
      // from the mirror): it reads zero, in the child now and in the parent after.
      if (turns === 7) {
        expect(progress.at(-1)).toBeGreaterThan(2 * MiB);
        expect(disk.unmap(2048, 2048)).toEqual([[2048, 2048]]);
        model.fill(0, MiB, 2 * MiB);
      }
      for (let i = 0; i < 2; i++) {
        const sectors = 1 + Math.floor(r() * 24);
        const lba = Math.floor(r() * (SIZE / 512 - sectors));
        const bytes = Buffer.alloc(sectors * 512, (turns * 31 + i) & 0xff || 1);
        disk.write(lba, bytes);
        bytes.copy(model, lba * 512);
        writes++;
      }
      await new Promise<void>((res) => setImmediate(res));
    };
    const result = await mergeLive(disk, openVhdx(base, { lock: false }), open, { yieldTurn, progress: (d) => progress.push(d), piece: 256 * 1024 });
    expect(turns).toBeGreaterThanOrEqual(8);
    expect(progress.at(-1)).toBe(SIZE);
    expect(result.copiedBytes).toBeGreaterThan(2 * MiB);
    expect(result.leftover).toBeNull();
    console.log(
      `live merge: ${result.copiedBytes} bytes copied in ${turns} turns with ${writes} writes between them; the drive's I/O stood still ${result.switchMs.toFixed(2)} ms for the switch`,
    );
    expect(disk.path).toBe(base);
    expect(existsSync(child)).toBe(false);
    expect(readAll(disk).equals(model)).toBe(true);
    // The drive writes on, on the parent.
    disk.write(3, Buffer.alloc(512, 0xee));
    Buffer.alloc(512, 0xee).copy(model, 3 * 512);
    disk.close();
    const reopened = openDisk(base, { readOnly: true });
    expect(readAll(reopened).equals(model)).toBe(true);
    reopened.close();
    if (qemuImg) {
      execFileSync('qemu-img', ['check', base]);
      execFileSync('qemu-img', ['convert', '-O', 'raw', base, join(dir, 'base.raw')]);
      expect(readFileSync(join(dir, 'base.raw')).equals(model)).toBe(true);
    }
  });

  it('a failure part way leaves the drive on the child, which still opens against its parent with the same data', async () => {
    const model = Buffer.alloc(SIZE);
    const { base, child } = chain(model);
    const other = join(dir, 'other.vhdx');
    newDisk(other, { kind: 'dynamic', sizeBytes: SIZE });
    const onBase = new SwitchableDisk(open(base, true), base);
    await expect(mergeLive(onBase, openVhdx(other, { lock: false }), open)).rejects.toThrow(/is not a differencing disk/);
    onBase.close();
    const disk = new SwitchableDisk(open(child, false), child);
    await expect(mergeLive(disk, openVhdx(other, { lock: false }), open)).rejects.toThrow(/is not the parent of/);
    const target = openVhdx(base, { lock: false });
    const write = target.write.bind(target);
    let left = 3;
    target.write = (lba, src) => {
      if (left-- === 0) throw new Error('injected write failure');
      write(lba, src);
    };
    const yieldTurn = async () => {
      disk.write(8, Buffer.alloc(1024, 0x5a));
      Buffer.alloc(1024, 0x5a).copy(model, 8 * 512);
      await new Promise<void>((res) => setImmediate(res));
    };
    await expect(mergeLive(disk, target, open, { yieldTurn })).rejects.toThrow('injected write failure');
    expect(disk.path).toBe(child);
    expect(disk.onWrite).toBeNull();
    expect(readAll(disk).equals(model)).toBe(true);
    disk.write(20, Buffer.alloc(512, 0x77));
    Buffer.alloc(512, 0x77).copy(model, 20 * 512);
    disk.close();
    // The parent took some of the child's sectors, yet the child still links to it.
    const again = openDisk(child, { readOnly: true });
    expect(readAll(again).equals(model)).toBe(true);
    again.close();
    if (qemuImg) execFileSync('qemu-img', ['check', base]);
    // And the same merge, done offline now, completes.
    const d2 = new SwitchableDisk(open(child, false), child);
    await mergeLive(d2, openVhdx(base, { lock: false }), open);
    expect(readAll(d2).equals(model)).toBe(true);
    d2.close();
  });
});
