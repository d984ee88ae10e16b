/**
 * Save and restore back to back, 20 times, with a device thread that builds VMBus ports, the
 * integration services and an IDE disk as it starts: the partition's state is restored before
 * that thread exists, so nothing it writes at start-up is overwritten and nothing it serves sees
 * a half-restored block. The guest keeps its loop state in locals on its call stack: every VP
 * stack is captured and rewound in the next worker. Every progress line of the checksum guest,
 * across all 21 workers, carries the checksum it would have computed uninterrupted (recomputed
 * here): no round lost, repeated or applied to stale state.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLogger, createProcessLogger } from '../../root-partition/host/log.ts';
import { VmWorker, type WorkerLaunch } from '../../root-partition/vmwp/vm-worker.ts';
import { MiB, testImages, waitFor } from '../vmms/vmms-fixture.ts';
import { checksumRound as round } from '../helpers/checksum-round.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-cycles-'));
let checksum: string;
beforeAll(async () => {
  checksum = (await testImages()).checksum;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CYCLES = 20;
const ROUNDS = 100_000_000;
const WORK = 2000;

describe('restore cycles', () => {
  it(`a guest with devices is saved and restored ${CYCLES} times in a row, its checksum right all along`, { timeout: 120_000 }, async () => {
    const disk = join(dir, 'disk.raw');
    writeFileSync(disk, Buffer.alloc(MiB, 0x5a));
    const file = join(dir, 'vm.vmrs');
    const log = createProcessLogger({ dataDir: dir, process: 'cycles', terminal: false });
    const launch: WorkerLaunch = {
      dataDir: dir,
      vmId: '00000000-0000-4000-8000-0000000000c1',
      name: 'cycles',
      memoryBytes: 16 * MiB,
      vpCount: 1,
      imagePath: checksum,
      cmdline: `rounds=${ROUNDS} work=${WORK}`,
      devices: { ide: [{ path: disk }], integrationServices: { heartbeat: true, shutdown: true, timeSync: true, kvp: true } },
    };
    let text = '';
    const savedAt: number[] = [];
    const backed: number[] = [];
    let w: VmWorker | null = null;
    const lastRound = () => Number([...text.matchAll(/progress round=(\d+)/g)].at(-1)?.[1] ?? 0);
    try {
      for (let cycle = 0; cycle <= CYCLES; cycle++) {
        w = new VmWorker(cycle === 0 ? launch : { ...launch, restoreFrom: file }, log);
        w.on('console', (b: Uint8Array) => {
          text += Buffer.from(b).toString('latin1');
        });
        await w.boot();
        // Each VM runs on for a while from where it was saved (a few progress lines, a number
        // that varies), so the saves land at different points of a round or of a console line.
        const runTo = (savedAt.at(-1) ?? 0) + 100 * (1 + (cycle % 3));
        await waitFor('progress after the restore', () => lastRound() >= runTo);
        // Memory is backed behind the running guest, at boot and after a restore (waited for at the
        // first and last cycle only: it costs time); the checksum chain below shows the backing
        // changed none of the guest's bytes.
        if (cycle === 0 || cycle === CYCLES) {
          const worker = w;
          await waitFor('guest memory backed', () => worker.memoryBacked !== null);
          backed.push(worker.memoryBacked!.bytes);
        }
        if (cycle === CYCLES) break;
        await w.save(file);
        savedAt.push(lastRound());
        w = null;
      }
    } finally {
      await w?.turnOff();
      await closeLogger(log);
    }
    expect(savedAt).toHaveLength(CYCLES);
    expect(backed).toEqual([16 * MiB, 16 * MiB]);
    // The guest cannot tell it was saved: it printed its banner once, and its progress lines
    // follow one another, each round once, in order, across all the workers.
    expect(text.match(/checksum guest:/g)).toHaveLength(1);
    const all = [...text.matchAll(/progress round=(\d+)/g)].map((x) => Number(x[1]));
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => (i + 1) * 100));
    // Every progress line's checksum equals the uninterrupted chain's at that round.
    const lines = [...text.matchAll(/progress round=(\d+) sum=([0-9a-f]{8})/g)].map((x) => ({ round: Number(x[1]), sum: parseInt(x[2], 16) }));
    expect(lines.length).toBeGreaterThan(CYCLES);
    let sum = 0;
    let r = 0;
    for (const line of lines) {
      for (; r < line.round; r++) sum = round(sum, r, WORK);
      expect(line.sum, `round ${line.round}`).toBe(sum);
    }
  });
});
