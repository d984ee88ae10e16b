/**
 * A standard checkpoint of a running enlightened guest on a VHDX disk, through VMMS and a real
 * worker: `ref-enlightened` writes a sector through storvsc, is checkpointed while it runs (its
 * whole state saved, its drive moved to a differencing child, the VM never stopped), writes
 * more, and the checkpoint is applied: the guest continues from the checkpoint's instant — its
 * own command counters as they were — on the disk as it was; removing the checkpoint then merges
 * the running drive's file into the base without stopping the guest, which writes on. A checkpoint that fails after its
 * drive switch is undone first: drive back on its file, no files left, the guest running on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { writableDisks } from '../../root-partition/vmms/checkpoint-tree.ts';
import { CHECKPOINT_FAULT_ENV } from '../../root-partition/vmwp/running-checkpoint.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { PROMPT } from '../guests/shell-rig.ts';
import { MiB, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
beforeAll(async () => {
  await buildGuests(['ref-enlightened']);
  image = guestImagePath('ref-enlightened');
});
afterAll(async () => {
  delete process.env[CHECKPOINT_FAULT_ENV];
  expect(await fx.cleanup()).toEqual([]);
});

/** A sector's text (up to its first zero byte), read through the whole chain (no lock: the VM may hold it). */
function sectorText(path: string, lba: number): string {
  const d = openDisk(path, { readOnly: true, lock: false });
  try {
    const b = Buffer.alloc(512);
    d.read(lba, b);
    const end = b.indexOf(0);
    return b.subarray(0, end < 0 ? 512 : end).toString('latin1');
  } finally {
    d.close();
  }
}

describe('a checkpoint of a running VM', () => {
  it('ref-enlightened checkpointed mid-run, written on, and returned to the checkpoint: counters and disk as they were', { timeout: 120_000 }, async () => {
    const dir = fx.dataDir();
    const v = await fx.vmms({ dataDir: dir });
    const base = join(dir, 'disk.vhdx');
    newDisk(base, { kind: 'dynamic', sizeBytes: 4 * MiB, blockSizeBytes: MiB });
    v.defineVm({
      name: 'run',
      memoryBytes: 32 * MiB,
      imagePath: image,
      devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: base }] }, { kind: 'integration-services' }] as never,
    });
    let text = '';
    const id = v.get('run')!.id;
    v.events.on('console', (e: { vmId: string; data: Uint8Array }) => {
      if (e.vmId === id) text += Buffer.from(e.data).toString('latin1');
    });
    const prompts = () => text.split(PROMPT).length - 1;
    const type = async (line: string) => {
      const before = prompts();
      await v.consoleInput('run', Buffer.from(`${line}\r`, 'latin1'));
      await waitFor(`the answer to "${line}"`, () => prompts() > before, 30_000);
    };
    // The first checkpoint fails after the drive switch (injected): undone, the VM runs on.
    process.env[CHECKPOINT_FAULT_ENV] = 'switched';
    expect((await v.start('run')).returnValue).toBe(0);
    delete process.env[CHECKPOINT_FAULT_ENV];
    await waitFor('the first prompt', () => text.includes(PROMPT), 30_000);
    await type('write 0 10 before the checkpoint');
    const failed = await v.checkpoints.create('run', 'undone');
    expect(failed.returnValue).toBe(32768);
    expect(failed.error).toMatch(/injected checkpoint failure after the step "switched"/);
    expect(v.get('run')!.state).toBe('Running');
    expect(writableDisks(v.get('run')!.devices)[0].path).toBe(base);
    expect(readdirSync(dir).filter((f) => f.endsWith('.avhdx'))).toEqual([]);
    expect(v.checkpoints.list('run')).toEqual([]);
    await type('write 0 12 still on the base');

    const cp = await v.checkpoints.create('run', 'mid-run');
    expect(cp, cp.error).toMatchObject({ returnValue: 0, checkpoint: { name: 'mid-run', hasSavedState: true, disks: [base] } });
    expect(v.get('run')!.state).toBe('Running');
    const leaf = writableDisks(v.get('run')!.devices)[0].path;
    expect(leaf).not.toBe(base);
    // The figure docs/lifecycle.md reports, with the worker's breakdown of it.
    const line = readFileSync(join(dir, 'logs', `vmwp-${id}.log`), 'utf8')
      .split('\n')
      .find((l) => l.includes('checkpoint saved to'));
    console.log(
      `checkpoint of a running VM (32 MiB, ref-enlightened): paused ${cp.pauseMs!.toFixed(1)} ms; worker: ${line && JSON.parse(line).message.replace(/.*; paused/, 'paused')}`,
    );
    // The guest runs on the child now.
    await type('write 0 10 after the checkpoint');
    await type('write 0 11 later still');
    await type('counters');
    expect(text).toMatch(/shell: commands=5 errors=0 reads=0 writes=4 /);
    expect(sectorText(leaf, 10)).toBe('after the checkpoint');
    expect(sectorText(base, 10)).toBe('before the checkpoint');

    const applied = await v.checkpoints.apply('run', 'mid-run');
    expect(applied.returnValue, applied.error).toBe(0);
    expect(v.get('run')!.state).toBe('Saved');
    expect(existsSync(leaf)).toBe(false);
    const restoredLeaf = writableDisks(v.get('run')!.devices)[0].path;
    text = '';
    expect((await v.start('run')).returnValue).toBe(0);
    // The guest's own memory is the checkpoint's: two commands then, one more now.
    await type('counters');
    expect(text).toMatch(/shell: commands=3 errors=0 reads=0 writes=2 /);
    await type('read 0 11');
    await type('write 0 13 after the apply');
    // The checkpoint's frozen file is as it was taken.
    expect(sectorText(base, 13)).toBe('');
    // Removing it while the VM runs merges the drive's file into the base without stopping the
    // VM: the guest runs on, on its own disk, with everything it wrote.
    const removed = await v.checkpoints.remove('run', 'mid-run');
    expect(removed.returnValue, removed.error).toBe(0);
    expect(removed.deferred).toEqual([]);
    expect(removed.done?.[0]).toMatch(new RegExp(`merged ${restoredLeaf} into ${base} while the VM ran; its disk I/O paused [0-9.]+ ms`));
    console.log(`live merge of a running VM's drive: ${removed.done?.[0]}`);
    expect(v.get('run')!.state).toBe('Running');
    expect(writableDisks(v.get('run')!.devices)[0].path).toBe(base);
    expect(existsSync(restoredLeaf)).toBe(false);
    await type('write 0 14 after the merge');
    await type('counters');
    expect(text).toMatch(/shell: commands=7 errors=0 reads=1 writes=4 /);
    expect((await v.turnOff('run')).returnValue).toBe(0);
    expect(['before the checkpoint', '', 'still on the base', 'after the apply', 'after the merge'].map((_, i) => sectorText(base, 10 + i))).toEqual([
      'before the checkpoint',
      '',
      'still on the base',
      'after the apply',
      'after the merge',
    ]);
    const check = spawnSync('qemu-img', ['check', base], { encoding: 'utf8' });
    if (check.error === undefined) expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(existsSync(join(v.paths.checkpointsDir, id, `${cp.checkpoint!.id}.vmrs`))).toBe(false);

    // A checkpoint whose answer is lost (a VMMS that gives up after 1 ms): the VM is turned off
    // and the files decide — kept whole, or dropped with no drive switched; never half of each.
    expect((await v.start('run')).returnValue).toBe(0);
    await fx.detach(v);
    const impatient = await fx.vmms({ dataDir: dir, operationTimeoutMs: 1 });
    expect(impatient.get('run')!.state).toBe('Running');
    const lost = await impatient.checkpoints.create('run', 'unanswered');
    expect(impatient.get('run')!.state).toBe('Off');
    const drive = writableDisks(impatient.get('run')!.devices)[0].path;
    const kept = impatient.checkpoints.list('run');
    if (lost.returnValue === 0) {
      expect(kept).toMatchObject([{ name: 'unanswered', hasSavedState: true, disks: [base] }]);
      expect(drive).not.toBe(base);
      expect(existsSync(join(impatient.paths.checkpointsDir, id, `${kept[0]!.id}.vmrs`))).toBe(true);
    } else {
      expect(kept).toEqual([]);
      expect(drive).toBe(base);
      expect(readdirSync(dir).filter((f) => f.endsWith('.avhdx'))).toEqual([]);
    }
    console.log(`unanswered checkpoint: ${lost.returnValue === 0 ? 'kept' : `dropped (${lost.error})`}`);
    expect(sectorText(drive, 13)).toBe('after the apply');
  });
});
