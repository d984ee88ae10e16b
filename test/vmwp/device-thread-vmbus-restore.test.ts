/**
 * VMBus saved and restored under a running guest, the device side alone: ref-enlightened (storvsc
 * disk I/O and the four integration services over VMBus) runs on real VP threads with a real
 * device thread; at random moments while it works through typed disk commands the partition is
 * paused, `save-devices` taken, that device thread stopped, and a NEW device thread started on the
 * same paused partition with the records as `restore`; then the partition resumes. The guest must
 * end with the same console text and the same disk bytes as an uninterrupted run, its integration
 * services answering (heartbeat OK, shutdown accepted) with no answer counted invalid.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { DeviceStateRecord } from '../../root-partition/devices/device-state.ts';
import type { VmDeviceConfig } from '../../root-partition/vmwp/device-config.ts';
import { DeviceThread, type DeviceThreadStats } from '../../root-partition/vmwp/device-thread.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { PROMPT, tempDisk } from '../guests/shell-rig.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const SCSI_ID = '7c3d3a2e-5b1f-4c11-9d0e-0a0b0c0d0e02';
const HEARTBEAT_OK = 2;

/** Disk writes and reads back, each of which the guest completes over storvsc before its prompt. */
const COMMANDS = Array.from({ length: 24 }, (_, i) => (i % 3 === 2 ? `read 0 ${10 + i - 2}` : `write 0 ${10 + i} line ${i} through vmbus ${'x'.repeat(i)}`));

interface RunResult {
  out: string;
  disk: Buffer;
  threads: (DeviceThreadStats | null)[];
  records: string[];
  /** Commands answered when each save was taken. */
  answeredAtSave: number[];
  /** From typing the commands to the last answer. */
  commandsMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A swap of device threads once `answers` commands have been answered (as seen here), `delayMs`
 * later; `abandon`: the save is taken but not used, and the VM resumes on the same thread.
 */
interface Swap {
  answers: number;
  delayMs: number;
  abandon?: boolean;
}

async function run(swaps: Swap[]): Promise<RunResult> {
  await buildGuests(['ref-enlightened']);
  const hv = new Hypervisor();
  cleanup.push(() => hv.shutdown());
  const p = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 } });
  p.initialize();
  p.loadImage(fs.readFileSync(guestImagePath('ref-enlightened')), '');
  const { dir, file } = tempDisk(4096);
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const devices: VmDeviceConfig = {
    scsi: [{ instanceId: SCSI_ID, disks: [{ path: file }] }],
    integrationServices: { heartbeat: true, shutdown: true, timeSync: true, kvp: true },
  };
  let out = '';
  const waiters: (() => void)[] = [];
  const start = (restore?: DeviceStateRecord[]) =>
    DeviceThread.start(p, {
      devices,
      ...(restore ? { restore } : {}),
      console: (b) => {
        out += Buffer.from(b).toString('latin1');
        for (const w of waiters.splice(0)) w();
      },
    });
  let dt = await start();
  cleanup.push(async () => {
    await p.stop();
    await dt.stop();
  });
  const until = (pred: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; console:\n${out}`)), 30_000);
      const check = () => {
        if (pred()) {
          clearTimeout(t);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  const prompts = () => out.split(PROMPT).length - 1;
  p.start();
  await until(() => prompts() >= 1, 'the first prompt');
  expect(out).toContain('integration services: 4 of 4 open');
  // A save is taken only with the VPs parked; refused while the guest runs, and nothing stops.
  await expect(dt.request({ op: 'save-devices' })).rejects.toMatchObject({ code: 'VMWP_ERR_SAVE_NOT_PAUSED' });
  const threads: (DeviceThreadStats | null)[] = [];
  const records: string[] = [];
  const answeredAtSave: number[] = [];
  const typedAt = performance.now();
  dt.consoleInput(Buffer.from(COMMANDS.map((c) => `${c}\r`).join(''), 'latin1'));
  for (const swap of swaps) {
    if (swap.answers > 0) await until(() => prompts() - 1 >= swap.answers, `${swap.answers} commands answered`);
    await sleep(swap.delayMs);
    const paused = await p.pause(10_000);
    expect(paused.paused).toBe(true);
    const saved = (await dt.request({ op: 'save-devices' })).records;
    records.push(saved.map((r) => r.name).join(','));
    answeredAtSave.push(prompts() - 1);
    if (!swap.abandon) {
      threads.push(await dt.stop());
      dt = await start(saved);
    }
    p.resume();
  }
  await until(() => prompts() >= 1 + COMMANDS.length, 'every command answered');
  const commandsMs = performance.now() - typedAt;
  // The integration services answer on the restored channels (the heartbeat within a beat or two:
  // a save taken before the guest's first answer restores No Contact).
  let hb = (await dt.request({ op: 'heartbeat' })).status;
  for (let i = 0; i < 300 && hb !== HEARTBEAT_OK; i++) {
    await sleep(20);
    hb = (await dt.request({ op: 'heartbeat' })).status;
  }
  expect(hb).toBe(HEARTBEAT_OK);
  let answer = await dt.request({ op: 'shutdown', force: false, reason: 'test', timeoutMs: 5000 });
  for (let i = 0; i < 100 && answer.outcome === 'unavailable'; i++) {
    await sleep(20);
    answer = await dt.request({ op: 'shutdown', force: false, reason: 'test', timeoutMs: 5000 });
  }
  expect(answer).toEqual({ outcome: 'accepted' });
  await p.whenIdle();
  expect(p.vpExit(0)).toEqual({ reason: 'halted' });
  threads.push(await dt.stop());
  return { out, disk: fs.readFileSync(file), threads, records, answeredAtSave, commandsMs };
}

describe('VMBus save and restore on the device thread, guest in the loop', () => {
  it('a guest doing storvsc I/O and serving the integration services sees nothing of four device-thread swaps and one abandoned save at random moments', {
    timeout: 120_000,
  }, async () => {
    const reference = await run([]);
    // One swap while the typed lines are still coming in, three more among the disk commands (the
    // guest is further on than the console shows: its output reaches this thread in batches).
    const random = (n: number) => Math.floor(Math.random() * n);
    const marks = [1 + random(5), 6 + random(6), 12 + random(6)];
    const swaps: Swap[] = [{ answers: 0, delayMs: random(40) }, ...marks.map((answers) => ({ answers, delayMs: random(4) }))];
    // One save among them is abandoned (as when the file cannot be written): the same thread goes on.
    swaps.splice(1 + random(3), 0, { answers: 0, delayMs: random(4), abandon: true });
    const swapped = await run(swaps);
    const where = `swaps ${JSON.stringify(swaps)}, commands answered at each save ${swapped.answeredAtSave.join(', ')} (uninterrupted: ${reference.commandsMs.toFixed(0)} ms)`;
    expect(swapped.records, where).toEqual(swaps.map(() => 'pic8259,com1,com2,pci-config,piix4-ide,vmbus'));
    expect(swapped.out, where).toBe(reference.out);
    expect(swapped.disk.equals(reference.disk), where).toBe(true);
    expect(reference.out).toContain('wrote 37 bytes');
    expect(reference.out).toContain('|line 3 through v|'); // a read back of an earlier write
    const last = swapped.threads.at(-1)!;
    // Saves landed while the guest still had disk commands to do, and restored threads served them.
    expect(swapped.answeredAtSave.filter((n) => n < COMMANDS.length).length, where).toBeGreaterThanOrEqual(2);
    const restoredRequests = swapped.threads.slice(1).reduce((n, t) => n + t!.storvsp[0]!.requests, 0);
    expect(restoredRequests, where).toBeGreaterThan(0);
    // No guest answer to an integration service was taken as invalid, before or after a restore.
    for (const t of swapped.threads) {
      for (const [name, s] of Object.entries(t!.ic!)) expect(s.invalid, `${name} on a thread of the ${where}`).toBe(0);
    }
    expect(last.ic!.shutdown!.answers).toBeGreaterThanOrEqual(1);
  });
});
