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
import { checksumRound as round } from '../helpers/checksum-round.ts';

const fx = new VmmsFixture();
let image: string;
beforeAll(async () => {
  await buildGuests(['smp-work']);
  image = guestImagePath('smp-work');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const VPS = 4;
const ROUNDS = 120;
// A round takes milliseconds, so the 25 or more rounds left after the last save's mark outlast the
// save's own latency even on an idle host (the guest must still be running when it is saved).
const WORK = 1_500_000;
const SAVES = 4;

describe('save and restore of a multi-VP guest', () => {
  it(`${VPS} VPs saved at ${SAVES} random moments, each restored in a new worker, finish with the uninterrupted results`, { timeout: 120_000 }, async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    v.defineVm({ name: 'smp', memoryBytes: 32 * MiB, vpCount: VPS, imagePath: image, cmdline: `rounds=${ROUNDS} work=${WORK}` });
    let text = '';
    const id = v.get('smp')!.id;
    v.events.on('console', (e: { vmId: string; data: Uint8Array }) => {
      if (e.vmId === id) text += Buffer.from(e.data).toString('latin1');
    });
    const vp0Round = () => Number([...text.matchAll(/vp0 round=(\d+)/g)].at(-1)?.[1] ?? 0);
    expect((await v.start('smp')).returnValue).toBe(0);
    const pids = new Set<number>([v.get('smp')!.processId!]);
    // Paced by VP 0's progress, not by the clock, so the saves land mid-run on a fast or a loaded
    // host alike: after 10-20, 35-45, 60-70 and 85-95 of VP 0's 120 rounds, at a random moment.
    for (let i = 0; i < SAVES; i++) {
      const mark = 10 + 25 * i + 5 * Math.floor(Math.random() * 3);
      await waitFor(`VP 0 at round ${mark}`, () => vp0Round() >= mark, 60_000);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 20)));
      const saved = await v.save('smp');
      expect(saved, `save ${i}: ${saved.error ?? ''}`).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
      expect(text, 'the guest had not finished before this save').not.toMatch(/done/);
      expect((await v.start('smp')).returnValue).toBe(0);
      pids.add(v.get('smp')!.processId!);
    }
    expect(pids.size).toBe(SAVES + 1); // a new worker process for every restore
    await waitFor('the guest to finish', () => /counter=\d+ done/.test(text), 90_000);
    expect(text.match(/smp-work: vps=/g)).toHaveLength(1); // booted once, never again
    // VP 0's progress lines follow one another across every worker: no round repeated or skipped.
    expect([...text.matchAll(/vp0 round=(\d+)/g)].map((m) => Number(m[1]))).toEqual(Array.from({ length: ROUNDS / 10 }, (_, i) => (i + 1) * 10));
    const sums = Object.fromEntries([...text.matchAll(/vp (\d+) sum=([0-9a-f]{8})/g)].map((m) => [Number(m[1]), parseInt(m[2], 16)]));
    const expected: Record<number, number> = {};
    for (let vp = 0; vp < VPS; vp++) {
      let sum = vp + 1;
      for (let r = 0; r < ROUNDS; r++) sum = round(sum, r, WORK);
      expected[vp] = sum;
    }
    expect(sums).toEqual(expected);
    expect(Number(/counter=(\d+)/.exec(text)![1])).toBe(VPS * ROUNDS);
    // Every VP halts with interrupts off when the guest is done: the VM turns Off by itself.
    await waitFor('Off after the guest finished', () => v.get('smp')!.enabledState === 3, 20_000);
  });
});
