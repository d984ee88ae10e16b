/**
 * A saved VM must be able to run again: its VPs are captured with their stacks, which needs an
 * image prepared with capturable stacks (the default). A VM whose image was prepared without
 * them (TSVISOR_REWRITE=preemptible, inherited by the worker process) is not saved at all — the
 * save is refused naming the reason and the VM runs on.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let idle: string;
const rewriteBefore = process.env.TSVISOR_REWRITE;

beforeAll(async () => {
  await buildGuests(['idle']);
  idle = guestImagePath('idle');
  process.env.TSVISOR_REWRITE = 'preemptible';
});
afterAll(async () => {
  if (rewriteBefore === undefined) delete process.env.TSVISOR_REWRITE;
  else process.env.TSVISOR_REWRITE = rewriteBefore;
  expect(await fx.cleanup()).toEqual([]);
});

describe('save of a guest that cannot be captured', { timeout: 120_000 }, () => {
  it('is refused with the reason; the VM runs on and no saved state is left', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const vm = v.defineVm({ name: 'nores', memoryBytes: 16 * MiB, imagePath: idle, cmdline: '' });
    expect((await v.start('nores')).returnValue).toBe(0);
    await waitFor('idle', () => /idle/.test(v.console('nores')));
    const r = await v.save('nores');
    expect(r.returnValue).not.toBe(0);
    expect(r.error).toMatch(/prepared without capturable stacks \(TSVISOR_REWRITE/);
    expect(v.get('nores')).toMatchObject({ enabledState: 2 });
    expect(existsSync(join(dataDir, 'saved', `${vm.id}.vmrs`))).toBe(false);
    expect((await v.turnOff('nores')).returnValue).toBe(0);
  });
});
