/**
 * Removing a checkpoint whose file lies deeper in a running VM's chain than its drive's own file,
 * through VMMS and a real worker: `ref-enlightened` writes between checkpoints c1, c2 and c3
 * (chain base ← d1 ← d2 ← leaf), then c2 is removed while the guest runs and writes. The worker
 * merges d2 into d1 live (vmwp/chain-merge.ts), d1 takes d2's name. Then c1 is removed: the
 * first checkpoint's file (d2 now) is merged into the operator's base, which keeps its name, and
 * the running leaf is pointed at the base. The guest, tsvisor and libvhdi all read the same
 * sectors afterwards; c3 names the base, which reads as c3 was taken.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { writableDisks } from '../../root-partition/vmms/checkpoint-tree.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { PROMPT } from '../guests/shell-rig.ts';
import { MiB, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
const pyvhdi = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import pyvhdi']).status === 0;
beforeAll(async () => {
  await buildGuests(['ref-enlightened']);
  image = guestImagePath('ref-enlightened');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** Sector texts (up to the first zero byte) read through the chain at `path` (no lock: the VM may hold it). */
function texts(path: string, lbas: number[]): string[] {
  const d = openDisk(path, { readOnly: true, lock: false });
  try {
    return lbas.map((lba) => {
      const b = Buffer.alloc(512);
      d.read(lba, b);
      const end = b.indexOf(0);
      return b.subarray(0, end < 0 ? 512 : end).toString('latin1');
    });
  } finally {
    d.close();
  }
}

/** The same sectors read by libvhdi through the chain `files` (base first). */
function libvhdiTexts(files: string[], lbas: number[]): string[] {
  const py = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      `
import pyvhdi, sys
files = []
for f in sys.argv[2:]:
    d = pyvhdi.file(); d.open(f)
    if files: d.set_parent(files[-1])
    files.append(d)
for lba in sys.argv[1].split(','):
    b = files[-1].read_buffer_at_offset(512, int(lba) * 512)
    print(b.split(b'\\0')[0].decode('latin1'))`,
      lbas.join(','),
      ...files,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(py.status, py.stderr).toBe(0);
  return py.stdout.split('\n').slice(0, lbas.length);
}

describe("removing a checkpoint deep in a running VM's chain", () => {
  it('merges its file into its parent while the guest writes; the guest, tsvisor and libvhdi agree', { timeout: 120_000 }, async () => {
    const dir = fx.dataDir();
    const v = await fx.vmms({ dataDir: dir });
    const base = join(dir, 'disk.vhdx');
    newDisk(base, { kind: 'dynamic', sizeBytes: 4 * MiB, blockSizeBytes: MiB });
    v.defineVm({
      name: 'deep',
      memoryBytes: 32 * MiB,
      imagePath: image,
      devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: base }] }, { kind: 'integration-services' }] as never,
    });
    let text = '';
    const id = v.get('deep')!.id;
    v.events.on('console', (e: { vmId: string; data: Uint8Array }) => {
      if (e.vmId === id) text += Buffer.from(e.data).toString('latin1');
    });
    const prompts = () => text.split(PROMPT).length - 1;
    const type = async (line: string) => {
      const before = prompts();
      await v.consoleInput('deep', Buffer.from(`${line}\r`, 'latin1'));
      await waitFor(`the answer to "${line}"`, () => prompts() > before, 30_000);
    };
    const drive = () => writableDisks(v.get('deep')!.devices)[0].path;
    expect((await v.start('deep')).returnValue).toBe(0);
    await waitFor('the first prompt', () => text.includes(PROMPT), 30_000);
    await type('write 0 20 base');
    const c1 = await v.checkpoints.create('deep', 'c1');
    expect(c1.returnValue, c1.error).toBe(0);
    const d1 = drive();
    await type('write 0 21 after c1');
    await type('write 0 20 c1 over base');
    const c2 = await v.checkpoints.create('deep', 'c2');
    expect(c2.returnValue, c2.error).toBe(0);
    const d2 = drive();
    await type('write 0 22 after c2');
    await type('write 0 21 c2 over c1');
    const c3 = await v.checkpoints.create('deep', 'c3');
    expect(c3.returnValue, c3.error).toBe(0);
    const leaf = drive();
    await type('write 0 23 after c3');

    // c2's file d1 is needed by nothing but d2, which the running leaf builds on: merged live.
    const removing = v.checkpoints.remove('deep', 'c2');
    await type('write 0 24 during the merge');
    const removed = await removing;
    expect(removed.returnValue, removed.error).toBe(0);
    expect(removed.deferred).toEqual([]);
    expect(removed.done?.[0]).toMatch(new RegExp(`^merged ${d2} into ${d1}, which took its name, while the VM ran; its disk I/O paused [0-9.]+ ms`));
    console.log(`deep live merge of a running VM's chain: ${removed.done?.[0]}`);
    expect(v.get('deep')!.state).toBe('Running');
    expect(drive()).toBe(leaf);
    expect(existsSync(d1)).toBe(false);
    expect(v.checkpoints.list('deep').map((c) => [c.name, c.disks])).toEqual([
      ['c1', [base]],
      ['c3', [d2]],
    ]);
    expect(v.checkpoints.get('deep', 'c3')!.parentId).toBe(c1.checkpoint!.id);

    await type('write 0 25 after the merge');

    // c1 froze the operator's base, which d2 (c3's file) builds on, and the running leaf on d2:
    // d2 is merged into the base live, which keeps its name, and the leaf is pointed at it —
    // through the drive's own open file.
    const removingBase = v.checkpoints.remove('deep', 'c1');
    await type('write 0 26 during the base merge');
    const intoBase = await removingBase;
    expect(intoBase.returnValue, intoBase.error).toBe(0);
    expect(intoBase.deferred).toEqual([]);
    expect(intoBase.done?.[0]).toMatch(
      new RegExp(`^merged ${d2} into ${base}, and pointed ${leaf} at it, while the VM ran; its disk I/O paused [0-9.]+ ms for the switch$`),
    );
    expect(intoBase.done).toHaveLength(1);
    console.log(`live merge into a running VM's base disk: ${intoBase.done?.[0]}`);
    expect(v.get('deep')!.state).toBe('Running');
    expect(drive()).toBe(leaf);
    expect(existsSync(d2)).toBe(false);
    expect(v.checkpoints.list('deep').map((c) => [c.name, c.disks, c.parentId])).toEqual([['c3', [base], null]]);
    await type('write 0 27 after the base merge');

    const lbas = [20, 21, 22, 23, 24, 25, 26, 27];
    const expected = [
      'c1 over base',
      'c2 over c1',
      'after c2',
      'after c3',
      'during the merge',
      'after the merge',
      'during the base merge',
      'after the base merge',
    ];
    // The guest's own view: each sector's first 16 bytes in its hex dump's text column.
    for (const [i, lba] of lbas.entries()) {
      const at = text.length;
      await type(`read 0 ${lba}`);
      const row = /\|([^|]{1,16})\|/.exec(text.slice(at))?.[1] ?? '';
      expect(row.replace(/\.+$/, '')).toBe(expected[i].slice(0, 16));
    }
    expect(texts(leaf, lbas)).toEqual(expected);
    expect((await v.turnOff('deep')).returnValue).toBe(0);
    // Offline: tsvisor and libvhdi read the chain leaf ← base alike; the base, c3's file now,
    // reads as when c3 was taken.
    expect(texts(leaf, lbas)).toEqual(expected);
    if (pyvhdi) expect(libvhdiTexts([base, leaf], lbas)).toEqual(expected);
    const atC3 = ['c1 over base', 'c2 over c1', 'after c2', '', '', '', '', ''];
    expect(texts(base, lbas)).toEqual(atC3);
    if (pyvhdi) expect(libvhdiTexts([base], lbas)).toEqual(atC3);
    const check = spawnSync('qemu-img', ['check', base], { encoding: 'utf8' });
    if (check.error === undefined) expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
