/**
 * The worker's console bounds: the device thread's byte ring keeps the newest bytes exactly and
 * counts what it dropped, whatever the guest writes; the control server cuts any console write
 * into frames far below the IPC frame limit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import { decodeBulk } from '../../root-partition/ipc/bulk-codec.ts';
import { FrameChannel, FrameReader, MAX_FRAME_BYTES } from '../../root-partition/ipc/frame-codec.ts';
import { CONSOLE_BACKLOG, ControlServer } from '../../root-partition/vmwp/control-server.ts';
import { ConsoleOutputBuffer } from '../../root-partition/vmwp/console-output-buffer.ts';

const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

describe('console output buffer', () => {
  it('passes bytes through in order, in pieces no larger than asked', () => {
    const b = new ConsoleOutputBuffer(16);
    b.write(bytes(0, 5));
    b.write(bytes(5, 6));
    expect(b.pending).toBe(11);
    expect([...b.take(4)!]).toEqual([0, 1, 2, 3]);
    b.write(bytes(11, 8)); // wraps around the ring's end
    expect([...b.take(100)!]).toEqual([...bytes(4, 15)]);
    expect(b.take(1)).toBeNull();
    expect(b.dropped).toBe(0);
  });

  it('drops the oldest bytes beyond capacity and counts them', () => {
    const b = new ConsoleOutputBuffer(16);
    b.write(bytes(0, 10));
    b.write(bytes(10, 10));
    expect(b.pending).toBe(16);
    expect(b.dropped).toBe(4);
    expect([...b.take(16)!]).toEqual([...bytes(4, 16)]);
  });

  it('one write larger than the ring keeps only its tail', () => {
    const b = new ConsoleOutputBuffer(16);
    b.write(bytes(0, 3));
    b.write(bytes(100, 1000));
    expect(b.dropped).toBe(3 + 1000 - 16);
    expect([...b.take(16)!]).toEqual([...bytes(100 + 1000 - 16, 16)]);
  });

  it('flood: 200,000 writes of 1 KiB with no reader hold the ring size, no more', () => {
    const b = new ConsoleOutputBuffer(1 << 20);
    const chunk = bytes(7, 1024);
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200_000; i++) b.write(chunk);
    expect(b.pending).toBe(1 << 20);
    expect(b.dropped).toBe(200_000 * 1024 - (1 << 20));
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(8 << 20);
    const out = b.take(1 << 20)!;
    for (let i = 0; i < out.length; i += 1024) expect(out[i]).toBe(7);
  });
});

describe('control server console frames', () => {
  it('a 20 MiB console write: frames of at most CONSOLE_FRAME_BYTES; a client that lags loses the middle, counted, and gets the newest bytes when it catches up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsv-cs-'));
    const log = winston.createLogger({ silent: true });
    const server = new ControlServer(join(dir, 'w.sock'), () => {}, log);
    await server.listen();
    const client = connect(join(dir, 'w.sock'));
    await new Promise<void>((r) => client.once('connect', () => r()));
    const total = 20 << 20;
    const reader = new FrameReader();
    const parts: Uint8Array[] = [];
    let received = 0,
      biggest = 0;
    const done = new Promise<void>((resolve) => {
      client.on('data', (chunk) => {
        for (const f of reader.push(chunk)) {
          expect(f.channel).toBe(FrameChannel.Bulk);
          const r = decodeBulk(f.payload);
          if (r.kind !== 'console') continue;
          parts.push(r.data);
          received += r.data.length;
          biggest = Math.max(biggest, f.payload.length);
          if (received === total - server.dropped) resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 20)); // the server has accepted the connection
    const data = new Uint8Array(total);
    for (let i = 0; i < total; i++) data[i] = (i * 7) & 0xff;
    expect(() => server.console(data)).not.toThrow();
    // Written at once, so the client lags: beyond 4 MiB in flight it keeps only the newest 64 KiB.
    expect(server.dropped).toBeGreaterThan(0);
    await done;
    const got = Buffer.concat(parts);
    const sent = total - server.dropped - CONSOLE_BACKLOG;
    // What was sent before it lagged is the write's prefix, exact; what it got last is the newest 64 KiB.
    expect(got.subarray(0, sent).equals(Buffer.from(data.subarray(0, sent)))).toBe(true);
    expect(got.subarray(sent).equals(Buffer.from(data.subarray(total - CONSOLE_BACKLOG)))).toBe(true);
    expect(biggest).toBeLessThan(CONSOLE_BACKLOG + 64);
    expect(biggest).toBeLessThan(MAX_FRAME_BYTES);
    client.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
