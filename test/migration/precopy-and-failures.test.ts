/**
 * Pre-copy with a guest that keeps rewriting its memory, and the failure paths, between two VM
 * workers in this process over a real socket. The memory-writer guest reads its whole working
 * set back after every generation: a page the migration lost or tore shows as a MISMATCH, so
 * "no lost data" is the guest's own check. Each failure leaves exactly one copy running (the
 * source) or, when the outcome cannot be known, none running and the source paused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLogger, createProcessLogger, type Logger } from '../../root-partition/host/log.ts';
import { VmWorker, type WorkerLaunch } from '../../root-partition/vmwp/vm-worker.ts';
import { MigrationChannel } from '../../root-partition/migration/migration-channel.ts';
import { migrateOut, type MigrateOutOptions } from '../../root-partition/migration/migration-source.ts';
import { commitMigration, receiveMigration, reportRunning } from '../../root-partition/migration/migration-destination.ts';
import { MiB, testImages, waitFor } from '../vmms/vmms-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-pre-'));
let image: string;
let log: Logger;
beforeAll(async () => {
  image = (await testImages()).memoryWriter;
  log = createProcessLogger({ dataDir: dir, process: 'pre', terminal: false });
});
afterAll(async () => {
  await closeLogger(log);
  rmSync(dir, { recursive: true, force: true });
});

let sockets = 0;
async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(dir, `m${sockets++}.sock`);
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect(path);
  const b = await accepted;
  server.close();
  return [a, b];
}

interface Pair {
  src: VmWorker;
  dst: VmWorker;
  text: () => string;
  out: MigrationChannel;
  into: MigrationChannel;
}

/** A running memory-writer source and an empty destination, joined by a socket. */
async function pair(cmdline: string, vpCount = 1): Promise<Pair> {
  const launch: WorkerLaunch = {
    dataDir: dir,
    vmId: '00000000-0000-4000-8000-0000000000e1',
    name: 'pre',
    memoryBytes: 16 * MiB,
    vpCount,
    imagePath: image,
    cmdline,
  };
  let text = '';
  const src = new VmWorker(launch, log);
  const dst = new VmWorker(launch, log);
  for (const w of [src, dst])
    w.on('console', (b: Uint8Array) => {
      text += Buffer.from(b).toString('latin1');
    });
  await src.boot();
  await waitFor('a first generation', () => /gen=1 ok/.test(text), 30_000);
  const [a, b] = await socketPair();
  return { src, dst, text: () => text, out: new MigrationChannel(a), into: new MigrationChannel(b) };
}

const gens = (text: string) => [...text.matchAll(/gen=(\d+) ok/g)].map((m) => Number(m[1]));

/** The guest writes on (a whole generation after the event) and its own read-back of every page stays right. */
async function keepsItsData(p: Pair): Promise<void> {
  const last = gens(p.text()).at(-1)!;
  await waitFor('another generation', () => (gens(p.text()).at(-1) ?? 0) >= last + 1 || /MISMATCH/.test(p.text()), 30_000);
  expect(p.text()).not.toMatch(/MISMATCH/);
  const all = gens(p.text());
  expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
}

async function end(p: Pair): Promise<void> {
  p.out.close();
  p.into.close();
  await p.src.turnOff();
  await p.dst.turnOff();
}

/** `migrateOut` with the destination's side wired as `destination` says. */
function run(
  p: Pair,
  o: Partial<MigrateOutOptions> = {},
  destination = (p: Pair) =>
    p.dst.bootFromMigration(
      (m, h) => receiveMigration(p.into, m, h),
      (timing) => commitMigration(p.into, timing, 10_000),
      () => reportRunning(p.into),
    ),
) {
  const arrived = destination(p).then(
    () => 'running',
    (e: Error) => e.message,
  );
  const moved = migrateOut(p.src, p.out, { hello: {}, ...o, tuning: { replyTimeoutMs: 10_000, ...o.tuning } });
  return { arrived, moved };
}

describe('pre-copy', () => {
  it('a guest writing 16 MiB/s moves in rounds and reads every page back right on the destination', { timeout: 90_000 }, async () => {
    const p = await pair('mib=8 rate=16');
    try {
      const { arrived, moved } = run(p);
      const summary = await moved;
      expect(await arrived).toBe('running');
      await p.src.turnOff();
      // The first round sends the working set (2048 pages and the runtime's), later rounds what it rewrote meanwhile.
      expect(summary.pagesPerRound[0]).toBeGreaterThanOrEqual(2048);
      expect(summary.pagesPerRound.length).toBeGreaterThanOrEqual(3);
      expect(summary.pagesPerRound.slice(1).some((n) => n > 0)).toBe(true);
      expect(p.dst.state).toBe('running');
      // The destination's VP threads had instantiated the image before the state came: the pause
      // only rewound them. (Whether the device thread had loaded by then is timing: the bench reports it.)
      expect(summary.destination).toMatchObject({ vpThreadsStartedInPause: 0 });
      expect(Object.keys(summary.capture).sort()).toEqual(['captureVpsMs', 'finalDisksMs', 'pauseMs', 'saveDevicesMs', 'stopDevicesMs']);
      await keepsItsData(p);
      // The guest saw the pause as time passing (its reference time moved on by it), never going back.
      const gaps = [...p.text().matchAll(/maxgap-us=(\d+)/g)].map((m) => Number(m[1]) / 1000);
      expect(Math.max(...gaps)).toBeGreaterThanOrEqual(summary.downtimeMs * 0.5);
      expect(p.text()).not.toMatch(/TIME-WENT-BACK/);
    } finally {
      await end(p);
    }
  });
});

describe('prestarted VP threads', () => {
  it('a second VP the guest never started stays not started on the destination (its prestarted thread is dropped)', { timeout: 60_000 }, async () => {
    const p = await pair('mib=2 rate=16', 2);
    try {
      const { arrived, moved } = run(p);
      const summary = await moved;
      expect(await arrived).toBe('running');
      await p.src.turnOff();
      expect(summary.destination).toMatchObject({ vpThreadsStartedInPause: 0 });
      expect(summary.destination!.continueVpsMs).toBeLessThan(5000);
      await keepsItsData(p);
    } finally {
      await end(p);
    }
  });
});

describe('failures leave one copy running', () => {
  it('the destination fails at switch-over (before READY): the source resumes from its captured state', { timeout: 60_000 }, async () => {
    const p = await pair('mib=2 rate=16');
    try {
      const { arrived, moved } = run(p, {}, (q) =>
        q.dst.bootFromMigration(
          (m, h) => receiveMigration(q.into, m, h),
          async () => {
            q.into.abort('injected: the destination fails before READY');
            throw new Error('injected');
          },
          () => {},
        ),
      );
      await expect(moved).rejects.toThrow(/destination fails before READY/);
      expect(await arrived).toMatch(/injected/);
      expect(p.dst.state).toBe('stopped');
      expect(p.src.state).toBe('running');
      await keepsItsData(p);
    } finally {
      await end(p);
    }
  });

  it('the connection drops during pre-copy: the source never stopped, the destination keeps nothing', { timeout: 60_000 }, async () => {
    const p = await pair('mib=2 rate=16');
    try {
      let frames = 0;
      const { arrived, moved } = run(p, {
        onProgress: () => {
          if (++frames === 2) p.into.socket.destroy();
        },
      });
      await expect(moved).rejects.toThrow(/connection/);
      expect(await arrived).toMatch(/connection/);
      expect(p.dst.state).not.toBe('running');
      expect(p.src.state).toBe('running');
      await keepsItsData(p);
    } finally {
      await end(p);
    }
  });

  it('a cancel before the commit point: the source runs on, the destination is told why', { timeout: 60_000 }, async () => {
    const p = await pair('mib=2 rate=16');
    try {
      let rounds = 0;
      const { arrived, moved } = run(p, {
        onProgress: (q) => {
          rounds = q.round;
        },
        cancelled: () => rounds >= 1,
      });
      await expect(moved).rejects.toMatchObject({ code: 'MIGRATION_ERR_CANCELLED' });
      expect(await arrived).toMatch(/cancelled/);
      expect(p.src.state).toBe('running');
      await keepsItsData(p);
    } finally {
      await end(p);
    }
  });

  it('the answer to GO is lost: neither copy runs, the source stays paused with its state, the error says so', { timeout: 60_000 }, async () => {
    const p = await pair('mib=2 rate=16');
    try {
      const { arrived, moved } = run(p, {}, (q) =>
        q.dst.bootFromMigration(
          (m, h) => receiveMigration(q.into, m, h),
          async () => {
            await commitMigration(q.into);
            q.into.socket.destroy();
            throw new Error('injected: lost after GO');
          },
          () => {},
        ),
      );
      await expect(moved).rejects.toMatchObject({ code: 'MIGRATION_ERR_OUTCOME_UNKNOWN' });
      expect(await arrived).toMatch(/lost after GO/);
      expect(p.dst.state).toBe('stopped');
      expect(p.src.state).toBe('paused');
      // The operator checked the destination: resuming the source loses nothing.
      p.src.resume();
      await keepsItsData(p);
    } finally {
      await end(p);
    }
  });
});
