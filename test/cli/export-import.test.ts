/**
 * Export-VM and Import-VM through a real VMMS on real VHDX files: a VM with a disk and a
 * checkpoint exported, removed (its disks deleted too), imported in place, started, its disk
 * bytes and checkpoint list as before, and its checkpoint still applicable; imported again as a
 * copy with a new id. Hostile export folders are refused with a sentence and leave nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { writableDisks } from '../../root-partition/vmms/checkpoint-tree.ts';
import { EnabledState, ReturnCode } from '../../root-partition/vmms/lifecycle.ts';
import { MAX_DEFINITION_BYTES } from '../../root-partition/vmms/vm-export-layout.ts';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

function fill(path: string, lba: number, byte: number): void {
  const d = openDisk(path);
  try {
    d.write(lba, new Uint8Array(8 * 512).fill(byte));
    d.flush();
  } finally {
    d.close();
  }
}

/** The first byte of each sector, read through the whole chain. */
function bytesAt(path: string, lbas: number[]): number[] {
  const d = openDisk(path, { readOnly: true });
  try {
    return lbas.map((lba) => {
      const b = new Uint8Array(512);
      d.read(lba, b);
      return b[0]!;
    });
  } finally {
    d.close();
  }
}

const leaf = (vmms: Vmms, vm: string) => writableDisks(vmms.get(vm)!.devices)[0]!.path;

async function host(opts: { memoryBudgetBytes?: number; roots?: string[] } = {}): Promise<{ vmms: Vmms; dir: string; image: string }> {
  await buildGuests(['idle']);
  const dir = fx.dataDir();
  const image = guestImagePath('idle');
  const vmms = await fx.vmms({
    dataDir: dir,
    storageRoots: [dir, dirname(image), ...(opts.roots ?? [])],
    ...(opts.memoryBudgetBytes ? { limits: { memoryBudgetBytes: opts.memoryBudgetBytes } } : {}),
  });
  return { vmms, dir, image };
}

describe('Export-VM and Import-VM', () => {
  it('a VM with a disk and a checkpoint: exported, removed, imported in place and as a copy with a new id; started, its checkpoint applied', async () => {
    const { vmms, dir, image } = await host();
    // The drive is a differencing disk of a golden image in another directory, both named disk.vhdx:
    // the export puts them side by side under two names and points the child at its parent's copy.
    const src = join(dir, 'src');
    const gold = join(dir, 'gold');
    mkdirSync(src);
    mkdirSync(gold);
    const base = join(gold, 'disk.vhdx');
    newDisk(base, { kind: 'dynamic', sizeBytes: 8 * MiB, blockSizeBytes: MiB });
    fill(base, 0, 0xa1);
    const child = join(src, 'disk.vhdx');
    newDisk(child, { kind: 'differencing', parentPath: base });
    const id = vmms.defineVm({
      name: 'exp',
      memoryBytes: 16 * MiB,
      imagePath: image,
      devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: child }] }],
    }).id;
    const cp = await vmms.checkpoints.create('exp', 'one');
    expect(cp.returnValue).toBe(ReturnCode.Completed);
    fill(leaf(vmms, 'exp'), 8, 0xb2);

    const exports = join(dir, 'exports');
    mkdirSync(exports);
    const r = vmms.exportVm('exp', exports);
    const folder = join(exports, 'exp');
    const avhdx = `disk_${cp.checkpoint!.id}.avhdx`;
    expect({ ...r, disks: r.disks.sort() }).toEqual({
      vm: 'exp',
      vmId: id,
      path: folder,
      disks: ['disk-2.vhdx', 'disk.vhdx', avhdx],
      checkpoints: 1,
      savedState: false,
    });
    expect(readdirSync(folder).sort()).toEqual(['Snapshots', 'Virtual Hard Disks', 'Virtual Machines']);
    expect(readdirSync(join(folder, 'Virtual Machines'))).toEqual([`${id}.json`]);
    expect(readdirSync(join(folder, 'Virtual Hard Disks')).sort()).toEqual(['disk-2.vhdx', 'disk.vhdx', avhdx]);
    expect(readdirSync(join(folder, 'Snapshots'))).toEqual(['tree.json']);
    const exported = JSON.parse(readFileSync(join(folder, 'Virtual Machines', `${id}.json`), 'utf8'));
    expect(exported.devices[0].disks[0].path).toBe(`Virtual Hard Disks/${avhdx}`);
    // A second export to the same place is refused, not merged into the first.
    expect(() => vmms.exportVm('exp', exports)).toThrow(`${folder} already exists; export to another directory or remove it`);

    expect(vmms.removeVm('exp').returnValue).toBe(ReturnCode.Completed);
    rmSync(src, { recursive: true });
    rmSync(gold, { recursive: true });
    const imported = vmms.importVm(folder, {});
    expect(imported).toMatchObject({ vm: 'exp', vmId: id, mode: 'register', checkpoints: 1, savedState: false });
    const inPlace = join(folder, 'Virtual Hard Disks');
    expect(leaf(vmms, 'exp')).toBe(join(inPlace, avhdx));
    expect(bytesAt(leaf(vmms, 'exp'), [0, 8])).toEqual([0xa1, 0xb2]);
    expect(vmms.checkpoints.list('exp').map((c) => [c.name, c.current, c.disks])).toEqual([['one', true, [join(inPlace, 'disk.vhdx')]]]);

    // The same export again (before the VM registered in place changes its files): the id is taken, so only as a copy with a new id (and a new name).
    expect(() => vmms.importVm(folder, {})).toThrow(
      `a VM with id ${id} is already defined on this host; import a copy with a new id (--copy <dir> --new-id) or remove that VM`,
    );
    expect(() => vmms.importVm(folder, { newId: true })).toThrow('a new id needs a copy (--copy <dir>)');
    const copyDir = join(dir, 'copy');
    const copy = vmms.importVm(folder, { copyTo: copyDir, newId: true, name: 'exp2' });
    expect(copy.vmId).not.toBe(id);
    expect(copy).toMatchObject({ vm: 'exp2', mode: 'copy', checkpoints: 1 });
    expect(readdirSync(copyDir).sort()).toEqual(['disk-2.vhdx', 'disk.vhdx', avhdx]);
    expect(bytesAt(leaf(vmms, 'exp2'), [0, 8])).toEqual([0xa1, 0xb2]);
    // libvhdi reads the file whose metadata was rewritten (qemu-img opens no differencing VHDX).
    if (spawnSync('sh', ['-c', 'command -v vhdiinfo']).status === 0) {
      const info = spawnSync('vhdiinfo', [join(copyDir, 'disk.vhdx')], { encoding: 'utf8' });
      expect(info.status, info.stderr).toBe(0);
      expect(info.stdout).toMatch(/Disk type\s*: Differential/);
    }
    expect(vmms.checkpoints.list('exp2').map((c) => [c.name, c.vmId, c.disks])).toEqual([['one', copy.vmId, [join(copyDir, 'disk.vhdx')]]]);
    // The worker opens the imported chain (storage roots checked on every file of it).
    const started = await vmms.start('exp');
    expect([started.returnValue, started.error]).toEqual([ReturnCode.Completed, undefined]);
    expect(vmms.get('exp')!.enabledState).toBe(EnabledState.Running);
    expect((await vmms.turnOff('exp')).returnValue).toBe(ReturnCode.Completed);
    // The checkpoint still applies: the drive returns to the checkpoint's content.
    expect((await vmms.checkpoints.apply('exp', 'one')).returnValue).toBe(ReturnCode.Completed);
    expect(bytesAt(leaf(vmms, 'exp'), [0, 8])).toEqual([0xa1, 0]);
  }, 60_000);

  it('hostile export folders are refused with a sentence and leave nothing behind', async () => {
    const { vmms, dir, image } = await host();
    const disk = join(dir, 'd.vhdx');
    newDisk(disk, { kind: 'dynamic', sizeBytes: 4 * MiB, blockSizeBytes: MiB });
    const id = vmms.defineVm({
      name: 'h',
      memoryBytes: 16 * MiB,
      imagePath: image,
      devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: disk }] }],
    }).id;
    const good = vmms.exportVm('h', dir).path;
    vmms.removeVm('h');
    const other = await host({ memoryBudgetBytes: 8 * MiB, roots: [dir] });
    let n = 0;
    /** A fresh copy of the good export, changed by `spoil`; importing it must fail with `message`. */
    const refused = (target: Vmms, spoil: (folder: string) => void, message: string | RegExp, copyTo?: string) => {
      const folder = join(dir, `bad-${n++}`, 'h');
      cpSync(good, folder, { recursive: true, verbatimSymlinks: true });
      spoil(folder);
      const before = readdirSync(target.paths.root).sort();
      expect(() => target.importVm(folder, copyTo ? { copyTo } : {})).toThrow(message);
      expect(target.list()).toEqual([]);
      expect(readdirSync(target.paths.vmsDir)).toEqual([]);
      expect(readdirSync(target.paths.savedDir)).toEqual([]);
      expect(existsSync(target.paths.checkpointsDir) ? readdirSync(target.paths.checkpointsDir) : []).toEqual([]);
      expect(readdirSync(target.paths.root).sort()).toEqual(before);
      if (copyTo && existsSync(copyTo)) expect(readdirSync(copyTo)).toEqual([]);
    };
    const def = (folder: string) => join(folder, 'Virtual Machines', `${id}.json`);
    // biome-ignore lint/suspicious/noExplicitAny: a definition made hostile field by field
    const edit = (folder: string, change: (d: Record<string, any>) => void) => {
      const d = JSON.parse(readFileSync(def(folder), 'utf8'));
      change(d);
      writeFileSync(def(folder), JSON.stringify(d));
    };

    refused(vmms, (f) => writeFileSync(def(f), '{ "id": '), /Virtual Machines\/[0-9a-f-]+\.json is not valid JSON/);
    refused(
      vmms,
      (f) =>
        edit(f, (d) => {
          d.devices[0].disks[0].path = 'Virtual Hard Disks/../../../etc/passwd';
        }),
      'the definition: disk path "Virtual Hard Disks/../../../etc/passwd" is not a file in "Virtual Hard Disks/"',
    );
    refused(
      vmms,
      (f) =>
        edit(f, (d) => {
          d.devices[0].disks[0].path = disk;
        }),
      `the definition: disk path "${disk}" is not a file in "Virtual Hard Disks/"`,
    );
    refused(
      vmms,
      (f) =>
        edit(f, (d) => {
          d.devices[0].disks = [null];
        }),
      /disks\[0\]/,
    );
    refused(
      vmms,
      (f) =>
        edit(f, (d) => {
          d.id = '00000000-0000-0000-0000-000000000000';
        }),
      "is not its file name's",
    );
    refused(
      vmms,
      (f) =>
        edit(f, (d) => {
          d.owner = 'root';
        }),
      'owner: unknown field',
    );
    refused(
      vmms,
      (f) => {
        rmSync(join(f, 'Virtual Hard Disks', 'd.vhdx'));
        symlinkSync('/etc/passwd', join(f, 'Virtual Hard Disks', 'd.vhdx'));
      },
      /Virtual Hard Disks\/d\.vhdx is not a regular file \(a symlink\)/,
    );
    refused(
      vmms,
      (f) => {
        rmSync(join(f, 'Virtual Machines'), { recursive: true });
        symlinkSync(join(good, 'Virtual Machines'), join(f, 'Virtual Machines'));
      },
      /Virtual Machines is not a directory \(a symlink/,
    );
    refused(vmms, (f) => truncateSync(def(f), MAX_DEFINITION_BYTES + 1), `is ${MAX_DEFINITION_BYTES + 1} bytes (at most ${MAX_DEFINITION_BYTES})`);
    refused(vmms, (f) => writeFileSync(join(f, 'Virtual Machines', 'extra.json'), '{}'), '"Virtual Machines" must hold one definition (<id>.json), not 2');
    refused(vmms, (f) => writeFileSync(join(f, 'Virtual Hard Disks', 'd.vhdx'), 'qcow' + '\0'.repeat(1020)), /disk Virtual Hard Disks\/d\.vhdx: /);
    // A differencing file whose parent lies outside the folder (the locator climbs out).
    const outside = join(dir, 'outside.vhdx');
    newDisk(outside, { kind: 'dynamic', sizeBytes: 4 * MiB, blockSizeBytes: MiB });
    refused(
      vmms,
      (f) => {
        rmSync(join(f, 'Virtual Hard Disks', 'd.vhdx'));
        newDisk(join(f, 'Virtual Hard Disks', 'd.vhdx'), { kind: 'differencing', parentPath: outside });
      },
      /its parent locator points outside "Virtual Hard Disks\/"/,
    );
    refused(vmms, (f) => mkdirSync(join(f, 'Snapshots', 'sub')), /Snapshots\/sub: an unexpected name|Snapshots\/sub is not a regular file/);
    // Refused after the disks were copied (the host's memory budget): the copies go again.
    refused(other.vmms, () => {}, 'can never fit the host memory budget', join(other.dir, 'copies'));
    // And a good one still imports.
    expect(vmms.importVm(good, {}).vm).toBe('h');
  }, 60_000);
});
