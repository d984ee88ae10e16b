/**
 * The console's benchmark button: the `full` role starts one run (a second is refused while it
 * runs, the read-only role is refused), its progress is pushed step by step on the event stream,
 * and the report it writes to the data directory is what the console shows next. The run is the
 * benchmark's smallest (`tiny`), in its own process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests } from '../../scripts/build-guests.ts';
import { USERS, WebTestHost } from './web-fixture.ts';

const host = new WebTestHost();

beforeAll(async () => {
  await buildGuests(['bench-io']);
  await host.start({ benchTiny: true });
}, 120_000);

afterAll(async () => {
  expect(await host.stop()).toEqual([]);
}, 60_000);

describe('the benchmark button', () => {
  it('runs the quick benchmark once at a time, pushes its progress, and shows its report', async () => {
    const admin = host.client();
    await admin.login('admin', USERS[0]!.password);
    const viewer = host.client();
    await viewer.login('viewer', USERS[1]!.password);
    const before = (await admin.call('GET', '/api/bench')).body as { startedAt: string };

    const ac = new AbortController();
    const events = await fetch(`${host.url}/api/events`, { headers: { Cookie: admin.cookie }, signal: ac.signal });
    let text = '';
    const reading = (async () => {
      const reader = events.body!.getReader();
      const dec = new TextDecoder();
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) text += dec.decode(r.value);
      } catch {
        /* aborted */
      }
    })();

    expect((await viewer.call('POST', '/api/bench/run', {})).status).toBe(403);
    const started = await admin.call('POST', '/api/bench/run', {});
    expect(started.body).toMatchObject({ running: true, step: 'starting' });
    expect((await admin.call('POST', '/api/bench/run', {})).status).toBe(409);

    const deadline = Date.now() + 90_000;
    const statuses = () =>
      [...text.matchAll(/event: bench\ndata: (.*)\n/g)].map(
        (m) => JSON.parse(m[1]!) as { running: boolean; done: number; total: number; error: string | null },
      );
    while (!statuses().some((s) => !s.running && s.done > 0)) {
      if (Date.now() > deadline) throw new Error(`no end of the run: ${text.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    ac.abort();
    await reading;
    const seen = statuses();
    const last = seen[seen.length - 1]!;
    expect(last).toMatchObject({ running: false, error: null });
    expect(last.done).toBe(last.total);
    // Progress came step by step (drop-to-latest may merge some, never all).
    expect(new Set(seen.filter((s) => s.running).map((s) => s.done)).size).toBeGreaterThan(2);

    const file = join(host.dataDir, 'bench', 'io.json');
    expect(existsSync(file)).toBe(true);
    const written = JSON.parse(readFileSync(file, 'utf8')) as { startedAt: string; quick: boolean; rows: unknown[] };
    expect(written.quick).toBe(true);
    const shown = (await admin.call('GET', '/api/bench')).body as { startedAt: string };
    expect(shown.startedAt).toBe(written.startedAt);
    expect(shown.startedAt).not.toBe(before.startedAt);
    expect(String((await admin.call('GET', '/api/bench.html')).body)).toContain('<!doctype html>');
  }, 120_000);
});
