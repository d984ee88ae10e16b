/**
 * Save and restore back to back, 20 times, with a device thread that builds VMBus ports, the
 * integration services and an IDE disk as it starts: the partition's state is restored before
 * that thread exists, so nothing it writes at start-up is overwritten and nothing it serves sees
 * a half-restored block. The checksum guest ends with the result it would have computed
 * uninterrupted, every round applied once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLogger, createProcessLogger } from '../../root-partition/vmms/log.ts';
import { VmWorker, type WorkerLaunch } from '../../root-partition/vmwp/vm-worker.ts';
import { MiB, testImages, waitFor } from '../vmms/vmms-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-cycles-'));
let checksum: string;
beforeAll(async () => {
  checksum = (await testImages()).checksum;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CYCLES = 20;
const ROUNDS = 15_000;

describe('restore cycles', () => {
  it(`a guest with devices is saved and restored ${CYCLES} times in a row and finishes with the right checksum`, { timeout: 120_000 }, async () => {
    const disk = join(dir, 'disk.raw');
    writeFileSync(disk, Buffer.alloc(MiB, 0x5a));
    const file = join(dir, 'vm.vmrs');
    const log = createProcessLogger({ dataDir: dir, process: 'cycles', terminal: false });
    const launch: WorkerLaunch = {
      dataDir: dir, vmId: '00000000-0000-4000-8000-0000000000c1', name: 'cycles', memoryBytes: 16 * MiB, vpCount: 1, imagePath: checksum,
      cmdline: `rounds=${ROUNDS} work=10000`,
      devices: { ide: [{ path: disk }], integrationServices: { heartbeat: true, shutdown: true, timeSync: true, kvp: true } },
    };
    let text = '';
    const resumedAt: number[] = [];
    const savedAt: number[] = [];
    let w: VmWorker | null = null;
    const lastRound = () => Number([...text.matchAll(/progress round=(\d+)/g)].at(-1)?.[1] ?? 0);
    try {
      for (let cycle = 0; cycle <= CYCLES; cycle++) {
        w = new VmWorker(cycle === 0 ? launch : { ...launch, restoreFrom: file }, log);
        w.on('console', (b: Uint8Array) => { text += Buffer.from(b).toString('latin1'); });
        await w.boot();
        if (cycle > 0) {
          const m = await waitFor('the resume line', () => [...text.matchAll(/resumed at round=(\d+)/g)][cycle - 1]);
          resumedAt.push(Number(m[1]));
        }
        if (cycle === CYCLES) break;
        // The first boot runs a while; each restored guest is saved again once it has run (its resume line).
        if (cycle === 0) await waitFor('progress', () => lastRound() > 0);
        await w.save(file);
        savedAt.push(lastRound());
        w = null;
      }
      await waitFor('the verdict', () => /verdict=/.test(text), 60_000);
    } finally {
      await w?.turnOff();
      await closeLogger(log);
    }
    const m = /result rounds=(\d+) sum=(\w+) expected=(\w+) resumes=(\d+) verdict=(\w+)/.exec(text)!;
    expect({ rounds: Number(m[1]), sum: m[2], resumes: Number(m[4]), verdict: m[5] }).toEqual({ rounds: ROUNDS, sum: m[3], resumes: CYCLES, verdict: 'OK' });
    // Each restore continues from its save, never from an earlier one: no round is lost or repeated.
    resumedAt.forEach((r, i) => {
      expect(r).toBeGreaterThanOrEqual(savedAt[i]);
      if (i > 0) expect(r).toBeGreaterThanOrEqual(resumedAt[i - 1]);
    });
    const all = [...text.matchAll(/progress round=(\d+)/g)].map((x) => Number(x[1]));
    expect(new Set(all).size).toBe(all.length);
  });
});
