/**
 * Merging a file deeper in a drive's chain into its parent while the drive is in use
 * (vmwp/chain-merge.ts), on real VHDX files: base ← d1 ← d2 ← leaf, d2 merged into d1 with guest
 * writes and full reads between every step. Afterwards d1's file has d2's name and identity,
 * the leaf still opens against it, every sector reads what was last written — through tsvisor
 * and through libvhdi — and the drive writes on. A merge stopped during the copy leaves the chain
 * as it was; one stopped between the identity change and the rename (a crash there) is finished
 * by the checkpoint tree's record of it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import { collectFiles } from '../../root-partition/vmms/checkpoint-files.ts';
import { emptyTree } from '../../root-partition/vmms/checkpoint-tree.ts';
import { readLocator } from '../../root-partition/storage/vhdx/vhdx-repoint.ts';
import { mergeInChainLive, mergeIntoBaseLive } from '../../root-partition/vmwp/chain-merge.ts';
import { SwitchableDisk, type ImageOpener } from '../../root-partition/vmwp/disk-switch.ts';
import { prng } from '../helpers/prng.ts';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const pyvhdi = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import pyvhdi']).status === 0;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsv-chain-merge-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const open: ImageOpener = (p, readOnly) => openDisk(p, { readOnly });

function readAll(d: { read(lba: number, dst: Uint8Array): void }): Buffer {
  const b = Buffer.alloc(SIZE);
  d.read(0, b);
  return b;
}

/** base ← d1 ← d2 ← leaf, each with data of its own (whole blocks, partial blocks, over the parent's). */
function chain(model: Buffer): { base: string; d1: string; d2: string; leaf: string } {
  const base = join(dir, 'base.vhdx');
  const d1 = join(dir, 'base_1.avhdx');
  const d2 = join(dir, 'base_2.avhdx');
  const leaf = join(dir, 'base_3.avhdx');
  let seed = 1;
  const write = (path: string, at: number, length: number) => {
    const bytes = Buffer.alloc(length);
    const r = prng(seed++);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(r() * 256);
    const d = openDisk(path, { lock: false }); // locks are not what is tested here, and each costs a fork
    d.write(at / 512, bytes);
    d.close();
    bytes.copy(model, at);
  };
  newDisk(base, { kind: 'dynamic', sizeBytes: SIZE, blockSizeBytes: MiB });
  write(base, 0, 3 * MiB);
  newDisk(d1, { kind: 'differencing', parentPath: base, blockSizeBytes: MiB });
  write(d1, MiB + 1024, 5 * 512);
  write(d1, 4 * MiB, MiB);
  newDisk(d2, { kind: 'differencing', parentPath: d1, blockSizeBytes: MiB });
  write(d2, 512, 3 * 512); // partial, over the base's data
  write(d2, 4 * MiB + 8192, 4096); // partial, over d1's whole block
  write(d2, 5 * MiB, 2 * MiB); // whole blocks where d1 has none
  write(d2, MiB + 1024, 512); // over d1's partial run
  newDisk(leaf, { kind: 'differencing', parentPath: d2, blockSizeBytes: MiB });
  write(leaf, 6 * MiB + 512, 1024);
  return { base, d1, d2, leaf };
}

/** The chain's content as libvhdi reads it (files from the base up). */
function libvhdiRead(files: string[]): Buffer {
  const py = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      `
import pyvhdi, sys
files = []
for f in sys.argv[1:]:
    d = pyvhdi.file(); d.open(f)
    if files: d.set_parent(files[-1])
    files.append(d)
prev = files[-1]
sys.stdout.buffer.write(prev.read_buffer_at_offset(prev.get_media_size(), 0))`,
      ...files,
    ],
    { maxBuffer: 64 * MiB, timeout: 60_000 },
  );
  expect(py.status, py.stderr?.toString()).toBe(0);
  return py.stdout;
}

describe("merging a file deeper in a running drive's chain", () => {
  it("copies between guest writes; the parent takes the file's name and identity, and every reader agrees", async () => {
    const model = Buffer.alloc(SIZE);
    const { base, d1, d2, leaf } = chain(model);
    const disk = new SwitchableDisk(open(leaf, false), leaf);
    expect(readAll(disk).equals(model)).toBe(true);
    const r = prng(99);
    let turns = 0;
    const yieldTurn = async () => {
      turns++;
      // The guest reads everything (through d2 and d1, whose parent is being written) and writes anywhere.
      expect(readAll(disk).equals(model)).toBe(true);
      const sectors = 1 + Math.floor(r() * 24);
      const lba = Math.floor(r() * (SIZE / 512 - sectors));
      const bytes = Buffer.alloc(sectors * 512, (turns * 37) & 0xff || 1);
      disk.write(lba, bytes);
      bytes.copy(model, lba * 512);
      await new Promise<void>((res) => setImmediate(res));
    };
    const result = await mergeInChainLive(disk, d2, openVhdx(d1, { lock: false }), open, { yieldTurn, piece: 256 * 1024 });
    expect(turns).toBeGreaterThanOrEqual(6);
    expect(result.copiedBytes).toBeGreaterThanOrEqual(2 * MiB + 4 * 512 + 4096);
    console.log(
      `deep live merge: ${result.copiedBytes} bytes copied in ${turns} turns with guest I/O between them; the drive's I/O stood still ${result.switchMs.toFixed(2)} ms for the switch`,
    );
    expect(existsSync(d1)).toBe(false);
    expect(disk.path).toBe(leaf);
    expect(readAll(disk).equals(model)).toBe(true);
    disk.write(9, Buffer.alloc(512, 0xee));
    Buffer.alloc(512, 0xee).copy(model, 9 * 512);
    disk.close();
    // On disk: leaf ← d2 (d1's blocks with d2's data, under d2's name and identity) ← base.
    const reopened = openVhdx(leaf, { readOnly: true, lock: false });
    expect(reopened.parent!.path).toBe(d2);
    expect(reopened.parent!.parent!.path).toBe(base);
    expect(readAll(reopened).equals(model)).toBe(true);
    reopened.close();
    if (pyvhdi) expect(libvhdiRead([base, d2, leaf]).equals(model)).toBe(true);
  });

  it("stopped during the copy, the chain is as it was; stopped before the rename, the tree's record finishes it", async () => {
    const model = Buffer.alloc(SIZE);
    const { base, d1, d2, leaf } = chain(model);
    const disk = new SwitchableDisk(open(leaf, false), leaf);
    let turns = 0;
    await expect(mergeInChainLive(disk, d2, openVhdx(d1, { lock: false }), open, { piece: 256 * 1024, cancelled: () => ++turns === 3 })).rejects.toThrow(
      /stopped: the VM is turning off/,
    );
    expect(readAll(disk).equals(model)).toBe(true);
    await expect(mergeInChainLive(disk, leaf, openVhdx(d2, { lock: false }), open)).rejects.toThrow(/is not below/);
    await expect(mergeInChainLive(disk, d2, openVhdx(base, { lock: false }), open)).rejects.toThrow(/is not the parent of/);
    disk.close();
    // d1 holds some of d2's sectors now, yet d2 still links to it and reads the same.
    const again = openDisk(leaf, { readOnly: true, lock: false });
    expect(readAll(again).equals(model)).toBe(true);
    again.close();

    // A crash after d1 took d2's identity, before the rename: d2 no longer opens against d1.
    const f = openVhdx(d2, { readOnly: true, lock: false });
    const identity = Buffer.from(f.file.header.dataWriteGuid).toString('hex');
    f.close();
    const d = new SwitchableDisk(open(leaf, false), leaf);
    await expect(
      mergeInChainLive(d, d2, openVhdx(d1, { lock: false }), open, {
        beforeRename: () => {
          throw new Error('crash here');
        },
      }),
    ).rejects.toThrow('crash here');
    expect(readAll(d).equals(model)).toBe(true); // the running chain reads on
    d.close();
    expect(() => openDisk(leaf, { readOnly: true, lock: false }).close()).toThrow(/has changed since this disk was made from it/);
    const tree = {
      ...emptyTree('00000000-0000-4000-8000-000000000001'),
      createdFiles: [d1, d2, leaf],
      retainedFiles: [d1],
      pendingMerges: [{ file: d1, child: d2, childIdentity: identity, live: true }],
    };
    const devices = [{ kind: 'scsi-controller', disks: [{ location: 0, path: leaf }] }] as never;
    const c = collectFiles(tree, devices);
    expect(c.deferred).toEqual([]);
    expect(c.done).toEqual([`merged ${d2} into ${d1}, which took its name`, '(finished a merge a crash had interrupted)']);
    expect(c.tree.pendingMerges).toEqual([]);
    expect(c.tree.retainedFiles).toEqual([]);
    expect(existsSync(d1)).toBe(false);
    const finished = openDisk(leaf, { readOnly: true, lock: false });
    expect(readAll(finished).equals(model)).toBe(true);
    finished.close();
  });
});
describe("merging into a disk the operator attached, below a running drive's chain", () => {
  /** Guest I/O between the merge's pieces: everything read through the chain, then a write anywhere. */
  const guest = (disk: SwitchableDisk, model: Buffer, seed: number) => {
    const r = prng(seed);
    let turns = 0;
    const yieldTurn = async () => {
      turns++;
      expect(readAll(disk).equals(model)).toBe(true);
      const sectors = 1 + Math.floor(r() * 24);
      const lba = Math.floor(r() * (SIZE / 512 - sectors));
      const bytes = Buffer.alloc(sectors * 512, (turns * 41) & 0xff || 1);
      disk.write(lba, bytes);
      bytes.copy(model, lba * 512);
      await new Promise<void>((res) => setImmediate(res));
    };
    return { yieldTurn, turns: () => turns };
  };

  it('copies between guest writes, then points the next file at the parent, which keeps its name; every reader agrees', async () => {
    const model = Buffer.alloc(SIZE);
    const { base, d1, d2, leaf } = chain(model);
    const d1Content = readAll(openDisk(d1, { readOnly: true, lock: false }));
    const disk = new SwitchableDisk(open(leaf, false), leaf);
    const g = guest(disk, model, 5);
    // d1 into the base; d2 (read-only in the chain) is pointed at the base.
    const result = await mergeIntoBaseLive(disk, d1, openVhdx(base, { lock: false }), [d2], open, { yieldTurn: g.yieldTurn, piece: 256 * 1024 });
    expect(g.turns()).toBeGreaterThanOrEqual(4);
    console.log(
      `live merge into the base: ${result.copiedBytes} bytes copied in ${g.turns()} turns with guest I/O between them; the drive's I/O stood still ${result.switchMs.toFixed(2)} ms for the switch`,
    );
    expect(existsSync(d1)).toBe(false);
    expect(readAll(disk).equals(model)).toBe(true);
    disk.write(3, Buffer.alloc(512, 0xee));
    Buffer.alloc(512, 0xee).copy(model, 3 * 512);
    disk.close();
    // On disk: leaf ← d2 ← base (d1's data in it, a new identity d2 links to).
    const reopened = openVhdx(leaf, { readOnly: true, lock: false });
    expect(reopened.parent!.path).toBe(d2);
    expect(reopened.parent!.parent!.path).toBe(base);
    const identity = reopened.parent!.parent!.identifier;
    expect(readAll(reopened).equals(model)).toBe(true);
    reopened.close();
    expect(readAll(openDisk(base, { readOnly: true, lock: false })).equals(d1Content)).toBe(true);
    expect(Object.fromEntries(readLocator(d2)!)).toEqual({ parent_linkage: `{${identity}}`, relative_path: '.\\base.vhdx' });
    if (pyvhdi) expect(libvhdiRead([base, d2, leaf]).equals(model)).toBe(true);
  });

  it("re-points the drive's own file through its open image when it is the one built on the merged file", async () => {
    const model = Buffer.alloc(SIZE);
    const { base, d1, d2, leaf } = chain(model);
    const disk = new SwitchableDisk(open(leaf, false), leaf);
    const g = guest(disk, model, 6);
    await mergeIntoBaseLive(disk, d2, openVhdx(d1, { lock: false }), [leaf], open, { yieldTurn: g.yieldTurn, piece: 256 * 1024 });
    expect(existsSync(d2)).toBe(false);
    expect(readAll(disk).equals(model)).toBe(true);
    disk.write(5, Buffer.alloc(512, 0xdd));
    Buffer.alloc(512, 0xdd).copy(model, 5 * 512);
    disk.close();
    const reopened = openVhdx(leaf, { readOnly: true, lock: false });
    expect([reopened.parent!.path, reopened.parent!.parent!.path]).toEqual([d1, base]);
    expect(readAll(reopened).equals(model)).toBe(true);
    reopened.close();
    if (pyvhdi) expect(libvhdiRead([base, d1, leaf]).equals(model)).toBe(true);
  });

  it('stopped during the copy or failing before the re-pointing, the chain is as it was and the record is dropped; a turn-off is retried offline', async () => {
    const model = Buffer.alloc(SIZE);
    const { base, d1, d2, leaf } = chain(model);
    const baseIdentity = openVhdx(base, { readOnly: true, lock: false });
    const identity = baseIdentity.identifier;
    baseIdentity.close();
    const disk = new SwitchableDisk(open(leaf, false), leaf);
    let turns = 0;
    await expect(
      mergeIntoBaseLive(disk, d1, openVhdx(base, { lock: false }), [d2], open, { piece: 256 * 1024, cancelled: () => ++turns === 3 }),
    ).rejects.toThrow(/stopped: the VM is turning off/);
    expect(readAll(disk).equals(model)).toBe(true);
    await expect(
      mergeIntoBaseLive(disk, d1, openVhdx(base, { lock: false }), [d2], open, {
        beforeRepoint: () => {
          throw new Error('failure here');
        },
      }),
    ).rejects.toThrow('failure here');
    expect(readAll(disk).equals(model)).toBe(true);
    disk.write(2, Buffer.alloc(512, 0xcc));
    Buffer.alloc(512, 0xcc).copy(model, 2 * 512);
    disk.close();
    // The base has all of d1's sectors now, and still its identity: d1 opens against it as before.
    const probe = openVhdx(leaf, { readOnly: true, lock: false });
    expect(probe.parent!.parent!.path).toBe(d1);
    expect(probe.parent!.parent!.parent!.identifier).toBe(identity);
    expect(readAll(probe).equals(model)).toBe(true);
    probe.close();
    // The tree's record of the live merge is dropped (d1 opens against the base), and with the
    // VM off the merge is done offline.
    const tree = {
      ...emptyTree('00000000-0000-4000-8000-000000000001'),
      checkpoints: [
        {
          id: '00000000-0000-4000-8000-000000000002',
          name: 'c2',
          parentId: null,
          createdAt: '2026-01-01T00:00:00.000Z',
          savedState: null,
          settings: { id: '00000000-0000-4000-8000-000000000001', name: 'vm', devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: d1 }] }] },
        },
        {
          id: '00000000-0000-4000-8000-000000000003',
          name: 'c3',
          parentId: '00000000-0000-4000-8000-000000000002',
          createdAt: '2026-01-01T00:00:00.000Z',
          savedState: null,
          settings: { id: '00000000-0000-4000-8000-000000000001', name: 'vm', devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: d2 }] }] },
        },
      ] as never,
      createdFiles: [d1, d2, leaf],
      retainedFiles: [base],
      pendingMerges: [{ file: base, child: d1, childIdentity: null, live: true, repoint: [d2] }],
    };
    const devices = [{ kind: 'scsi-controller', disks: [{ location: 0, path: leaf }] }] as never;
    const c = collectFiles(tree, devices);
    expect(c.deferred).toEqual([]);
    expect(c.done).toEqual([`merged ${d1} into ${base}, and pointed ${d2} at it`]);
    expect(c.tree.pendingMerges).toEqual([]);
    expect(existsSync(d1)).toBe(false);
    const finished = openDisk(leaf, { readOnly: true, lock: false });
    expect(readAll(finished).equals(model)).toBe(true);
    finished.close();
  });
});
