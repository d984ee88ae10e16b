/**
 * The worker's drive switch (disk-switch.ts) on real files, in this process: a drive moved to a
 * differencing child it makes reads the same and writes the child; a switch that fails leaves the
 * drive on its own file; the SCSI identity of a VHDX drive is its Virtual Disk ID, the same
 * through the child, so the guest sees one disk across a checkpoint.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { scsiDiskId, SwitchableDisk, switchDisks, type ImageOpener } from '../../root-partition/vmwp/disk-switch.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-switch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open: ImageOpener = (path, readOnly) => openDisk(path, { readOnly });
const sector = (byte: number) => new Uint8Array(512).fill(byte);
const read = (d: { read(lba: number, b: Uint8Array): void }, lba: number) => {
  const b = new Uint8Array(512);
  d.read(lba, b);
  return b[0];
};

describe('drive switch', () => {
  it('moves a drive to a child it makes, keeps its identity, and writes only the child', () => {
    const base = join(dir, 'a.vhdx');
    newDisk(base, { kind: 'dynamic', sizeBytes: 2 * 1024 * 1024, blockSizeBytes: 1024 * 1024 });
    const disk = new SwitchableDisk(open(base, false), base);
    disk.write(0, sector(0x11));
    const id = scsiDiskId({ path: base }, disk);
    const child = join(dir, 'a_1.avhdx');
    switchDisks([disk], [{ from: base, to: child }], open);
    expect(disk.path).toBe(child);
    expect(scsiDiskId({ path: child }, disk)).toEqual(id);
    expect(read(disk, 0)).toBe(0x11);
    disk.write(1, sector(0x22));
    disk.close();
    const frozen = openDisk(base, { readOnly: true });
    expect([read(frozen, 0), read(frozen, 1)]).toEqual([0x11, 0]);
    frozen.close();
    // A raw image's identity is its path's hash; a configured one wins.
    const raw = join(dir, 'r.img');
    newDisk(raw, { kind: 'raw', sizeBytes: 1024 * 1024 });
    const r = new SwitchableDisk(open(raw, false), raw);
    expect(Buffer.from(scsiDiskId({ path: raw }, r)).toString('hex')).toHaveLength(32);
    expect(Buffer.from(scsiDiskId({ path: raw, diskId: 'ab'.repeat(16) }, r)).toString('hex')).toBe('ab'.repeat(16));
    // The backend's I/O time shows through the wrapper (storvsp's stage split reads it).
    r.write(0, sector(0x33));
    expect(r.ioUs).toBeGreaterThan(0);
    r.close();
  });

  it('a switch that fails midway moves every drive back and deletes the children it made', () => {
    const a = join(dir, 'x.vhdx');
    const b = join(dir, 'y.vhdx');
    for (const f of [a, b]) newDisk(f, { kind: 'dynamic', sizeBytes: 1024 * 1024 });
    const da = new SwitchableDisk(open(a, false), a);
    const db = new SwitchableDisk(open(b, false), b);
    // The second target's directory does not exist: its child cannot be made.
    expect(() =>
      switchDisks(
        [da, db],
        [
          { from: a, to: join(dir, 'x_1.avhdx') },
          { from: b, to: join(dir, 'nowhere', 'y_1.avhdx') },
        ],
        open,
      ),
    ).toThrow();
    expect([da.path, db.path]).toEqual([a, b]);
    expect(existsSync(join(dir, 'x_1.avhdx'))).toBe(false);
    da.write(0, sector(0x33));
    expect(read(da, 0)).toBe(0x33);
    expect(() => switchDisks([da], [{ from: join(dir, 'other.vhdx'), to: join(dir, 'z.avhdx') }], open)).toThrow(/no writable drive of this VM uses/);
    da.close();
    db.close();
  });
});
