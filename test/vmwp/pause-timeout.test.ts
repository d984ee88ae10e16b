/**
 * A pause that times out undoes itself: the checksum guest with a large `work` computes for
 * seconds between exits, longer than a short pause time-out. The pause fails naming the VP that
 * did not park, the VM stays Running with its reference clock counting, and a later pause that
 * meets an exit succeeds. Real VP threads and device thread; then a real worker process under VMMS.
 * Images rewritten at load park at their preemption points, so the guest here runs unmodified
 * (TSVISOR_REWRITE=0, inherited by the worker process): the guest that cannot be parked in time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P_REQUESTED_STATE, RequestedState } from '../../hypervisor/partition-control.ts';
import { PartitionProperty, type Partition } from '../../hypervisor/partition.ts';
import { closeLogger, createProcessLogger } from '../../root-partition/host/log.ts';
import { PAUSE_TIMEOUT_ENV, VmWorker } from '../../root-partition/vmwp/vm-worker.ts';
import { MiB, testImages, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
const logDir = mkdtempSync(join(tmpdir(), 'tsv-pause-'));
let checksum: string;
// 100 rounds between exits of 6e8 mixing steps: ~1 s without an exit on an idle host (more on
// a loaded one), well over the time-out, short enough for a pause to meet the next exit soon.
const LONG_COMPUTE = 'rounds=100000000 work=6000000';
const TIMEOUT_MS = 100;

const rewriteBefore = process.env.TSVISOR_REWRITE;
beforeAll(async () => {
  process.env.TSVISOR_REWRITE = '0';
  checksum = (await testImages()).checksum;
});
afterAll(async () => {
  if (rewriteBefore === undefined) delete process.env.TSVISOR_REWRITE;
  else process.env.TSVISOR_REWRITE = rewriteBefore;
  rmSync(logDir, { recursive: true, force: true });
  expect(await fx.cleanup()).toEqual([]);
});

describe('pause time-out', () => {
  it('undoes a failed pause: request cleared, clock running, VM running', { timeout: 60_000 }, async () => {
    const log = createProcessLogger({ dataDir: logDir, process: 'pause-test', terminal: false });
    const w = new VmWorker(
      {
        dataDir: logDir,
        vmId: '00000000-0000-4000-8000-0000000000aa',
        name: 'spin',
        memoryBytes: 16 * MiB,
        vpCount: 1,
        imagePath: checksum,
        cmdline: LONG_COMPUTE,
        pauseTimeoutMs: TIMEOUT_MS,
      },
      log,
    );
    let console = '';
    w.on('console', (b: Uint8Array) => {
      console += Buffer.from(b).toString('latin1');
    });
    try {
      await w.boot();
      await waitFor('the banner', () => /checksum guest:/.test(console));
      const p = (w as unknown as { partition: Partition }).partition;
      const started = Date.now();
      await expect(w.pause()).rejects.toThrow(/VP 0 did not reach an exit boundary within 100 ms.*the pause was undone/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS);
      expect(w.state).toBe('running');
      expect(Atomics.load(p.ctl.i32, P_REQUESTED_STATE >> 2)).toBe(RequestedState.Run);
      expect(p.getProperty(PartitionProperty.TimeFreeze).value).toBe(0n);
      const t0 = p.referenceTime();
      await new Promise((r) => setTimeout(r, 100));
      // 100 ms is 1,000,000 units of 100 ns; a frozen clock would not move at all.
      expect(p.referenceTime() - t0).toBeGreaterThan(500_000);
      expect(p.runState(0)).toBe(1); // Running: the VP never parked and was not left parked
    } finally {
      await w.turnOff();
      await closeLogger(log);
    }
  });

  it('a real worker: the failed pause leaves the VM Running and computing; a pause that meets an exit works', { timeout: 180_000 }, async () => {
    process.env[PAUSE_TIMEOUT_ENV] = String(TIMEOUT_MS);
    try {
      const v = await fx.vmms({ dataDir: fx.dataDir() });
      v.defineVm({ name: 'spin', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: LONG_COMPUTE });
      expect((await v.start('spin')).returnValue).toBe(0);
      await waitFor('the banner', () => /checksum guest:/.test(v.console('spin')));
      const failed = await v.pause('spin');
      expect(failed).toMatchObject({
        returnValue: 32768,
        error: expect.stringMatching(/VP 0 did not reach an exit boundary within 100 ms/),
        vm: { enabledState: 2 },
      });
      expect(v.console('spin')).not.toMatch(/progress round=/); // still inside the first 100 rounds
      // Pauses back to back: each lasts the time-out, so one of them meets the next exit.
      const deadline = Date.now() + 90_000;
      for (;;) {
        const r = await v.pause('spin');
        if (r.returnValue === 0) break;
        expect(r.vm!.enabledState).toBe(2);
        if (Date.now() > deadline) throw new Error('no pause met an exit');
      }
      expect(v.get('spin')!.enabledState).toBe(9);
      expect((await v.resume('spin')).vm).toMatchObject({ enabledState: 2 });
      // The guest computed through the failed pauses: it parked in the first progress line's output.
      await waitFor('the first progress line', () => /progress round=100 /.test(v.console('spin')));
      expect((await v.turnOff('spin')).returnValue).toBe(0);
    } finally {
      delete process.env[PAUSE_TIMEOUT_ENV];
    }
  });
});
