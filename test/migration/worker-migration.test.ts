/**
 * Live migration between two VM workers in this process over a real socket: the checksum guest
 * moves in the middle of its work and its progress lines carry on with the checksum the
 * uninterrupted chain gives; the source's VM is gone after the switch-over.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLogger, createProcessLogger } from '../../root-partition/vmms/log.ts';
import { VmWorker, type WorkerLaunch } from '../../root-partition/vmwp/vm-worker.ts';
import { MigrationChannel } from '../../root-partition/migration/migration-channel.ts';
import { migrateOut } from '../../root-partition/migration/migration-source.ts';
import { commitMigration, receiveMigration, reportRunning } from '../../root-partition/migration/migration-destination.ts';
import { MiB, testImages, waitFor } from '../vmms/vmms-fixture.ts';
import { checksumRound as round } from '../helpers/checksum-round.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-mig-'));
let checksum: string;
beforeAll(async () => { checksum = (await testImages()).checksum; });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function socketPair(path: string): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect(path);
  const b = await accepted;
  server.close();
  return [a, b];
}

const WORK = 2000;

describe('worker to worker migration', () => {
  it('the checksum guest moves mid-run and its result is right', { timeout: 60_000 }, async () => {
    const log = createProcessLogger({ dataDir: dir, process: 'mig', terminal: false });
    const launch: WorkerLaunch = { dataDir: dir, vmId: '00000000-0000-4000-8000-0000000000d1', name: 'mig', memoryBytes: 16 * MiB, vpCount: 1, imagePath: checksum, cmdline: `rounds=100000000 work=${WORK}` };
    let text = '';
    const src = new VmWorker(launch, log);
    const dst = new VmWorker(launch, log);
    src.on('console', (b: Uint8Array) => { text += Buffer.from(b).toString('latin1'); });
    dst.on('console', (b: Uint8Array) => { text += Buffer.from(b).toString('latin1'); });
    const lastRound = () => Number([...text.matchAll(/progress round=(\d+)/g)].at(-1)?.[1] ?? 0);
    try {
      await src.boot();
      await waitFor('progress', () => lastRound() >= 300);
      const [a, b] = await socketPair(join(dir, 'm.sock'));
      const out = new MigrationChannel(a);
      const into = new MigrationChannel(b);
      const arrived = dst.bootFromMigration((memory, hash) => receiveMigration(into, memory, hash), () => commitMigration(into), () => reportRunning(into));
      const summary = await migrateOut(src, out, { hello: {} });
      await arrived;
      expect(dst.state).toBe('running');
      await src.turnOff();
      const movedAt = lastRound();
      expect(summary.pagesPerRound.length).toBeGreaterThanOrEqual(2);
      expect(summary.downtimeMs).toBeGreaterThan(0);
      await waitFor('progress after the move', () => lastRound() >= movedAt + 300);
    } finally {
      await src.turnOff();
      await dst.turnOff();
      await closeLogger(log);
    }
    expect(text.match(/checksum guest:/g)).toHaveLength(1);
    const lines = [...text.matchAll(/progress round=(\d+) sum=([0-9a-f]{8})/g)].map((x) => ({ round: Number(x[1]), sum: parseInt(x[2], 16) }));
    expect(lines.map((l) => l.round)).toEqual(Array.from({ length: lines.length }, (_, i) => (i + 1) * 100));
    let sum = 0;
    let r = 0;
    for (const line of lines) {
      for (; r < line.round; r++) sum = round(sum, r, WORK);
      expect(line.sum, `round ${line.round}`).toBe(sum);
    }
  });
});
