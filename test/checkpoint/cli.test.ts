/**
 * `tsvisor vm checkpoint` against a real `tsvisor serve` (the VM stays Off: disks-only
 * checkpoints): take with a name, list, apply, remove through the alias, all under --json, and a
 * raw disk refused in words.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, TSVISOR } from '../management/live-daemon.ts';

let daemon: LiveDaemon;
const vm = (...args: string[]) => run(process.execPath, [TSVISOR, 'vm', '--data-dir', daemon.dataDir, ...args], 90_000);

beforeAll(async () => {
  await buildGuests(['checksum']);
  daemon = await LiveDaemon.start();
}, 120_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('tsvisor vm checkpoint', () => {
  it('takes, lists, applies and removes checkpoints of an Off VM; refuses a raw disk', { timeout: 240_000 }, async () => {
    // Defined over the client socket: each CLI run costs seconds on a loaded host; the verbs under test are the checkpoint ones.
    const disk = join(daemon.dataDir, 'disks', 'cp.vhdx');
    newDisk(disk, { kind: 'dynamic', sizeBytes: 4 * 1024 * 1024 });
    const raw = join(daemon.dataDir, 'disks', 'raw.img');
    newDisk(raw, { kind: 'raw', sizeBytes: 1024 * 1024 });
    const client = await VmmsClient.connect(daemon.dataDir);
    try {
      for (const [name, path] of [
        ['cp', disk],
        ['rawvm', raw],
      ]) {
        await client.call('new', {
          name,
          imagePath: guestImagePath('checksum'),
          memoryBytes: 16 * 1024 * 1024,
          devices: [{ kind: 'ide-disk', controller: 0, position: 0, path }],
        });
      }
    } finally {
      client.close();
    }

    const taken = await vm('checkpoint', 'cp', '--name', 'before upgrade', '--json');
    expect([taken.code, taken.stderr]).toEqual([0, '']);
    const made = JSON.parse(taken.stdout);
    expect(made).toMatchObject({ name: 'before upgrade', parentId: null, current: true, type: 'disks-only' });
    const second = await vm('checkpoint', 'cp');
    expect(second.stdout).toMatch(/^cp: checkpoint 'cp - \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)' taken \(disks only\), id [0-9a-f-]{36}\n$/);

    const listed = JSON.parse((await vm('checkpoint', 'list', 'cp', '--json')).stdout);
    expect(
      listed.map((c: { name: string; parentId: string | null; current: boolean }) => [
        c.name === 'before upgrade' ? c.name : 'auto',
        c.parentId === made.id,
        c.current,
      ]),
    ).toEqual([
      ['before upgrade', false, false],
      ['auto', true, true],
    ]);
    const table = await vm('checkpoints', 'cp');
    expect(table.stdout).toMatch(/NAME\s+PARENT\s+TYPE\s+CURRENT\s+ID\nbefore upgrade\s+-\s+disks only\s+[0-9a-f-]{36}\n/);

    const applied = await vm('checkpoint', 'apply', 'cp', 'before upgrade');
    expect([applied.code, applied.stdout]).toEqual([0, "cp: checkpoint 'before upgrade' applied; the VM is Off\n"]);
    const removed = JSON.parse((await vm('rm-checkpoint', 'cp', made.id, '--tree', '--json')).stdout);
    expect(removed).toMatchObject({ removed: { name: 'before upgrade' }, tree: true });

    const refused = await vm('checkpoint', 'rawvm');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`disk ${raw} is a raw image; checkpoints need VHDX disks (convert it with \`tsvisor disk convert ${raw} <new>.vhdx\``);
  });
});
