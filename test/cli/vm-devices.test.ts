/**
 * The `tsvisor` binary against a real `tsvisor serve`: a VM made with the CLI alone, as New-VM
 * makes it (both IDE controllers, a SCSI controller, the integration services on), its drives and
 * controllers changed with the Hyper-V verbs while the service runs, then the reference guest
 * started, waited for (Wait-VM -For Heartbeat), its KVP items read and written, and shut down
 * through its shutdown service. Also: the words and JSON of the errors a user can cause.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, TSVISOR } from '../management/live-daemon.ts';

let daemon: LiveDaemon;
const vm = (...args: string[]) => run(process.execPath, [TSVISOR, 'vm', '--data-dir', daemon.dataDir, ...args], 120_000);
const json = async (...args: string[]) => {
  const r = await vm(...args, '--json');
  if (r.code !== 0) throw new Error(`vm ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
};

beforeAll(async () => {
  await buildGuests(['ref-enlightened', 'hello']);
  daemon = await LiveDaemon.start();
}, 180_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('a VM made and run with the CLI alone', () => {
  it('New-VM defaults; drives and SCSI controllers added and removed; integration services listed and switched', async () => {
    const made = await vm('new', 'ref', '--image', guestImagePath('ref-enlightened'), '-m', '32M');
    expect([made.code, made.stderr]).toEqual([0, '']);
    const [ics, controllers, drives] = await Promise.all([json('ic', 'list', 'ref'), json('scsi', 'list', 'ref'), json('drive', 'list', 'ref')]);
    expect(ics.map((i: { id: string; enabled: boolean }) => [i.id, i.enabled])).toEqual([
      ['heartbeat', true],
      ['shutdown', true],
      ['timeSync', true],
      ['kvp', true],
    ]);
    expect(controllers).toEqual([{ controllerNumber: 0, drives: 0 }]);
    expect(drives).toEqual([]);

    const disk = join(daemon.dataDir, 'disks', 'data.raw'); // disks/: a storage root of every host
    writeFileSync(disk, Buffer.alloc(1024 * 1024));
    const scsiDrive = await vm('drive', 'add', 'ref', '--controller-type', 'SCSI', '--controller-location', '3', '--path', disk);
    expect([scsiDrive.code, scsiDrive.stdout]).toEqual([0, `ref: drive added at SCSI 0:3 with ${disk}\n`]);
    const empty = await vm('drive', 'add', 'ref');
    expect([empty.code, empty.stdout]).toEqual([0, 'ref: drive added at IDE 0:0 (empty)\n']);
    expect(await json('drive', 'list', 'ref')).toEqual([
      { controllerType: 'IDE', controllerNumber: 0, controllerLocation: 0, path: null },
      { controllerType: 'SCSI', controllerNumber: 0, controllerLocation: 3, path: disk },
    ]);
    const taken = await vm('drive', 'add', 'ref', '--controller-type', 'scsi', '--controller-location', '3', '--path', disk);
    expect([taken.code, taken.stderr]).toEqual([1, 'tsvisor: drive: SCSI 0:3 is already taken\n']);
    const removed = await vm('drive', 'rm', 'ref', '--controller-number', '0', '--controller-location', '0');
    expect([removed.code, removed.stdout]).toEqual([0, 'ref: drive at IDE 0:0 removed\n']);

    // Add-VMScsiController up to Hyper-V's four; a fifth is refused in words.
    for (const n of [1, 2, 3]) expect((await vm('scsi', 'add', 'ref')).stdout).toBe(`ref: SCSI controller ${n} added\n`);
    const fifth = await vm('scsi', 'add', 'ref', '--json');
    expect([fifth.code, JSON.parse(fifth.stdout)]).toEqual([
      1,
      { error: { message: 'SCSI controller: the VM already has 4, the most it can have', code: 'invalid-parameter' } },
    ]);
    const busy = await vm('scsi', 'rm', 'ref', '--controller-number', '0');
    expect(busy.stderr).toBe('tsvisor: SCSI controller 0: only the last SCSI controller (3) can be removed\n');
    for (const n of [3, 2, 1]) expect((await vm('scsi', 'rm', 'ref')).stdout).toBe(`ref: SCSI controller ${n} removed\n`);

    const off = await vm('ic', 'disable', 'ref', 'Time Synchronization');
    expect([off.code, off.stdout]).toEqual([0, 'ref: Time Synchronization disabled\n']);
    expect((await json('ic', 'list', 'ref')).map((i: { enabled: boolean }) => i.enabled)).toEqual([true, true, false, true]);
    const unknown = await vm('ic', 'enable', 'ref', 'vss');
    expect(unknown.stderr).toMatch(
      /^tsvisor: there is no integration service "vss"; the services are heartbeat \(Heartbeat\), shutdown \(Shutdown\), timeSync \(Time Synchronization\), kvp \(Key-Value Pair Exchange\)\n$/,
    );
    expect((await vm('ic', 'enable', 'ref', 'time-sync')).code).toBe(0);
  }, 600_000);

  it('starts, reports its heartbeat, exchanges KVP items, and shuts down gracefully', async () => {
    const started = await vm('start', 'ref');
    expect([started.code, started.stdout]).toEqual([0, 'ref: started (Running)\n']);
    daemon.noteWorker((await json('show', 'ref')).system.ProcessID);
    const waited = await json('wait', 'ref', '--for', 'heartbeat', '--timeout', '60');
    expect(waited).toMatchObject({ for: 'heartbeat', vms: [{ name: 'ref', reached: 'heartbeat OK' }] });
    expect(await json('heartbeat', 'ref')).toEqual({ vm: 'ref', status: 'OK', code: 2, state: 'Running' });
    const ics = await json('ic', 'list', 'ref');
    expect(ics.find((i: { id: string }) => i.id === 'heartbeat').primaryStatusDescription).toBe('OK');

    const kvp = await json('kvp', 'ref', '--set', 'role=web');
    expect(kvp.set).toEqual(['role']);
    expect(kvp.items).toContainEqual({ pool: 'intrinsic', name: 'OSName', data: 'tsvisor reference guest' });

    // Changing a device needs the VM Off, and says so.
    const refused = await vm('scsi', 'add', 'ref');
    expect([refused.code, refused.stderr]).toEqual([1, 'tsvisor: cannot change the settings of a VM that is Running; turn it off first\n']);

    const stopped = await vm('stop', 'ref', '--timeout', '60');
    expect([stopped.code, stopped.stdout, stopped.stderr]).toEqual([0, 'ref: shut down (Off)\n', '']);
    const resume = await vm('resume', 'ref');
    expect([resume.code, resume.stderr]).toEqual([
      1,
      "tsvisor: VM 'ref' is Off, not Paused: there is nothing to resume; start it with: tsvisor vm start ref\n",
    ]);
    const noHeartbeat = await vm('wait', 'ref', '--timeout', '5');
    expect(noHeartbeat.stderr).toBe("tsvisor: VM 'ref' is Off, so no heartbeat will come; start it first (tsvisor vm start ref)\n");
  }, 300_000);

  it('usage errors in words, and as JSON under --json', async () => {
    const [vps, vpsJson, notes, badAction, unknownOption] = await Promise.all([
      vm('new', 'x', '--image', guestImagePath('hello'), '--vps', 'abc'),
      vm('new', 'x', '--image', guestImagePath('hello'), '--vps', 'abc', '--json'),
      vm('set', 'ref', '--notes', 'the web front end', '--automatic-start-action', 'start', '--json'),
      vm('set', 'ref', '--automatic-start-action', 'sometimes'),
      vm('list', '--frobnicate', '--json'),
    ]);
    expect([vps.code, vps.stderr]).toEqual([1, 'tsvisor: --vps must be a whole number 1..64, not "abc"\n']);
    expect([vpsJson.code, JSON.parse(vpsJson.stdout)]).toEqual([
      1,
      { error: { message: '--vps must be a whole number 1..64, not "abc"', code: 'invalid-parameter' } },
    ]);
    expect([notes.code, JSON.parse(notes.stdout)]).toEqual([0, { vm: 'ref', changed: ['system settings'] }]);
    const settings = (await json('show', 'ref')).settings;
    expect([settings.Notes, settings.AutomaticStartupAction]).toEqual([['the web front end'], 4]);
    expect(badAction.stderr).toBe("tsvisor: --automatic-start-action must be 'nothing', 'start' or 'start-if-running', not \"sometimes\"\n");
    expect([unknownOption.code, JSON.parse(unknownOption.stdout)]).toEqual([1, { error: { message: "unknown option '--frobnicate'", code: 'usage' } }]);
    const nowhere = join(daemon.dataDir, 'nowhere');
    const [noService, noServiceJson] = await Promise.all([
      run(process.execPath, [TSVISOR, 'vm', '--data-dir', nowhere, 'list']),
      run(process.execPath, [TSVISOR, 'vm', '--data-dir', nowhere, 'list', '--json']),
    ]);
    expect([noService.code, noService.stderr]).toEqual([
      1,
      `tsvisor: no tsvisor service is running for ${nowhere}; start one with: tsvisor serve --data-dir ${nowhere}\n`,
    ]);
    expect(JSON.parse(noServiceJson.stdout).error.code).toBe('no-service');
  }, 300_000);
});
