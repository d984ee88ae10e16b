/**
 * An idle VM costs nothing measurable: the worker of a guest halted for good (interrupts on, no
 * timer) is not woken periodically — its threads (the main thread, the device thread, the VP)
 * together sleep until something happens. The count is the kernel's: voluntary context switches
 * of the worker's threads from /proc/<pid>/task/<tid>/status.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();

beforeAll(async () => {
  await buildGuests(['idle']);
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** Voluntary context switches of the threads the worker created after taking its title. */
function workerWakeups(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    if (!/^Name:\s*tsvisor-vmwp/m.test(status)) continue; // V8's and libuv's own threads start before
    n += Number(/^voluntary_ctxt_switches:\s*(\d+)$/m.exec(status)![1]);
  }
  return n;
}

describe('an idle VM', { timeout: 120_000 }, () => {
  it("a halted guest: its worker's threads are woken fewer than 5 times a second (not every 10-20 ms)", async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    v.defineVm({ name: 'idle', memoryBytes: 16 * MiB, imagePath: guestImagePath('idle'), cmdline: '' });
    expect((await v.start('idle')).returnValue).toBe(0);
    await waitFor('the guest to idle', () => v.console('idle').includes('idle\n'));
    await new Promise((r) => setTimeout(r, 500));
    const pid = v.get('idle')!.processId!;
    const before = workerWakeups(pid);
    await new Promise((r) => setTimeout(r, 2000));
    const perSecond = (workerWakeups(pid) - before) / 2;
    expect(perSecond).toBeLessThan(5);
    // Idle is not deaf: a request is answered at once.
    const t0 = performance.now();
    await v.counters('idle');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect((await v.turnOff('idle')).returnValue).toBe(0);
  });
});
