/**
 * The checkpoint tree as data (checkpoint-tree.ts): drive paths in and out of a definition,
 * AVHDX naming, what becomes of an unneeded file, re-parenting on removal, and the checks on a
 * tree read from disk.
 */
import { describe, expect, it } from 'vitest';
import {
  differencingPath,
  emptyTree,
  fateOf,
  findCheckpoint,
  treeProblems,
  withDiskPaths,
  withoutCheckpoint,
  writableDisks,
  type CheckpointRecord,
  type CheckpointTree,
} from '../../root-partition/vmms/checkpoint-tree.ts';
import { newDefinition, type DeviceDefinition } from '../../root-partition/vmms/vm-definition.ts';

const devices: DeviceDefinition[] = [
  { kind: 'ide-disk', controller: 0, position: 0, path: '/d/boot.vhdx' },
  { kind: 'ide-disk', controller: 0, position: 1, path: '/d/iso.vhdx', readOnly: true },
  { kind: 'scsi-controller', disks: [{ location: 0, path: '/d/data.vhdx' }, { location: 1 }, { location: 2, path: '/d/logs.vhdx' }] },
  { kind: 'integration-services' },
];

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';

function tree(): CheckpointTree {
  const settings = newDefinition({ name: 'vm', memoryBytes: 65536 * 16, imagePath: '/g.wasm' });
  const vmId = settings.id;
  const cp = (id: string, parentId: string | null, name = id.slice(-1)): CheckpointRecord => ({
    id,
    name,
    parentId,
    createdAt: '2026-01-01T00:00:00Z',
    settings,
    savedState: null,
  });
  return { ...emptyTree(vmId), checkpoints: [cp(A, null), cp(B, A), cp(C, A, 'b')], currentId: B };
}

describe('checkpoint tree', () => {
  it('finds the writable drives with an image, in definition order, and puts new paths in their place', () => {
    expect(writableDisks(devices).map((s) => [s.where, s.path])).toEqual([
      ['devices[0]', '/d/boot.vhdx'],
      ['devices[2].disks[0]', '/d/data.vhdx'],
      ['devices[2].disks[2]', '/d/logs.vhdx'],
    ]);
    const moved = withDiskPaths(devices, ['/d/1.avhdx', '/d/2.avhdx', '/d/3.avhdx']);
    expect(writableDisks(moved).map((s) => s.path)).toEqual(['/d/1.avhdx', '/d/2.avhdx', '/d/3.avhdx']);
    // The read-only drive, the empty location and the original list are untouched.
    expect(moved[1]).toEqual(devices[1]);
    expect((moved[2].disks as unknown[])[1]).toEqual({ location: 1 });
    expect(devices[0].path).toBe('/d/boot.vhdx');
    expect(() => withDiskPaths(devices, ['/d/1.avhdx'])).toThrow(/3 writable drives but 1 paths/);
  });

  it('names a differencing file after the base disk and the checkpoint, as Hyper-V names AVHDX files', () => {
    expect(differencingPath('/d/boot.vhdx', A)).toBe(`/d/boot_${A}.avhdx`);
    // A child of a checkpoint's file keeps the disk's stem, not a growing chain of ids.
    expect(differencingPath(`/d/boot_${A}.avhdx`, B)).toBe(`/d/boot_${B}.avhdx`);
    expect(differencingPath(`/d/boot_${A}.avhdx`, B, 2)).toBe(`/d/boot_${B}-2.avhdx`);
  });

  it('deletes a file nothing builds on, merges one with a single child, keeps a shared parent', () => {
    expect(fateOf([])).toEqual({ kind: 'delete' });
    expect(fateOf(['/d/x.avhdx'])).toEqual({ kind: 'merge', child: '/d/x.avhdx' });
    expect(fateOf(['/d/x.avhdx', '/d/y.avhdx'])).toEqual({ kind: 'keep' });
  });

  it('hangs a removed checkpoint\'s children, and "Now", from its parent', () => {
    const t = tree();
    const t2 = withoutCheckpoint({ ...t, currentId: A }, A);
    expect(t2.checkpoints.map((c) => [c.id, c.parentId])).toEqual([
      [B, null],
      [C, null],
    ]);
    expect(t2.currentId).toBeNull();
    const t3 = withoutCheckpoint(t, B);
    expect(t3.currentId).toBe(A);
    expect(t3.checkpoints.map((c) => c.id)).toEqual([A, C]);
  });

  it('finds by id or unique name; an ambiguous name is refused with the ids', () => {
    const t = tree();
    expect((findCheckpoint(t, B) as CheckpointRecord).id).toBe(B);
    expect((findCheckpoint(t, 'a') as CheckpointRecord).id).toBe(A);
    expect(findCheckpoint(t, 'b')).toEqual({ error: expect.stringContaining(`2 checkpoints are named "b"`) });
    expect(findCheckpoint(t, 'zz')).toEqual({ error: 'the VM has no checkpoint named or with id "zz"' });
  });

  it("refuses a tree file with a parent loop, a dangling parent or another VM's id", () => {
    const t = tree();
    expect(treeProblems(t, t.vmId)).toEqual([]);
    const loop = structuredClone(t);
    loop.checkpoints[0].parentId = B;
    expect(treeProblems(loop, t.vmId).join('; ')).toMatch(/parent links form a loop/);
    const dangling = structuredClone(t);
    dangling.checkpoints[1].parentId = '00000000-0000-4000-8000-0000000000ff';
    expect(treeProblems(dangling, t.vmId).join('; ')).toMatch(/is not in the tree/);
    expect(treeProblems(t, '00000000-0000-4000-8000-000000000001').join('; ')).toMatch(/vmId: must be/);
    expect(treeProblems([], t.vmId)).toEqual(['must be a JSON object']);
  });
});
