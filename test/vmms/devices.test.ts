/**
 * VMs with devices, through VMMS and real worker processes: disks defined on IDE and SCSI reach
 * the guest through the worker's device thread and its data lands in the host files; the
 * integration services answer heartbeat and shutdown requests from VMMS (with the turn-off
 * fallback for a guest that ignores them); a bad disk is refused at start; and a worker with
 * disks that is killed takes only its own VM down.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateChangeEvent, Vmms } from '../../root-partition/vmms/vmms.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { guestPattern } from '../storage/e2e-emulated-harness.ts';
import { MiB, processAlive, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let storage: string;
let ic: string;
let checksum: string;
let emulated: string;

beforeAll(async () => {
  await buildGuests(['storage-synthetic', 'storage-emulated', 'ic-services', 'checksum']);
  emulated = guestImagePath('storage-emulated');
  storage = guestImagePath('storage-synthetic');
  checksum = guestImagePath('checksum');
  ic = guestImagePath('ic-services');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

function disk(dir: string, name: string, bytes = 8 * MiB): string {
  const path = join(dir, name);
  writeFileSync(path, randomFillSync(new Uint8Array(bytes)));
  return path;
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

const values = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^\w+=\d+$/.test(l))
      .map((l) => [l.split('=')[0], Number(l.split('=')[1])]),
  );

async function icVm(v: Vmms, name: string, cmdline = '', devices: object[] = []): Promise<void> {
  v.defineVm({ name, memoryBytes: 32 * MiB, imagePath: ic, cmdline, devices: [{ kind: 'integration-services' }, ...devices] as never });
  expect(await v.start(name)).toMatchObject({ returnValue: 0 });
  await waitFor(`${name}'s heartbeat`, async () => (await v.heartbeatStatus(name)) === 2);
}

describe('VM devices in the worker process', () => {
  it('a VM with an IDE disk and a SCSI disk runs the synthetic storage guest; its data is in the host file', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const ide = disk(dataDir, 'ide.raw');
    const scsi = disk(dataDir, 'scsi.raw');
    const ideBefore = readAt(ide, 0, 1 * MiB);
    v.defineVm({
      name: 'disks',
      memoryBytes: 32 * MiB,
      imagePath: storage,
      devices: [
        { kind: 'ide-disk', controller: 0, position: 0, path: ide },
        { kind: 'scsi-controller', disks: [{ location: 0, path: scsi }] },
      ],
    });
    expect(await v.start('disks')).toMatchObject({ returnValue: 0 });
    // The guest writes its pattern, reads it back and halts: the VM goes Off by itself.
    await waitFor('the guest to finish', () => v.get('disks')!.enabledState === 3, 30_000);
    const out = values(v.console('disks'));
    expect(out).toMatchObject({ storvsc_open: 1, readback_ok: 1, rand_errors: 0 });
    expect(v.get('disks')).toMatchObject({ healthState: 5, lastError: null });
    // storage-synthetic's pattern: 256 sectors at LBA 8, byte o = (o>>9)*37 + (o&511)*11 + 3.
    const written = readAt(scsi, 8 * 512, 256 * 512);
    const expected = Buffer.from(Array.from({ length: written.length }, (_, o) => ((o >> 9) * 37 + (o & 511) * 11 + 3) & 0xff));
    expect(written.equals(expected)).toBe(true);
    // The IDE disk was attached and left alone by a guest that does not use IDE.
    expect(readAt(ide, 0, 1 * MiB).equals(ideBefore)).toBe(true);
  }, 60_000);

  it('the emulated storage guest writes through the IDE disk at secondary slave (controller 1, position 1)', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const file = disk(dataDir, 'ide-ss.raw');
    v.defineVm({
      name: 'ide',
      memoryBytes: 32 * MiB,
      imagePath: emulated,
      cmdline: 'mode=dma disk=3 wlba=64 wsectors=64 seed=7',
      devices: [{ kind: 'ide-disk', controller: 1, position: 1, path: file }],
    });
    expect(await v.start('ide')).toMatchObject({ returnValue: 0 });
    await waitFor('the guest to finish', () => v.get('ide')!.enabledState === 3, 30_000);
    expect(values(v.console('ide'))).toMatchObject({ attach_status: 0, write_status: 0, flush_status: 0, readback_ok: 1 });
    expect(readAt(file, 64 * 512, 64 * 512).equals(guestPattern(7, 64, 64))).toBe(true);
  }, 60_000);

  it('a VM with an IDE disk and no VMBus connection saves the chipset from the device thread and restores', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const vm = v.defineVm({
      name: 'ck',
      memoryBytes: 16 * MiB,
      imagePath: checksum,
      cmdline: 'rounds=100000000 work=20000',
      devices: [{ kind: 'ide-disk', controller: 1, position: 0, path: disk(dataDir, 'ck.raw', 1 * MiB) }],
    });
    expect((await v.start('ck')).returnValue).toBe(0);
    await waitFor('progress', () => /progress round=\d+/.test(v.console('ck')));
    expect(await v.save('ck')).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
    const log = readFileSync(join(dataDir, 'logs', `vmwp-${vm.id}.log`), 'utf8');
    expect(log).toMatch(/device records pic8259, com1, com2, pci-config, piix4-ide,/);
    expect(await v.start('ck')).toMatchObject({ returnValue: 0, vm: { enabledState: 2 } });
    const lines = () => (v.console('ck').match(/progress round=/g) ?? []).length;
    const seen = lines();
    await waitFor('progress after the restore', () => lines() > seen, 10_000);
    expect((await v.turnOff('ck')).returnValue).toBe(0);
  }, 60_000);

  it('a missing disk is refused at start, naming the file; the VM stays Off', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const missing = join(dataDir, 'no-such-disk.raw');
    v.defineVm({ name: 'bad', memoryBytes: 16 * MiB, imagePath: storage, devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path: missing }] }] });
    const r = await v.start('bad');
    expect(r.returnValue).toBe(32768);
    expect(r.error).toContain(missing);
    expect(v.get('bad')).toMatchObject({ enabledState: 3, processId: null });
    // A file that is not whole sectors is refused the same way.
    const odd = join(dataDir, 'odd.raw');
    writeFileSync(odd, Buffer.alloc(1000));
    v.defineVm({ name: 'odd', memoryBytes: 16 * MiB, imagePath: storage, devices: [{ kind: 'ide-disk', controller: 1, position: 1, path: odd }] });
    const r2 = await v.start('odd');
    expect(r2.error).toMatch(/odd\.raw \(IDE controller 1 position 1\) is 1000 bytes/);
    expect(v.get('odd')).toMatchObject({ enabledState: 3, processId: null });
  });

  it('bad device settings are refused when the VM is defined, each with its entry', () => {
    const dataDir = fx.dataDir();
    return fx.vmms({ dataDir }).then((v) => {
      expect(() =>
        v.defineVm({
          name: 'x',
          memoryBytes: 16 * MiB,
          imagePath: storage,
          devices: [
            { kind: 'ide-disk', controller: 2, path: '/a.raw' },
            { kind: 'ide-disk', path: 'relative.raw' },
            { kind: 'ide-disk', path: '/b.raw' },
            {
              kind: 'scsi-controller',
              disks: [
                { location: 64, path: '/c.raw' },
                { location: 1, path: '/d.raw', readOnly: 'yes' },
              ],
            },
            { kind: 'floppy' },
          ],
        }),
      ).toThrow(
        /devices\[0\]\.controller: must be 0 or 1.*devices\[1\]\.path.*devices\[2\]: IDE controller 0 position 0 is already taken.*disks\[0\]\.location.*disks\[1\]\.readOnly.*devices\[4\]\.kind/,
      );
    });
  });

  it('heartbeat OK, saved and restored with its integration services, then a graceful shutdown through VMMS: the guest halts and the VM is Off', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    await icVm(v, 'ic');
    const pid = v.get('ic')!.processId!;
    // Saved with VMBus and its integration services, restored in a new worker: they serve on.
    const save = await v.save('ic');
    expect(save).toMatchObject({ returnValue: 0, vm: { enabledState: 6 } });
    await waitFor('the first worker to exit', () => !processAlive(pid), 10_000);
    expect((await v.start('ic')).returnValue).toBe(0);
    const restoredPid = v.get('ic')!.processId!;
    expect(restoredPid).not.toBe(pid);
    await waitFor('the heartbeat after the restore', async () => (await v.heartbeatStatus('ic')) === 2);
    // KVP both ways: a host item the guest prints (pool External, 0), the guest's own item (pool Guest, 1).
    await v.kvpSet('ic', 0, 'Owner', 'tests');
    await waitFor('the guest to print the host item', () => v.console('ic').includes('kvp0 Owner=tests'), 5000);
    expect(await v.kvpGet('ic', 1, 'GuestState')).toBe('serving');
    expect(await v.kvpGet('ic', 1, 'NoSuchKey')).toBeNull();

    const reasons: string[] = [];
    v.events.on('state-changed', (e: StateChangeEvent) => reasons.push(`${e.state} ${e.reason}`));
    const started = Date.now();
    const r = await v.shutdown('ic', { timeoutMs: 10_000, reason: 'test' });
    expect(r).toMatchObject({ returnValue: 0, vm: { enabledState: 3, healthState: 5 } });
    expect(Date.now() - started).toBeLessThan(8000);
    // Stopping, then Off because the guest stopped by itself (not a turn-off).
    expect(reasons).toEqual([expect.stringMatching(/^4 shutdown requested/), '3 the guest stopped']);
    expect(values(v.console('ic'))).toMatchObject({ shutdown_flags: expect.any(Number) });
    await waitFor('the worker to exit', () => !processAlive(restoredPid), 5000);
  }, 60_000);

  it('a guest that ignores the shutdown request is turned off after the timeout', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    await icVm(v, 'deaf', 'ignore-shutdown');
    const pid = v.get('deaf')!.processId!;
    const reasons: string[] = [];
    v.events.on('state-changed', (e: StateChangeEvent) => reasons.push(`${e.state} ${e.reason}`));
    const started = Date.now();
    const r = await v.shutdown('deaf', { timeoutMs: 1500 });
    const took = Date.now() - started;
    expect(r).toMatchObject({ returnValue: 0, vm: { enabledState: 3 } });
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(8000);
    await waitFor('the worker to exit', () => !processAlive(pid), 5000);
    expect(v.get('deaf')?.processId).toBeNull();
    expect(reasons).toEqual([expect.stringMatching(/^4 shutdown requested/), '3 turned off']);
  }, 60_000);

  it("an image a running VM uses is refused to a second VM, naming the first VM's worker, until the first lets it go", async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const shared = disk(dataDir, 'shared.raw', 1 * MiB);
    await icVm(v, 'owner', '', [{ kind: 'ide-disk', path: shared }]);
    const owner = v.get('owner')!;
    v.defineVm({
      name: 'intruder',
      memoryBytes: 32 * MiB,
      imagePath: ic,
      devices: [{ kind: 'integration-services' }, { kind: 'scsi-controller', disks: [{ location: 0, path: shared, readOnly: true }] }] as never,
    });
    const r = await v.start('intruder');
    expect(r.returnValue).toBe(32768);
    expect(r.error).toContain(`disk image ${shared} is in use: process ${owner.processId} (tsvisor-vmwp ${owner.id}) holds an exclusive lock`);
    expect(v.get('intruder')).toMatchObject({ enabledState: 3, processId: null });
    expect(v.get('owner')).toMatchObject({ enabledState: 2 });
    expect((await v.turnOff('owner')).returnValue).toBe(0);
    expect(await v.start('intruder')).toMatchObject({ returnValue: 0 });
    expect((await v.turnOff('intruder')).returnValue).toBe(0);
  }, 60_000);

  it('kill -9 of a worker with disks leaves VMMS and the other VM running', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const devices = [
      { kind: 'ide-disk', path: disk(dataDir, 'v-ide.raw') },
      { kind: 'scsi-controller', disks: [{ location: 3, path: disk(dataDir, 'v-scsi.raw') }] },
    ];
    await icVm(v, 'victim', '', devices);
    await icVm(v, 'bystander');
    const victim = v.get('victim')!;
    process.kill(victim.processId!, 'SIGKILL');
    await waitFor('the victim to be Off', () => v.get('victim')!.enabledState === 3, 5000);
    expect(v.get('victim')).toMatchObject({ healthState: 25, processId: null });
    await waitFor('the victim process to be reaped', () => !processAlive(victim.processId!), 2000);
    expect(v.get('bystander')).toMatchObject({ enabledState: 2, healthState: 5 });
    expect(await v.heartbeatStatus('bystander')).toBe(2);
    // The victim's disks were let go: it starts again on the same files.
    expect(await v.start('victim')).toMatchObject({ returnValue: 0 });
    expect((await v.turnOff('victim')).returnValue).toBe(0);
    expect((await v.turnOff('bystander')).returnValue).toBe(0);
  }, 60_000);
});
