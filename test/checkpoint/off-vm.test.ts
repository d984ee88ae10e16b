/**
 * Checkpoints of an Off VM (disks only) through a real VMMS on real VHDX files: taking one
 * moves each drive onto a differencing child, applying one returns the drives to its content,
 * removing one deletes or merges the files nothing else needs — checked by the bytes each disk
 * reads, which files exist, and qemu-img / libvhdi on what remains.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { MAX_CHECKPOINTS, withoutCheckpoint, writableDisks } from '../../root-partition/vmms/checkpoint-tree.ts';
import { mergeVhdx } from '../../root-partition/storage/vhdx/vhdx-edit.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import { readLocator } from '../../root-partition/storage/vhdx/vhdx-repoint.ts';
import { ReturnCode } from '../../root-partition/vmms/lifecycle.ts';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { MiB, VmmsFixture } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** Fills `sectors` sectors at `lba` with `byte` in the image at `path` (opened as the VM would). */
function fill(path: string, lba: number, sectors: number, byte: number): void {
  const d = openDisk(path);
  try {
    d.write(lba, new Uint8Array(sectors * 512).fill(byte));
    d.flush();
  } finally {
    d.close();
  }
}

/** The first byte of each of the given sectors, through the whole chain. */
function bytesAt(path: string, lbas: number[]): number[] {
  const d = openDisk(path, { readOnly: true });
  try {
    return lbas.map((lba) => {
      const b = new Uint8Array(512);
      d.read(lba, b);
      expect(b.every((x) => x === b[0])).toBe(true);
      return b[0];
    });
  } finally {
    d.close();
  }
}

async function setup(): Promise<{ vmms: Vmms; dir: string; base: string; vm: string }> {
  const dir = fx.dataDir();
  const vmms = await fx.vmms({ dataDir: dir });
  const base = join(dir, 'base.vhdx');
  newDisk(base, { kind: 'dynamic', sizeBytes: 8 * MiB, blockSizeBytes: MiB });
  fill(base, 0, 8, 0xa1);
  const image = join(dir, 'guest.wasm');
  writeFileSync(image, 'not booted here');
  vmms.defineVm({ name: 'cp', memoryBytes: 4 * MiB, imagePath: image, devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: base }] }] });
  return { vmms, dir, base, vm: 'cp' };
}

const leaf = (vmms: Vmms, vm: string) => writableDisks(vmms.get(vm)!.devices)[0].path;

/** Every sector of the disk, through its chain. */
function content(path: string): Buffer {
  const d = openDisk(path, { readOnly: true });
  try {
    const b = Buffer.alloc(8 * MiB);
    d.read(0, b);
    return b;
  } finally {
    d.close();
  }
}

function identityOf(path: string): string {
  const d = openVhdx(path, { readOnly: true });
  try {
    return d.identifier;
  } finally {
    d.close();
  }
}

describe('checkpoints of an Off VM', () => {
  it('take, write, apply, and remove: drives and files as Hyper-V leaves them', async () => {
    const { vmms, base, vm } = await setup();
    const c1 = await vmms.checkpoints.create(vm, 'one');
    expect(c1.returnValue).toBe(ReturnCode.Completed);
    const a1 = leaf(vmms, vm);
    expect(a1).toBe(base.replace('base.vhdx', `base_${c1.checkpoint!.id}.avhdx`));
    expect(c1.checkpoint).toMatchObject({ name: 'one', parentId: null, current: true, hasSavedState: false, disks: [base] });
    fill(a1, 8, 8, 0xb2);
    const c2 = await vmms.checkpoints.create(vm, 'two');
    const a2 = leaf(vmms, vm);
    expect(c2.checkpoint).toMatchObject({ parentId: c1.checkpoint!.id, disks: [a1] });
    fill(a2, 16, 8, 0xc3);
    expect(bytesAt(a2, [0, 8, 16])).toEqual([0xa1, 0xb2, 0xc3]);
    // The frozen files did not change.
    expect(bytesAt(base, [0, 8, 16])).toEqual([0xa1, 0, 0]);
    expect(bytesAt(a1, [0, 8, 16])).toEqual([0xa1, 0xb2, 0]);

    // Apply "one": a new child of base; the old leaf a2 goes (no checkpoint needs it), a1 stays (two's).
    const applied = await vmms.checkpoints.apply(vm, 'one');
    expect(applied.returnValue).toBe(ReturnCode.Completed);
    const a3 = leaf(vmms, vm);
    expect(bytesAt(a3, [0, 8, 16])).toEqual([0xa1, 0, 0]);
    expect(existsSync(a2)).toBe(false);
    expect(existsSync(a1)).toBe(true);
    expect(vmms.checkpoints.list(vm).map((c) => [c.name, c.current])).toEqual([
      ['one', true],
      ['two', false],
    ]);
    fill(a3, 24, 8, 0xd4);

    // Remove "two": its file a1 has no child left: deleted.
    expect((await vmms.checkpoints.remove(vm, 'two')).done).toEqual([`deleted ${a1}`]);
    expect(existsSync(a1)).toBe(false);
    // Remove "one": base is needed by nothing but the leaf: the leaf is merged into base and
    // the drive is back on base.vhdx, with everything written since.
    const r = await vmms.checkpoints.remove(vm, 'one');
    expect(r.done).toEqual([`merged ${a3} into ${base}`]);
    expect(leaf(vmms, vm)).toBe(base);
    expect(existsSync(a3)).toBe(false);
    expect(bytesAt(base, [0, 8, 16, 24])).toEqual([0xa1, 0, 0, 0xd4]);
    expect(vmms.checkpoints.list(vm)).toEqual([]);
    if (has('qemu-img')) {
      const check = spawnSync('qemu-img', ['check', base], { encoding: 'utf8' });
      expect(check.status, check.stdout + check.stderr).toBe(0);
    }
    // The definition on disk says the same as VMMS.
    expect(readFileSync(join(vmms.paths.vmsDir, `${vmms.get(vm)!.id}.json`), 'utf8')).toContain(`"path": "${base}"`);
  });

  it('removing a checkpoint in the middle of a chain merges its file with its one child, which keeps its name and identity; the first merges into the base, which keeps its own', async () => {
    const { vmms, base, vm } = await setup();
    await vmms.checkpoints.create(vm, 'one');
    const a1 = leaf(vmms, vm);
    fill(a1, 8, 8, 0xb2);
    await vmms.checkpoints.create(vm, 'two');
    const a2 = leaf(vmms, vm);
    fill(a2, 16, 8, 0xc3);
    await vmms.checkpoints.create(vm, 'three');
    const a3 = leaf(vmms, vm);
    fill(a3, 8, 1, 0xe5);
    // "two" froze a1; a2 (three's file) builds on it, and the leaf a3 on a2.
    const r = await vmms.checkpoints.remove(vm, 'two');
    expect(r.done).toEqual([`merged ${a2} into ${a1}, which took its name`]);
    expect(existsSync(a1)).toBe(false);
    // The leaf still opens (its parent's name and DataWriteGuid are the ones it links to) and reads the same.
    expect(bytesAt(a3, [0, 8, 9, 16])).toEqual([0xa1, 0xe5, 0xb2, 0xc3]);
    expect(bytesAt(a2, [0, 8, 16])).toEqual([0xa1, 0xb2, 0xc3]);
    expect(vmms.checkpoints.list(vm).map((c) => [c.name, c.parentId === null ? null : vmms.checkpoints.get(vm, c.parentId)!.name])).toEqual([
      ['one', null],
      ['three', 'one'],
    ]);
    // "one" froze the operator's base, which a2 builds on: a2 is merged into the base, which
    // keeps its name, and the leaf is pointed at the base (Hyper-V's merge into the base disk).
    const leafBefore = content(a3);
    const threeBefore = content(a2);
    const baseIdentity = identityOf(base);
    expect((await vmms.checkpoints.remove(vm, 'one')).done).toEqual([`merged ${a2} into ${base}, and pointed ${a3} at it`]);
    expect(existsSync(a2)).toBe(false);
    expect(content(a3).equals(leafBefore)).toBe(true);
    expect(content(base).equals(threeBefore)).toBe(true);
    expect(identityOf(base)).not.toBe(baseIdentity);
    const locator = readLocator(a3)!;
    expect([...locator.keys()].sort()).toEqual(['parent_linkage', 'relative_path']);
    expect(locator.get('relative_path')).toBe('.\\base.vhdx');
    expect(locator.get('parent_linkage')).toBe(`{${identityOf(base)}}`);
    expect(vmms.checkpoints.list(vm).map((c) => [c.name, c.disks])).toEqual([['three', [base]]]);
    expect(vmms.checkpoints.store.load(vmms.get(vm)!.id)).toMatchObject({ retainedFiles: [], pendingMerges: [] });
    if (has('qemu-img')) {
      const check = spawnSync('qemu-img', ['check', base], { encoding: 'utf8' });
      expect(check.status, check.stdout + check.stderr).toBe(0);
    }
    if (has('vhdiinfo')) {
      const info = spawnSync('vhdiinfo', [a3], { encoding: 'utf8' });
      expect(info.status, info.stdout + info.stderr).toBe(0);
      expect(info.stdout).toMatch(/Differential/);
      expect(info.stdout).toContain(identityOf(base));
    }
    // Removing the last checkpoint puts the drive back on the base with everything written.
    expect((await vmms.checkpoints.remove(vm, 'three')).done).toEqual([`merged ${a3} into ${base}`]);
    expect(leaf(vmms, vm)).toBe(base);
    expect(content(base).equals(leafBefore)).toBe(true);
  });

  it('a merge a crash interrupted (child merged and deleted, not yet renamed) is finished, not taken for an unneeded file', async () => {
    const { vmms, vm, base } = await setup();
    await vmms.checkpoints.create(vm, 'one');
    const a1 = leaf(vmms, vm);
    fill(a1, 8, 8, 0xb2);
    await vmms.checkpoints.create(vm, 'two');
    const a2 = leaf(vmms, vm);
    fill(a2, 16, 8, 0xc3);
    await vmms.checkpoints.create(vm, 'three');
    const a3 = leaf(vmms, vm);
    // What removing "two" writes before it merges, then the merge itself, then the crash.
    const store = vmms.checkpoints.store;
    const id = vmms.get(vm)!.id;
    const two = vmms.checkpoints.list(vm).find((c) => c.name === 'two')!;
    const tree = withoutCheckpoint(store.load(id), two.id);
    const probe = openVhdx(a2, { readOnly: true });
    const childIdentity = Buffer.from(probe.file.header.dataWriteGuid).toString('hex');
    probe.close();
    store.save({ ...tree, retainedFiles: [a1], pendingMerges: [{ file: a1, child: a2, childIdentity }] });
    mergeVhdx(a2);
    expect(() => bytesAt(a3, [0])).toThrow(/does not exist/);
    // The next collection (any removal) finishes it: a1 takes a2's name and identity; a3 opens again.
    const r = await vmms.checkpoints.remove(vm, 'one');
    // Then "one"'s base, needed by nothing but a2 now, takes a2's data, and a3 is pointed at it.
    expect(r.done).toEqual([
      `merged ${a2} into ${a1}, which took its name`,
      '(finished a merge a crash had interrupted)',
      `merged ${a2} into ${base}, and pointed ${a3} at it`,
    ]);
    expect([existsSync(a1), existsSync(a2)]).toEqual([false, false]);
    expect(bytesAt(a3, [0, 8, 16])).toEqual([0xa1, 0xb2, 0xc3]);
    expect(store.load(id).pendingMerges).toEqual([]);
  });

  it("a merge the running VM's worker had begun when it died is dropped, the chain intact, and done again offline", async () => {
    const { vmms, vm, base } = await setup();
    await vmms.checkpoints.create(vm, 'one');
    const a1 = leaf(vmms, vm);
    fill(a1, 8, 8, 0xb2);
    await vmms.checkpoints.create(vm, 'two');
    const a2 = leaf(vmms, vm);
    fill(a2, 16, 8, 0xc3);
    fill(a2, 8, 1, 0xd4);
    // What removing "two" records before the worker merges a2 into a1, then part of that merge
    // (some of a2's sectors written into a1, as live-merge.ts writes them), then the crash.
    const store = vmms.checkpoints.store;
    const id = vmms.get(vm)!.id;
    const two = vmms.checkpoints.list(vm).find((c) => c.name === 'two')!;
    store.save({
      ...withoutCheckpoint(store.load(id), two.id),
      retainedFiles: [a1],
      pendingMerges: [{ file: a1, child: a2, childIdentity: null, live: true }],
    });
    const parent = openVhdx(a1, { lock: false });
    parent.file.beginSession({ keepDataWriteGuid: true });
    parent.write(16, new Uint8Array(4 * 512).fill(0xc3));
    parent.close();
    expect(bytesAt(a2, [0, 8, 9, 16, 20])).toEqual([0xa1, 0xd4, 0xb2, 0xc3, 0xc3]);
    // The next collection drops the record (a2 still opens against a1) and, the VM being off,
    // merges a2 into a1 — then a1, which "one" no longer needs, into the base.
    const r = await vmms.checkpoints.remove(vm, 'one');
    expect(r.deferred).toEqual([]);
    expect(r.done).toEqual([`merged ${a2} into ${a1}`, `merged ${a1} into ${base}`]);
    expect(leaf(vmms, vm)).toBe(base);
    expect([existsSync(a1), existsSync(a2)]).toEqual([false, false]);
    expect(bytesAt(base, [0, 8, 9, 16, 20])).toEqual([0xa1, 0xd4, 0xb2, 0xc3, 0xc3]);
    expect(store.load(id).pendingMerges).toEqual([]);
  });

  it('holds at most MAX_CHECKPOINTS checkpoints per VM: the next is refused and nothing is made for it', async () => {
    const dir = fx.dataDir();
    const vmms = await fx.vmms({ dataDir: dir });
    const image = join(dir, 'guest.wasm');
    writeFileSync(image, 'x');
    // No drives: each checkpoint is its settings only, so the flood is cheap.
    vmms.defineVm({ name: 'many', memoryBytes: 4 * MiB, imagePath: image });
    for (let i = 0; i < MAX_CHECKPOINTS; i++) expect((await vmms.checkpoints.create('many', `c${i}`)).returnValue).toBe(ReturnCode.Completed);
    const over = await vmms.checkpoints.create('many', 'one too many');
    expect(over).toEqual({ returnValue: ReturnCode.Failed, error: `VM many has ${MAX_CHECKPOINTS} checkpoints, the limit; remove some first` });
    expect(vmms.checkpoints.list('many')).toHaveLength(MAX_CHECKPOINTS);
    // A tree file edited to hold more is refused, not trusted.
    const file = vmms.checkpoints.store.treePath(vmms.get('many')!.id);
    const tree = JSON.parse(readFileSync(file, 'utf8'));
    tree.checkpoints.push({ ...tree.checkpoints[0], id: '00000000-0000-4000-8000-000000000051' });
    writeFileSync(file, JSON.stringify(tree));
    expect(() => vmms.checkpoints.list('many')).toThrow(/invalid checkpoint tree: checkpoints: must be an array of at most 50/);
  });

  it('refuses a raw disk by name, pointing to `tsvisor disk convert`, and changes nothing', async () => {
    const dir = fx.dataDir();
    const vmms = await fx.vmms({ dataDir: dir });
    const raw = join(dir, 'disk.raw');
    newDisk(raw, { kind: 'raw', sizeBytes: MiB });
    const image = join(dir, 'guest.wasm');
    writeFileSync(image, 'x');
    vmms.defineVm({ name: 'rawvm', memoryBytes: 4 * MiB, imagePath: image, devices: [{ kind: 'ide-disk', controller: 0, position: 0, path: raw }] });
    const r = await vmms.checkpoints.create('rawvm');
    expect(r.returnValue).toBe(ReturnCode.Failed);
    expect(r.error).toBe(
      `cannot checkpoint: disk ${raw} is a raw image; checkpoints need VHDX disks (convert it with \`tsvisor disk convert ${raw} <new>.vhdx\` and attach the new file)`,
    );
    expect(leaf(vmms, 'rawvm')).toBe(raw);
    expect(vmms.checkpoints.list('rawvm')).toEqual([]);
  });
});
