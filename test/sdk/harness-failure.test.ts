/**
 * The SDK harness fails a wait at once when the guest panics or faults, with the guest's message
 * and source location, instead of timing out with nothing to go on.
 */
import { afterEach, expect, it } from 'vitest';
import { GuestHarness } from '../../root-partition/sdk/harness.ts';

let h: GuestHarness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

it('a guest assertion fails waitFor at once with its message and location', { timeout: 60_000 }, async () => {
  h = await GuestHarness.boot({ image: 'probe', cmdline: 'panic', timeoutMs: 30_000 });
  const started = Date.now();
  await expect(h.waitFor('never printed\n')).rejects.toThrow(
    /^VP 0: guest panic: .*probe asked to panic.*probe\/main\.ts.*\d+.*\(while waiting for never printed/s,
  );
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(h.vpExit(0)).toMatchObject({ reason: 'fault', kind: 'panic' });
});

it('a fault (#GP from an unknown MSR) is named the same way; output before it stays visible', { timeout: 60_000 }, async () => {
  h = await GuestHarness.boot({ image: 'probe', cmdline: 'gp', timeoutMs: 30_000 });
  const err = await h.waitFor('enabled=').then(
    () => null,
    (e: Error) => e,
  );
  expect(err?.message).toMatch(/^VP 0: guest fault \(gp\): .*\(while waiting for enabled=\); console so far:\n.*hv=1\n/s);
});
