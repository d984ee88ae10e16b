/**
 * The interactive guest behind `bench sched`'s wake-to-run figure: it reports one latency per
 * timer tick, measured by itself from the timer message's ExpirationTime, and the bench reads
 * those lines into percentiles.
 */
import { afterEach, expect, it } from 'vitest';
import { GuestHarness } from '../../root-partition/sdk/harness.ts';
import { latencySummary } from '../../bench/sched.ts';

let h: GuestHarness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

it('reports one latency per tick, in lines of 32, and stops reporting at samples=', { timeout: 60_000 }, async () => {
  h = await GuestHarness.boot({ image: 'interactive', cmdline: 'tick=2000 burst=50 samples=64', timeoutMs: 30_000 });
  await h.waitFor('interactive done\n');
  const lines = h
    .console()
    .split('\n')
    .filter((l) => l.startsWith('lat '));
  expect(lines).toHaveLength(2);
  const values = lines.flatMap((l) => l.slice(4).split(' ').map(Number));
  expect(values).toHaveLength(64);
  // Each is a real delay: never negative, under a second (100 ns units).
  for (const v of values) expect(v).toBeGreaterThanOrEqual(0), expect(v).toBeLessThan(10_000_000);
  const s = latencySummary(h.console(), 0);
  expect(s.samples).toBe(64);
  expect(s.p50Us).toBeLessThanOrEqual(s.p99Us);
  expect(s.p99Us).toBeLessThanOrEqual(s.maxUs);
});

it('the summary is the percentiles of the lines, in µs', () => {
  const text = 'interactive\nlat 10 20 30 40\nlat 1000 50\nother line\n';
  expect(latencySummary(text, 12.5)).toEqual({ samples: 6, p50Us: 4, p99Us: 100, maxUs: 100, usedPercent: 12.5 });
});
