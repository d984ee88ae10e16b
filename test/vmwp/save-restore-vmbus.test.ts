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

/**
 * Runs the commands on a new VM, typed in three batches; with `save`, each batch is followed a
 * few milliseconds later by a save and a restore in a new worker, so the save lands while the
 * guest works through that batch's disk commands.
 */
async function run(v: Vmms, dataDir: string, name: string, save: boolean): Promise<{ out: string; disk: Buffer; pids: Set<number>; pendingAtSave: number[] }> {
  mkdirSync(join(dataDir, 'disks'), { recursive: true });
  const disk = join(dataDir, 'disks', `${name}.raw`);
  RawDisk.create(disk, { sizeBytes: 4096 * 512 }).close();
  v.defineVm({
    name,
    memoryBytes: 32 * MiB,
    imagePath: image,
    devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: disk }] }, { kind: 'integration-services' }] as never,
  });
  // The whole console stream across every worker (VMMS keeps only a tail per start).
  let text = '';
  const id = v.get(name)!.id;
  v.events.on('console', (e: { vmId: string; data: Uint8Array }) => {
    if (e.vmId === id) text += Buffer.from(e.data).toString('latin1');
  });
  expect((await v.start(name)).returnValue).toBe(0);
  const pids = new Set<number>([v.get(name)!.processId!]);
  const pendingAtSave: number[] = [];
  const answered = () => text.split(PROMPT).length - 2;
  await waitFor('the first prompt', () => text.includes(PROMPT), 30_000);
  expect(text).toContain('integration services: 4 of 4 open');
  let typed = 0;
  for (let batch = 0; batch < 3; batch++) {
    const lines = COMMANDS.slice(batch * 8, batch * 8 + 8);
    await v.consoleInput(name, Buffer.from(lines.map((c) => `${c}\r`).join(''), 'latin1'));
    typed += lines.length;
    if (!save) continue;
    await sleep(Math.floor(Math.random() * 5));
    const saved = await v.save(name);
    expect(saved, `the save after batch ${batch}: ${saved.error ?? ''}`).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
    // Commands typed but not yet answered when the VM was saved (an upper bound: the console lags the guest).
    pendingAtSave.push(typed - answered());
    expect((await v.start(name)).returnValue).toBe(0);
    pids.add(v.get(name)!.processId!);
  }
  await waitFor('every command answered', () => answered() >= COMMANDS.length, 60_000);
  await waitFor('the heartbeat', async () => (await v.heartbeatStatus(name)) === 2, 20_000);
  const r = await v.shutdown(name, { timeoutMs: 15_000, reason: 'test' });
  expect(r).toMatchObject({ returnValue: 0, vm: { enabledState: 3 } });
  for (const pid of pids) await waitFor(`worker ${pid} to exit`, () => !processAlive(pid), 10_000);
  return { out: text, disk: readFileSync(disk), pids, pendingAtSave };
}

describe('save and restore of an enlightened guest mid-I/O', () => {
  it('ref-enlightened saved three times while it works through disk commands, each restore in a new worker, ends as an uninterrupted run', {
    timeout: 180_000,
  }, async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const reference = await run(v, dataDir, 'straight', false);
    expect(reference.out).toContain('wrote 37 bytes');
    expect(reference.out).toContain('|line 3 through v|');
    const saved = await run(v, dataDir, 'saved', true);
    const where = `commands typed but not answered at each save: ${saved.pendingAtSave.join(', ')}`;
    console.log(where);
    expect(
      saved.pendingAtSave.some((n) => n > 0),
      where,
    ).toBe(true);
    expect(saved.pids.size, where).toBe(4);
    expect(saved.out, where).toBe(reference.out);
    expect(saved.disk.equals(reference.disk), where).toBe(true);
  });
});
