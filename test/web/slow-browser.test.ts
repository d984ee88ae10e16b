/**
 * A browser that stops reading never slows a VM nor makes the VMMS hold more: a guest floods its
 * console (32 MiB through COM1, in 256 KiB writes) while one attached browser's connection is stalled. The guest
 * finishes regardless; the stalled stream's queue stays within its bound and its connection
 * buffer near its high-water mark; when the browser reads again it gets the "output dropped"
 * count and then the newest output, ending with the guest's closing line.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HIGH_WATER_BYTES } from '../../root-partition/management/web/event-stream.ts';
import { buildGuests } from '../../scripts/build-guests.ts';
import { MiB, waitFor } from '../vmms/vmms-fixture.ts';
import { USERS, WebTestHost } from './web-fixture.ts';

const QUEUE_BYTES = 64 * 1024;
/** Console bytes the VMMS must have passed on: well above what the kernel's socket buffers take (a few MiB on loopback). */
const TARGET = 8 * 1024 * 1024;
const host = new WebTestHost();

beforeAll(async () => {
  await buildGuests(['console-flood']);
  await host.start({ consoleQueueBytes: QUEUE_BYTES });
}, 120_000);

afterAll(async () => {
  expect(await host.stop()).toEqual([]);
}, 60_000);

describe('a slow browser', () => {
  it('gets a bounded, marked console while the guest floods at full speed', async () => {
    const admin = host.client();
    await admin.login('admin', USERS[0]!.password);
    // Many writes under the worker's own console bound, so that most of the flood reaches the VMMS.
    const bytes = 256 * 1024;
    const times = 128;
    const vm = host.vmms.defineVm({
      name: 'flood',
      memoryBytes: 40 * MiB,
      imagePath: (await import('../../scripts/build-guests.ts')).guestImagePath('console-flood'),
      cmdline: `bytes=${bytes} times=${times}`,
    });

    // The stalled browser: an event stream with the console attached, read up to its headers, then not at all.
    const url = new URL(host.url);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((r) => socket.once('connect', r));
    socket.write(`GET /api/events?console=${vm.id} HTTP/1.1\r\nHost: ${url.host}\r\nCookie: ${admin.cookie}\r\n\r\n`);
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    await waitFor('the stream headers', () => Buffer.concat(received).includes('text/event-stream'));
    socket.pause();
    const stream = [...host.web.server!.streams][0]!;

    let emitted = 0;
    host.vmms.events.on('console', (e: { data: Uint8Array }) => {
      emitted += e.data.length;
    });
    let maxQueued = 0;
    let maxBuffered = 0;
    const watch = setInterval(() => {
      maxQueued = Math.max(maxQueued, stream.queue.queuedConsoleBytes);
      maxBuffered = Math.max(maxBuffered, stream.bufferedBytes);
    }, 5);
    // Boots counted by the guest's closing line, which may straddle two console chunks.
    let boots = 0;
    let carry = '';
    host.vmms.events.on('console', (e: { data: Uint8Array }) => {
      const text = carry + Buffer.from(e.data).toString('latin1');
      boots += text.split('console-flood: done').length - 1;
      carry = text.slice(-32).replace(/^[\s\S]*console-flood: done/, '');
    });
    try {
      expect((await host.vmms.start('flood')).returnValue).toBe(0);
      host.fx.pids.add(host.vmms.get('flood')!.processId!);
      // The worker passes on what it can of each flood (it bounds its own buffer); resets repeat
      // the flood until far more has reached the VMMS than the kernel's socket buffers can hold.
      for (let boot = 1; emitted < TARGET; boot++) {
        await waitFor(`flood ${boot} to finish`, () => boots >= boot || emitted >= TARGET, 60_000);
        if (emitted < TARGET) expect((await host.vmms.reset('flood')).returnValue).toBe(0);
        expect(boot).toBeLessThan(20);
      }
      // Off: the output is final, so what the browser gets last can be compared with it.
      expect((await host.vmms.turnOff('flood')).returnValue).toBe(0);
    } finally {
      clearInterval(watch);
    }
    // The VMMS got every flood while the browser read nothing.
    expect(emitted).toBeGreaterThanOrEqual(TARGET);
    // What the connection and the kernel's socket buffers took is gone to the browser; the rest was dropped here.
    expect(stream.queue.droppedConsoleBytes).toBeGreaterThan(1 * MiB);
    expect(maxQueued).toBeLessThanOrEqual(QUEUE_BYTES);
    // One frame (at most 16 KiB of console, base64) may be written past the mark.
    expect(maxBuffered).toBeLessThan(HIGH_WATER_BYTES + 24 * 1024);

    // Reading again: the dropped count, then the newest output exactly as the VMMS holds it.
    socket.resume();
    // The newest as VMMS holds it when compared: output the worker sent just before it was turned
    // off can reach VMMS (and the stream) after turnOff returns.
    let text = '';
    await waitFor(
      'the newest output through the stream',
      () => {
        text = Buffer.concat(received).toString('latin1');
        return decodeConsole(text).endsWith(host.vmms.console('flood').slice(-4096));
      },
      30_000,
    );
    expect(text).toMatch(/event: console-dropped\ndata: \{"id":"[0-9a-f-]+","bytes":\d+\}/);
    socket.destroy();
  }, 120_000);
});

/** The console bytes of every `console` frame in a raw (chunked) event stream. */
function decodeConsole(raw: string): string {
  let out = '';
  for (const m of raw.matchAll(/event: console\ndata: \{"id":"[^"]+","data":"([A-Za-z0-9+/=]*)"\}/g)) out += Buffer.from(m[1]!, 'base64').toString('latin1');
  return out;
}
