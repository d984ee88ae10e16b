/**
 * Whole-VM saved state of an enlightened guest, through VMMS: `ref-enlightened` works through
 * typed disk commands over storvsc while its integration services run; it is saved at random
 * moments — mid-I/O — and each time restored in a new worker process (its VP stack captured and
 * rewound, VMBus with storvsp and the integration services restored over the same guest memory).
 * The console text and the disk bytes equal an uninterrupted run's; afterwards the heartbeat is OK
 * and a graceful shutdown through the shutdown service turns the VM off.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { PROMPT } from '../guests/shell-rig.ts';
import { MiB, processAlive, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;
beforeAll(async () => {
  await buildGuests(['ref-enlightened']);
  image = guestImagePath('ref-enlightened');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const COMMANDS = Array.from({ length: 24 }, (_, i) => (i % 3 === 2 ? `read 0 ${10 + i - 2}` : `write 0 ${10 + i} line ${i} through vmbus ${'x'.repeat(i)}`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Vmms = Awaited<ReturnType<VmmsFixture['vmms']>>;

/** Runs the commands on a new VM; `saveAfter`: answered-command counts at which to save and restore. */
async function run(v: Vmms, dataDir: string, name: string, saveAfter: number[]): Promise<{ out: string; disk: Buffer; pids: Set<number>; answeredAtSave: number[] }> {
  mkdirSync(join(dataDir, 'disks'), { recursive: true });
  const disk = join(dataDir, 'disks', `${name}.raw`);
  RawDisk.create(disk, { sizeBytes: 4096 * 512 }).close();
  v.defineVm({
    name, memoryBytes: 32 * MiB, imagePath: image,
    devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: disk }] }, { kind: 'integration-services' }] as never,
  });
  // The whole console stream across every worker (VMMS keeps only a tail per start).
  let text = '';
  const id = v.get(name)!.id;
  v.events.on('console', (e: { vmId: string; data: Uint8Array }) => { if (e.vmId === id) text += Buffer.from(e.data).toString('latin1'); });
  expect((await v.start(name)).returnValue).toBe(0);
  const pids = new Set<number>([v.get(name)!.processId!]);
  const answeredAtSave: number[] = [];
  const out = () => text;
  const answered = () => out().split(PROMPT).length - 2;
  await waitFor('the first prompt', () => out().includes(PROMPT), 30_000);
  expect(out()).toContain('integration services: 4 of 4 open');
  await v.consoleInput(name, Buffer.from(COMMANDS.map((c) => `${c}\r`).join(''), 'latin1'));
  for (const n of saveAfter) {
    await waitFor(`${n} commands answered`, () => answered() >= n, 30_000);
    await sleep(Math.floor(Math.random() * 5));
    const saved = await v.save(name);
    expect(saved, `the save after ${n} commands`).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
    answeredAtSave.push(answered());
    expect((await v.start(name)).returnValue).toBe(0);
    pids.add(v.get(name)!.processId!);
  }
  await waitFor('every command answered', () => answered() >= COMMANDS.length, 60_000);
  await waitFor('the heartbeat', async () => (await v.heartbeatStatus(name)) === 2, 20_000);
  const r = await v.shutdown(name, { timeoutMs: 15_000, reason: 'test' });
  expect(r).toMatchObject({ returnValue: 0, vm: { enabledState: 3 } });
  for (const pid of pids) await waitFor(`worker ${pid} to exit`, () => !processAlive(pid), 10_000);
  return { out: out(), disk: readFileSync(disk), pids, answeredAtSave };
}

describe('save and restore of an enlightened guest mid-I/O', () => {
  it('ref-enlightened saved three times during storvsc I/O, each restore in a new worker, ends as an uninterrupted run', { timeout: 180_000 }, async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const reference = await run(v, dataDir, 'straight', []);
    expect(reference.out).toContain('wrote 37 bytes');
    expect(reference.out).toContain('|line 3 through v|');
    const random = (n: number) => Math.floor(Math.random() * n);
    const marks = [random(4), 5 + random(6), 12 + random(8)];
    const saved = await run(v, dataDir, 'saved', marks);
    const where = `saves after ${marks.join(', ')} commands; answered at each save: ${saved.answeredAtSave.join(', ')}`;
    console.log(where);
    // The saves landed while the guest still had disk commands to do (its console output lags it a little).
    expect(saved.answeredAtSave.filter((n) => n < COMMANDS.length - 2).length, where).toBeGreaterThanOrEqual(2);
    expect(saved.pids.size, where).toBe(marks.length + 1);
    expect(saved.out, where).toBe(reference.out);
    expect(saved.disk.equals(reference.disk), where).toBe(true);
  });
});
