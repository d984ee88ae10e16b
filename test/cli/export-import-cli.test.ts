/**
 * `tsvisor vm export` and `tsvisor vm import` against a real `tsvisor serve`: the words and the
 * JSON of each, and a refusal as a sentence (or a JSON error under --json).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { LiveDaemon, run, TSVISOR } from '../management/live-daemon.ts';

let daemon: LiveDaemon;
const vm = (...args: string[]) => run(process.execPath, [TSVISOR, 'vm', '--data-dir', daemon.dataDir, ...args], 120_000);

beforeAll(async () => {
  await buildGuests(['hello']);
  daemon = await LiveDaemon.start();
}, 180_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('vm export / vm import', () => {
  it('exports a VM, refuses to import it over itself, imports a copy with a new id', async () => {
    const disks = join(daemon.dataDir, 'disks'); // a storage root of every host
    const disk = join(disks, 'c.raw');
    writeFileSync(disk, Buffer.alloc(1024 * 1024, 0x5a));
    const c = await VmmsClient.connect(daemon.dataDir);
    const { id } = await c.call<{ id: string }>('new', {
      name: 'c',
      memoryBytes: 16 << 20,
      imagePath: guestImagePath('hello'),
      devices: [{ kind: 'ide-disk', controller: 0, position: 0, path: disk }],
    });
    c.close();
    const to = join(disks, 'exports');
    mkdirSync(to);

    const exported = await vm('export', 'c', to, '--json');
    expect([exported.code, exported.stderr]).toEqual([0, '']);
    const folder = join(to, 'c');
    expect(JSON.parse(exported.stdout)).toEqual({ vm: 'c', vmId: id, path: folder, disks: ['c.raw'], checkpoints: 0, savedState: false });
    expect(readFileSync(join(folder, 'Virtual Hard Disks', 'c.raw'))).toEqual(readFileSync(disk));

    const again = await vm('import', folder);
    expect([again.code, again.stderr]).toEqual([
      1,
      `tsvisor: a VM with id ${id} is already defined on this host; import a copy with a new id (--copy <dir> --new-id) or remove that VM\n`,
    ]);

    const copied = await vm('import', folder, '--copy', join(disks, 'c2'), '--new-id', '--name', 'c2');
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stdout).toMatch(/^c2: imported \(disks copied\), id [0-9a-f-]{36}, 0 checkpoints; Off\n$/);
    expect(readFileSync(join(disks, 'c2', 'c.raw'))).toEqual(readFileSync(disk));
  }, 120_000);
});
