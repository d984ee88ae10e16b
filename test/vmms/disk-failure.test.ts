/**
 * A disk that fails under a running VM: the guest gets its error (the storage tests check the
 * sense), and VMMS shows it too — the VM's health goes to Major Failure with the error naming the
 * file, and no later success (the guest's next reads, its flush, its orderly stop) clears it.
 * The next start, on a disk that works again, is healthy. The failure is a real ENOSPC: the image
 * lies on a tmpfs too small for it (mounting needs root; skipped otherwise).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
const mounts: string[] = [];

beforeAll(async () => {
  await buildGuests(['storage-synthetic']);
});
afterAll(async () => {
  for (const m of mounts) spawnSync('umount', ['-l', m]); // before the fixture removes the directory holding it
  expect(await fx.cleanup()).toEqual([]);
});

describe('a failing disk under a running VM', () => {
  it('makes the VM Major Failure with the error naming the file, sticky until the next start', async (ctx) => {
    const dataDir = fx.dataDir();
    const small = join(dataDir, 'small');
    mkdirSync(small);
    // 64 KiB of room for an 8 MiB sparse image: the guest's 128 KiB pattern write runs out of space.
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]).status !== 0) ctx.skip();
    mounts.push(small);
    const image = join(small, 'scsi.raw');
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 8 * MiB);
    closeSync(fd);

    const v = await fx.vmms({ dataDir });
    v.defineVm({
      name: 'full',
      memoryBytes: 32 * MiB,
      imagePath: guestImagePath('storage-synthetic'),
      devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: image }] }],
    });
    expect(await v.start('full')).toMatchObject({ returnValue: 0 });
    // The guest writes, reads back (a mismatch: the write failed), reads at random, flushes and halts.
    await waitFor('the guest to finish', () => v.get('full')!.enabledState === 3, 30_000);
    expect(v.console('full')).toMatch(/storvsc_open=1/);
    const after = v.get('full')!;
    expect(after.healthState).toBe(20);
    expect(after.lastError).toMatch(new RegExp(`^disk image ${image}: write failed at sector \\d+ \\(ENOSPC\\)`));

    // Room again: the next run is healthy and its error gone.
    expect(spawnSync('mount', ['-o', 'remount,size=16m', small]).status).toBe(0);
    expect(await v.start('full')).toMatchObject({ returnValue: 0 });
    await waitFor('the guest to finish again', () => v.get('full')!.enabledState === 3, 30_000);
    expect(v.get('full')).toMatchObject({ healthState: 5, lastError: null });
  }, 90_000);
});
