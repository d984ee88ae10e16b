/**
 * A guest's TRIM through the child SDK's storvsc (StorvscDisk.unmap, `trim` in ref-enlightened's
 * shell) against the real storvsp and a dynamic VHDX: the driver finds the disk thin (READ
 * CAPACITY(16) LBPME, VPD 0xB0 limits), sends SCSI UNMAP with its parameter list, and the whole
 * blocks inside the range become UNMAPPED in the file's BAT and read zero — for the guest, for
 * tsvisor and for qemu-img; a block only partly inside keeps its data; a raw disk, which takes no
 * UNMAP, is refused by the driver before anything is sent.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { PayloadState } from '../../root-partition/storage/vhdx/vhdx-bat.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import { ShellRig } from '../guests/shell-rig.ts';

const MiB = 1024 * 1024;
const qemuImg = spawnSync('qemu-img', ['--version']).status === 0;
let rig: ShellRig | undefined;
let dir: string | undefined;
afterEach(async () => {
  await rig?.dispose();
  rig = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("TRIM from the guest's storvsc", () => {
  it('unmaps whole blocks of a dynamic VHDX: UNMAPPED in the BAT, zeros for every reader; partial blocks and other data stay', {
    timeout: 60_000,
  }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsv-trim-'));
    const vhdx = join(dir, 'thin.vhdx');
    const raw = join(dir, 'plain.raw');
    newDisk(vhdx, { kind: 'dynamic', sizeBytes: 8 * MiB, blockSizeBytes: MiB });
    newDisk(raw, { kind: 'raw', sizeBytes: MiB });
    const model = Buffer.alloc(8 * MiB);
    for (let b = 0; b < 6; b++) model.fill(0x41 + b, b * MiB, (b + 1) * MiB);
    const d = openDisk(vhdx, { lock: false });
    d.write(0, model.subarray(0, 6 * MiB));
    d.close();

    rig = await ShellRig.boot({ image: 'ref-enlightened', scsi: [vhdx, raw] });
    await rig.ready();
    expect(await rig.command('read 0 2048')).toContain('|BBBBBBBBBBBBBBBB|');
    // Blocks 1 and 2 whole, and part of block 4 (sectors 8192 + 256 … + 1255).
    expect(await rig.command('trim 0 2048 4096')).toBe('disk 0 lba 2048: unmapped 4096 sectors\n');
    expect(await rig.command('trim 0 8448 1000')).toBe('disk 0 lba 8448: unmapped 1000 sectors\n');
    model.fill(0, MiB, 3 * MiB);
    expect(await rig.command('read 0 2048')).toContain('00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n');
    expect(await rig.command('read 0 6143')).toContain('|................|');
    expect(await rig.command('read 0 6144')).toContain('|DDDDDDDDDDDDDDDD|');
    expect(await rig.command('read 0 8448')).toContain('|EEEEEEEEEEEEEEEE|');
    expect(await rig.command('trim 1 0 8')).toBe('error: disk 1 takes no UNMAP (it is not thin-provisioned)\n');
    expect(await rig.command('trim 0 16383 2')).toBe('error: trim failed: out of range\n');
    expect(await rig.command('trim 0 0')).toBe('error: usage: trim <disk> <lba> <count>\n');
    expect(await rig.command('counters')).toMatch(/storvsc: submitted=(\d+) completed=\1 /);
    await rig.dispose();
    rig = undefined;

    const v = openVhdx(vhdx, { readOnly: true, lock: false });
    const states = Array.from({ length: 8 }, (_, b) => v.blockEntry(b).state);
    const all = Buffer.alloc(8 * MiB);
    v.read(0, all);
    v.close();
    const { FullyPresent: F, Unmapped: U, NotPresent: N } = PayloadState;
    expect(states).toEqual([F, U, U, F, F, F, N, N]);
    expect(all.equals(model)).toBe(true);
    if (qemuImg) {
      execFileSync('qemu-img', ['check', vhdx]);
      const out = join(dir, 'thin.raw');
      execFileSync('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', vhdx, out]);
      expect(readFileSync(out).equals(model)).toBe(true);
    }
    expect(existsSync(raw)).toBe(true);
  });
});
