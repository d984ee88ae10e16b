/**
 * A guest cannot fill the host's disk through its VM's log: 20,000 VMBus messages the host must
 * refuse give at most the limiter's burst of lines plus summaries of what was suppressed, and
 * the VM runs on. Rotation and size caps of the files themselves: test/vmms/log-files.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { DEFAULT_GUEST_LOG_LIMITS } from '../../root-partition/vmwp/guest-log-limiter.ts';
import { MiB, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
beforeAll(async () => {
  await buildGuests(['message-flood']);
  image = guestImagePath('message-flood');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

describe('guest-caused log lines', () => {
  it('20,000 refused VMBus messages: a burst of lines, then a summary with the exact count suppressed', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const count = 20_000;
    const vm = v.defineVm({
      name: 'noisy',
      memoryBytes: 16 * MiB,
      imagePath: image,
      cmdline: `count=${count}`,
      devices: [{ kind: 'integration-services' }] as never,
    });
    expect((await v.start('noisy')).returnValue).toBe(0);
    await waitFor('the tally', () => /message-flood: posted=\d+/.test(v.console('noisy')), 60_000);
    expect(v.console('noisy')).toMatch(new RegExp(`posted=${count} retries=\\d+ other=0`));
    expect(v.get('noisy')).toMatchObject({ enabledState: 2, healthState: 5 });
    expect((await v.turnOff('noisy')).returnValue).toBe(0);
    const log = join(dataDir, 'logs', `vmwp-${vm.id}.log`);
    await waitFor('the worker log to be closed', () => readFileSync(log, 'utf8').includes('worker exits'), 10_000);
    const messages = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).message as string);
    const refusals = messages.filter((m) => m.includes('VMBUS_BAD_MESSAGE') && !m.includes('suppressed'));
    const summaries = messages.filter((m) => m.includes('VMBUS_BAD_MESSAGE: suppressed'));
    expect(refusals.length).toBeGreaterThanOrEqual(DEFAULT_GUEST_LOG_LIMITS.burst);
    expect(refusals.length).toBeLessThanOrEqual(DEFAULT_GUEST_LOG_LIMITS.burst * (summaries.length + 1));
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    const suppressed = summaries.reduce((n, m) => n + Number(/suppressed (\d+) similar/.exec(m)![1]), 0);
    expect(refusals.length + suppressed).toBe(count);
    expect(refusals[0]).toMatch(/^devices: vmbus VMBUS_BAD_MESSAGE: SynIC message type 2, 16 bytes on connection 1$/);
  }, 90_000);
});
