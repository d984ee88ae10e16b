/**
 * The arriving side's RUNNING waits for its VMMS: the destination worker (acceptIncomingMigration,
 * as worker-main.ts runs it) tells the source that the VM runs only once its VMMS has recorded the
 * VM as Running (ARRIVAL_RECORDED). Two VM workers in this process over a real socket; the test
 * plays the destination's VMMS by holding or giving that record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLogger, createProcessLogger, type Logger } from '../../root-partition/host/log.ts';
import { VmWorker, type WorkerLaunch } from '../../root-partition/vmwp/vm-worker.ts';
import { MigrationChannel } from '../../root-partition/migration/migration-channel.ts';
import { migrateOut, type MigrationSummary } from '../../root-partition/migration/migration-source.ts';
import { acceptIncomingMigration } from '../../root-partition/migration/worker-migration.ts';
import { MiB, testImages, waitFor } from '../vmms/vmms-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-arrival-'));
let image: string;
let log: Logger;
beforeAll(async () => {
  image = (await testImages()).memoryWriter;
  log = createProcessLogger({ dataDir: dir, process: 'arrival', terminal: false });
});
afterAll(async () => {
  await closeLogger(log);
  rmSync(dir, { recursive: true, force: true });
});

const gens = (text: string) => [...text.matchAll(/gen=(\d+) ok/g)].map((m) => Number(m[1]));

/** Connects to the destination worker's migration socket once it listens. */
async function connectTo(path: string): Promise<Socket> {
  for (let tries = 0; ; tries++) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (tries > 200) throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

interface Move {
  src: VmWorker;
  dst: VmWorker;
  text: () => string;
  /** The destination runs the VM (acceptIncomingMigration resolved). */
  arrived: Promise<void>;
  /** The source's migrateOut, and when it settled (0: not yet). */
  moved: Promise<MigrationSummary>;
  settledAt: () => number;
  out: MigrationChannel;
}

/** A running memory-writer source moving to a destination worker whose VMMS records the arrival when `recorded` resolves. */
async function move(name: string, recorded: Promise<void>, replyTimeoutMs: number): Promise<Move> {
  const launch: WorkerLaunch = {
    dataDir: dir,
    vmId: '00000000-0000-4000-8000-0000000000f1',
    name,
    memoryBytes: 16 * MiB,
    vpCount: 1,
    imagePath: image,
    cmdline: 'mib=2 rate=16',
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
  const path = join(dir, `${name}.sock`);
  const arrived = acceptIncomingMigration(dst, path, recorded);
  arrived.catch(() => {});
  const out = new MigrationChannel(await connectTo(path));
  let settledAt = 0;
  const moved = migrateOut(src, out, { hello: {}, tuning: { replyTimeoutMs } });
  moved.then(
    () => {
      settledAt = performance.now();
    },
    () => {
      settledAt = performance.now();
    },
  );
  return { src, dst, text: () => text, arrived, moved, settledAt: () => settledAt, out };
}

/** The guest writes on at the destination (a whole generation more) and its read-back of every page stays right. */
async function goesOnAtDestination(m: Move): Promise<void> {
  const last = gens(m.text()).at(-1)!;
  await waitFor('another generation', () => (gens(m.text()).at(-1) ?? 0) >= last + 1 || /MISMATCH/.test(m.text()), 30_000);
  expect(m.text()).not.toMatch(/MISMATCH/);
}

async function end(m: Move): Promise<void> {
  m.out.close();
  await m.src.turnOff();
  await m.dst.turnOff();
}

describe("the destination's VMMS records the arrival before the source hears RUNNING", () => {
  it('the move ends at the source only after the record, the VM running at the destination', { timeout: 60_000 }, async () => {
    let record = () => {};
    const recorded = new Promise<void>((r) => {
      record = r;
    });
    const m = await move('recorded', recorded, 10_000);
    try {
      await m.arrived;
      expect(m.dst.state).toBe('running');
      // Not recorded yet: the source still waits, its copy paused.
      await new Promise((r) => setTimeout(r, 300));
      expect(m.settledAt()).toBe(0);
      expect(m.src.state).toBe('paused');
      const recordedAt = performance.now();
      record();
      const summary = await m.moved;
      expect(m.settledAt()).toBeGreaterThanOrEqual(recordedAt);
      expect(summary.downtimeMs).toBeGreaterThan(0);
      await goesOnAtDestination(m);
    } finally {
      await end(m);
    }
  });

  it('never recorded: the source keeps its copy paused and says the outcome is unknown; the VM runs at the destination alone', {
    timeout: 60_000,
  }, async () => {
    const m = await move('unrecorded', new Promise<void>(() => {}), 3000);
    try {
      await m.arrived;
      await expect(m.moved).rejects.toMatchObject({ code: 'MIGRATION_ERR_OUTCOME_UNKNOWN' });
      expect(m.src.state).toBe('paused');
      expect(m.dst.state).toBe('running');
      await goesOnAtDestination(m);
    } finally {
      await end(m);
    }
  });
});
