/**
 * A guest's console output cannot crash its worker or make it hold without bound: one `rep outsb`
 * of 17 MiB (above the 16 MiB IPC frame limit) is cut to the newest bytes the worker keeps, the
 * cut is counted, the frames to VMMS stay small, and the VM runs on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { CONSOLE_PENDING_MAX } from '../../root-partition/vmwp/console-output-buffer.ts';
import { MiB, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
beforeAll(async () => {
  await buildGuests(['console-flood']);
  image = guestImagePath('console-flood');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** Byte i of the guest's pattern. */
const pattern = (i: number) => ((i & 63) === 63 ? '\n' : String.fromCharCode(97 + (i % 26)));

describe('console flood', () => {
  it('one 17 MiB rep outsb: the worker lives, keeps the newest bytes exactly and counts the rest', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    const bytes = 17 * MiB;
    v.defineVm({ name: 'flood', memoryBytes: 40 * MiB, imagePath: image, cmdline: `bytes=${bytes}` });
    expect((await v.start('flood')).returnValue).toBe(0);
    await waitFor('the closing line', () => v.console('flood').includes(`console-flood: done bytes=${bytes} times=1\n`), 30_000);
    expect(v.get('flood')).toMatchObject({ enabledState: 2, healthState: 5 });
    // The newest bytes of the flood arrive exactly, just before the closing line.
    const text = v.console('flood');
    const end = text.indexOf('\nconsole-flood: done');
    const tail = 64 * 1024;
    let expected = '';
    for (let i = bytes - tail; i < bytes; i++) expected += pattern(i);
    expect(text.slice(end - tail, end)).toBe(expected);
    const c = await v.counters('flood');
    expect(c.consoleDroppedBytes).toBe(bytes - CONSOLE_PENDING_MAX);
    expect(c.consoleBytes).toBe(CONSOLE_PENDING_MAX + `\nconsole-flood: done bytes=${bytes} times=1\n`.length);
    expect((await v.turnOff('flood')).returnValue).toBe(0);
  }, 60_000);
});
