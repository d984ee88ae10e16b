/**
 * Whole-VM saved state of a multi-VP guest: four VPs compute their own checksum chains at once
 * (each in locals on its own call stack) and count every round into one shared counter. The VM
 * is saved at random moments and each time restored into a new worker process; in the end every
 * VP's sum and the counter equal an uninterrupted run's (recomputed here): no VP lost, repeated or
 * restarted a round, and the VPs that had not been started yet, or had finished, stayed so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
beforeAll(async () => {
  await buildGuests(['smp-work']);
  image = guestImagePath('smp-work');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** The guest's round (child-sdk/guests/smp-work), in u32 arithmetic. */
function round(sum: number, r: number, work: number): number {
  let x = (sum ^ Math.imul(r, 0x9e3779b9)) >>> 0;
  for (let i = 0; i < work; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    x = (x + i) >>> 0;
  }
  return (Math.imul(sum, 31) ^ x) >>> 0;
}

const VPS = 4;
const ROUNDS = 500;
const WORK = 20_000;
const SAVES = 4;

describe('save and restore of a multi-VP guest', () => {
  it(`${VPS} VPs saved at ${SAVES} random moments, each restored in a new worker, finish with the uninterrupted results`, { timeout: 120_000 }, async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    v.defineVm({ name: 'smp', memoryBytes: 32 * MiB, vpCount: VPS, imagePath: image, cmdline: `rounds=${ROUNDS} work=${WORK}` });
    expect((await v.start('smp')).returnValue).toBe(0);
    const pids = new Set<number>([v.get('smp')!.processId!]);
    let text = '';
    for (let i = 0; i < SAVES; i++) {
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 200)));
      const saved = await v.save('smp');
      expect(saved, `save ${i}`).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
      text += v.console('smp');
      expect(text, 'the guest had not finished before this save').not.toMatch(/done/);
      expect((await v.start('smp')).returnValue).toBe(0);
      pids.add(v.get('smp')!.processId!);
    }
    expect(pids.size).toBe(SAVES + 1); // a new worker process for every restore
    await waitFor('the guest to finish', () => /counter=\d+ done/.test(v.console('smp')), 90_000);
    text += v.console('smp');
    expect(text.match(/smp-work: vps=/g)).toHaveLength(1); // booted once, never again
    const sums = Object.fromEntries([...text.matchAll(/vp (\d+) sum=([0-9a-f]{8})/g)].map((m) => [Number(m[1]), parseInt(m[2], 16)]));
    const expected: Record<number, number> = {};
    for (let vp = 0; vp < VPS; vp++) {
      let sum = vp + 1;
      for (let r = 0; r < ROUNDS; r++) sum = round(sum, r, WORK);
      expected[vp] = sum;
    }
    expect(sums).toEqual(expected);
    expect(Number(/counter=(\d+)/.exec(text)![1])).toBe(VPS * ROUNDS);
    expect((await v.turnOff('smp')).returnValue).toBe(0);
  });
});
