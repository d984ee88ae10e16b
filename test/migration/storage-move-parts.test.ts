/**
 * A storage move's parts without a VM: the dirty-block map against a plain model (property test),
 * the DISK_BLOCKS frame's exact bytes and its checks against a hostile peer, the device-thread
 * side's reads through a real drive (writes between takes come again, zeros are left out of the
 * first round, a differencing drive is refused), and the destination's preparation: copies only
 * in an allowed directory, never over a file, all removed when asked.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageRoots } from '../../root-partition/host/storage-roots.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { createVhdx } from '../../root-partition/storage/vhdx/vhdx-create.ts';
import { VhdxDisk } from '../../root-partition/storage/vhdx/vhdx-disk.ts';
import { decodeDiskBlocks, encodeDiskBlocks, FrameReader, MigrationFrame } from '../../root-partition/migration/migration-wire.ts';
import { prepareStorageMove } from '../../root-partition/migration/storage-move-destination.ts';
import { DirtyBlockMap, DIRTY_BLOCK_BYTES } from '../../root-partition/vmwp/disk-dirty-map.ts';
import { DiskCopySource } from '../../root-partition/vmwp/disk-copy-source.ts';
import { SwitchableDisk } from '../../root-partition/vmwp/disk-switch.ts';
import type { VmDefinition } from '../../root-partition/vmms/vm-definition.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-smparts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

describe('dirty-block map', () => {
  it('marks exactly the blocks a write touches and finds them in order, for any writes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }).map((n) => n * 512 * 37),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 600 })), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (diskBytes, writes, clears) => {
          const sectors = diskBytes / 512;
          const map = new DirtyBlockMap(diskBytes, 512);
          const model = new Set<number>();
          const blocks = Math.ceil(diskBytes / DIRTY_BLOCK_BYTES);
          // Starts all dirty; clear some, then write.
          for (let b = 0; b < blocks; b++) model.add(b);
          for (let b = 0; b < blocks; b++) {
            map.clear(b);
            model.delete(b);
          }
          for (const c of clears) map.clear(c % blocks);
          for (const [at, n] of writes) {
            const lba = at % sectors;
            const len = Math.min(n, sectors - lba);
            map.markSectors(lba, len);
            for (let s = lba; s < lba + len; s++) model.add(Math.floor((s * 512) / DIRTY_BLOCK_BYTES));
          }
          const found: number[] = [];
          for (let b = map.nextDirty(0); b >= 0; b = map.nextDirty(b + 1)) found.push(b);
          expect(found).toEqual([...model].sort((x, y) => x - y));
          expect(map.count).toBe(model.size);
          const lastBytes = map.blockBytes(blocks - 1);
          expect(lastBytes).toBe(diskBytes - (blocks - 1) * DIRTY_BLOCK_BYTES);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('DISK_BLOCKS frame', () => {
  it('u16 drive, u16 count, u32 block numbers, then the bytes; a short last block stays short', () => {
    const f = encodeDiskBlocks(1, [0, 2], Buffer.concat([Buffer.alloc(DIRTY_BLOCK_BYTES, 0xaa), Buffer.alloc(512, 0xbb)]));
    expect(f.subarray(0, 17).toString('hex')).toBe(
      (13 + DIRTY_BLOCK_BYTES + 512).toString(16).padStart(8, '0').match(/../g)!.reverse().join('') + '0c' + '0100' + '0200' + '00000000' + '02000000',
    );
    const [frame] = new FrameReader().push(f);
    expect(frame.type).toBe(MigrationFrame.DiskBlocks);
    const got: [number, number, number, number][] = [];
    decodeDiskBlocks(frame.body, [MiB, 2 * DIRTY_BLOCK_BYTES + 512], (d, b, bytes) => got.push([d, b, bytes.length, bytes[0]]));
    expect(got).toEqual([
      [1, 0, DIRTY_BLOCK_BYTES, 0xaa],
      [1, 2, 512, 0xbb],
    ]);
  });

  it('refuses another drive, a block outside the drive, a wrong length and too many blocks, before writing anything', () => {
    const one = encodeDiskBlocks(0, [3], Buffer.alloc(DIRTY_BLOCK_BYTES)).subarray(5);
    const write = () => {
      throw new Error('nothing may be written');
    };
    expect(() => decodeDiskBlocks(one, [], write)).toThrow(/names drive 0; the move carries 0/);
    expect(() => decodeDiskBlocks(one, [3 * DIRTY_BLOCK_BYTES], write)).toThrow(/block 3 is outside drive 0/);
    expect(() => decodeDiskBlocks(one.subarray(0, one.length - 1), [MiB], write)).toThrow(/does not hold its 1 blocks/);
    const many = Buffer.alloc(8);
    many.writeUInt16LE(17, 2);
    expect(() => decodeDiskBlocks(many, [MiB], write)).toThrow(/malformed \(count 17\)/);
    // Two blocks, the second out of range: the first is not written either.
    const two = encodeDiskBlocks(0, [0, 99], Buffer.alloc(2 * DIRTY_BLOCK_BYTES)).subarray(5);
    expect(() => decodeDiskBlocks(two, [MiB], write)).toThrow(/block 99/);
  });
});

describe('the source side on the device thread', () => {
  it('reads the dirty blocks through the drive; a write between takes comes again; zeros leave the first round out', () => {
    const path = join(dir, 'src.raw');
    RawDisk.create(path, { sizeBytes: 4 * DIRTY_BLOCK_BYTES + 1024 }).close();
    const drive = new SwitchableDisk(openDisk(path), path);
    try {
      drive.write(0, Buffer.alloc(512, 1));
      drive.write((4 * DIRTY_BLOCK_BYTES) / 512, Buffer.alloc(1024, 5)); // the short last block
      const copy = new DiskCopySource();
      const [info] = copy.begin([drive]);
      expect(info).toEqual({ path, format: 'raw', sectorSize: 512, sectorCount: (4 * DIRTY_BLOCK_BYTES + 1024) / 512, readOnly: false, virtualDiskId: null });
      // The first take stops at its limit (one block); a write behind the cursor marks that block again.
      const t1 = copy.take(0, 0, DIRTY_BLOCK_BYTES, true);
      expect([t1.blocks, t1.next, t1.data[0]]).toEqual([[0], 1, 1]);
      drive.write(1, Buffer.alloc(512, 2));
      const t2 = copy.take(0, t1.next, 8 * DIRTY_BLOCK_BYTES, true);
      expect([t2.blocks, t2.next, t2.data.length, t2.dirtyLeft]).toEqual([[4], 5, 1024, 1]);
      // The next round: only the block written meanwhile, zeros included now.
      const t3 = copy.take(0, 0, 8 * DIRTY_BLOCK_BYTES, false);
      expect([t3.blocks, t3.data[512], t3.dirtyLeft]).toEqual([[0], 2, 0]);
      drive.unmap?.(0, 1);
      copy.end();
      drive.write(0, Buffer.alloc(512, 3));
      expect(drive.dirtyMap).toBeNull();
      expect(() => copy.take(0, 0, MiB, false)).toThrow(/no storage move/);
    } finally {
      drive.close();
    }
  });

  it('refuses a differencing drive (a VM with checkpoints) and says why', () => {
    const base = join(dir, 'base.vhdx');
    const child = join(dir, 'child.avhdx');
    createVhdx(base, { type: 'dynamic', sizeBytes: MiB });
    createVhdx(child, { type: 'differencing', parentPath: base });
    const image = openDisk(child);
    expect(image).toBeInstanceOf(VhdxDisk);
    const drive = new SwitchableDisk(image, child);
    try {
      expect(() => new DiskCopySource().begin([drive])).toThrow(/differencing disk \(the VM has checkpoints\)/);
      expect(drive.dirtyMap).toBeNull();
    } finally {
      drive.close();
    }
  });
});

describe('the destination VMMS', () => {
  const def = (path: string): VmDefinition => ({
    version: 1,
    id: '00000000-0000-4000-8000-0000000000f1',
    name: 'm',
    memoryBytes: 16 * MiB,
    vpCount: 1,
    imagePath: '/x.wasm',
    cmdline: '',
    automaticStopAction: 'turn-off',
    devices: [
      { kind: 'ide-disk', controller: 0, position: 0, path },
      { kind: 'scsi-controller', disks: [{ location: 0, path: '/src/two.vhdx' }] },
    ] as VmDefinition['devices'],
  });
  const storage = (d: string) => ({
    dir: d,
    disks: [
      { path: '/src/one.raw', format: 'raw', sectorSize: 512, sectorCount: 2048, readOnly: false, virtualDiskId: null },
      { path: '/src/two.vhdx', format: 'vhdx', sectorSize: 512, sectorCount: 4096, readOnly: false, virtualDiskId: '00112233445566778899aabbccddeeff' },
    ],
  });

  it('makes the copies in the directory and puts the definition on them; removes them when asked', () => {
    const to = join(dir, 'to');
    mkdirSync(to);
    const p = prepareStorageMove(def('/src/one.raw'), storage(to), StorageRoots.of([to]));
    expect(p.definition.devices).toEqual([
      { kind: 'ide-disk', controller: 0, position: 0, path: join(to, 'one.raw') },
      { kind: 'scsi-controller', disks: [{ location: 0, path: join(to, 'two.vhdx') }] },
    ]);
    const vhdx = openDisk(join(to, 'two.vhdx'), { readOnly: true }) as VhdxDisk;
    expect([vhdx.sectorCount, Buffer.from(vhdx.layout.meta.diskId).toString('hex')]).toEqual([4096, '00112233445566778899aabbccddeeff']);
    vhdx.close();
    const raw = openDisk(join(to, 'one.raw'), { readOnly: true });
    expect(raw.sectorCount).toBe(2048);
    raw.close();
    p.remove();
    expect(readdirSync(to)).toEqual([]);
  });

  it('refuses a directory outside the storage roots, an existing file (made ones removed), a drive the source does not send, a malformed drive', () => {
    const to = join(dir, 'to2');
    mkdirSync(to);
    expect(() => prepareStorageMove(def('/src/one.raw'), storage(to), StorageRoots.of([join(dir, 'elsewhere')]))).toThrow();
    expect(readdirSync(to)).toEqual([]);
    writeFileSync(join(to, 'two.vhdx'), "someone else's file");
    expect(() => prepareStorageMove(def('/src/one.raw'), storage(to), null)).toThrow(/exists/);
    expect(readdirSync(to)).toEqual(['two.vhdx']);
    rmSync(join(to, 'two.vhdx'));
    expect(() => prepareStorageMove(def('/src/other.raw'), storage(to), null)).toThrow(/not among the drives the source sends/);
    expect(existsSync(join(to, 'one.raw'))).toBe(false);
    const bad = storage(to);
    (bad.disks[0] as { sectorCount: number }).sectorCount = -1;
    expect(() => prepareStorageMove(def('/src/one.raw'), bad, null)).toThrow(/drive 0 is malformed/);
    expect(() => prepareStorageMove(def('/src/one.raw'), { ...storage(to), dir: 'relative' }, null)).toThrow(/absolute/);
    expect(readdirSync(to)).toEqual([]);
  });
});
