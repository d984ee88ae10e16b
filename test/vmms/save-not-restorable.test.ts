/**
 * A saved VM must be able to run again: a restored VP 0 enters the image's `resume()`, so a VM
 * whose image has none is not saved at all — the save is refused and the VM runs on, and an
 * automatic stop action of Save falls back to turning it off.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let idle: string;

beforeAll(async () => {
  await buildGuests(['idle']);
  idle = guestImagePath('idle');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

describe('save of a guest that cannot be restored', { timeout: 120_000 }, () => {
  it('is refused with the reason; the VM runs on and no saved state is left', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const vm = v.defineVm({ name: 'nores', memoryBytes: 16 * MiB, imagePath: idle, cmdline: '' });
    expect((await v.start('nores')).returnValue).toBe(0);
    await waitFor('idle', () => /idle/.test(v.console('nores')));
    const r = await v.save('nores');
    expect(r.returnValue).not.toBe(0);
    expect(r.error).toMatch(/no resume export/);
    expect(v.get('nores')).toMatchObject({ enabledState: 2 });
    expect(existsSync(join(dataDir, 'saved', `${vm.id}.vmrs`))).toBe(false);
    expect((await v.turnOff('nores')).returnValue).toBe(0);
  });
});
