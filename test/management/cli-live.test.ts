/**
 * The real `tsvisor` binary against a real `tsvisor serve`: vm new / list / show / set / start /
 * stop (guest shutdown, the turn-off fallback, --turn-off) / rm, query, watch (events pushed as
 * they happen), job list / show, and errors that carry the CIM code and a sentence.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, TSVISOR } from './live-daemon.ts';

let daemon: LiveDaemon;
const tsvisor = (...args: string[]) => run(process.execPath, [TSVISOR, ...args], 90_000);
const vm = (...args: string[]) => tsvisor('vm', '--data-dir', daemon.dataDir, ...args);

beforeAll(async () => {
  await buildGuests(['checksum', 'ic-services']);
  daemon = await LiveDaemon.start();
}, 120_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('tsvisor management verbs against a real daemon', () => {
  it('new, set, show, start, watch, stop --turn-off, job list/show, rm', async () => {
    const created = await vm('new', 'web', '--image', guestImagePath('checksum'), '--cmdline', 'rounds=100000000', '-m', '32M', '--stop-action', 'turn-off');
    expect([created.code, created.stderr]).toEqual([0, '']);
    expect(created.stdout).toMatch(/^web: defined, id [0-9a-f-]{36}\n$/);

    // In the data directory's disks/, a storage root every host allows.
    const disk = join(daemon.dataDir, 'disks', 'data.raw');
    writeFileSync(disk, Buffer.alloc(1024 * 1024));
    const set = await vm('set', 'web', '-m', '48M', '--vps', '2', '--add-disk', disk, '--controller', 'ide:0', '--location', '1');
    expect([set.code, set.stdout, set.stderr]).toEqual([0, 'web: resources, disk added changed\n', '']);
    const shown = JSON.parse((await vm('show', 'web', '--json')).stdout);
    const byClass = (c: string) => shown.resources.filter((r: { __CLASS: string }) => r.__CLASS === c);
    expect(byClass('Msvm_MemorySettingData')[0].VirtualQuantity).toBe('48');
    expect(byClass('Msvm_ProcessorSettingData')[0].VirtualQuantity).toBe('2');
    expect(byClass('Msvm_StorageAllocationSettingData')[0]).toMatchObject({ HostResource: [disk], ResourceType: 31 });

    // The watcher prints each state change as the service pushes it.
    const watcher = spawn(process.execPath, [TSVISOR, 'watch', '--data-dir', daemon.dataDir, '--count', '4', '--json',
      "SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.EnabledState <> PreviousInstance.EnabledState"]);
    let watched = '';
    let watchErr = '';
    watcher.stdout.on('data', (c) => { watched += c; });
    watcher.stderr.on('data', (c) => { watchErr += c; });
    const watcherDone = new Promise<number>((r) => watcher.on('exit', (code) => r(code ?? -1)));
    const deadline = Date.now() + 60_000;
    while (!watchErr.includes('watching') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const started = await vm('start', 'web');
    expect([started.code, started.stdout]).toEqual([0, 'web: started (Running)\n']);
    const list = JSON.parse((await vm('list', '--json')).stdout);
    expect(list).toMatchObject([{ ElementName: 'web', EnabledState: 2, HealthState: 5, Summary: { NumberOfProcessors: 2, MemoryUsage: '48' } }]);
    daemon.noteWorker(list[0].ProcessID);

    const refused = await vm('start', 'web');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('tsvisor: RequestStateChange (32775): Invalid state for this operation; the VM is Running and accepts 3 (turn off), 6 (save), 9 (pause), 11 (reset)\n');
    const graceless = await vm('stop', 'web');
    expect(graceless.code).toBe(1);
    expect(graceless.stderr).toMatch(/^tsvisor: InitiateShutdown \(32770\): VM web has no shutdown integration service/);

    const stopped = await vm('stop', 'web', '--turn-off', '--json');
    expect(JSON.parse(stopped.stdout)).toMatchObject({ outcome: 'turned off', vm: { EnabledState: 3 } });
    expect(await watcherDone).toBe(0);
    expect(watched.trim().split('\n').map((l) => JSON.parse(l)).map((e) => [e.previous.EnabledState, e.target.EnabledState])).toEqual([[3, 10], [10, 2], [2, 4], [4, 3]]);

    const jobs = JSON.parse((await tsvisor('job', '--data-dir', daemon.dataDir, 'list', '--json')).stdout);
    expect(jobs.map((j: { Description: string; JobState: number }) => [j.Description, j.JobState])).toEqual([['Starting Virtual Machine', 7], ['Turning Off Virtual Machine', 7]]);
    const one = await tsvisor('job', '--data-dir', daemon.dataDir, 'show', jobs[0].InstanceID);
    expect(one.stdout).toMatch(/JobState\s+7 \(Completed\)/);

    const removed = await vm('rm', 'web');
    expect([removed.code, removed.stdout]).toEqual([0, 'web: removed\n']);
    // Each run of the binary loads the CLI under tsx: seconds apiece on a busy machine.
  }, 600_000);

  it('stop without options shuts the guest down through its shutdown service, or turns it off after --timeout', async () => {
    const c = await VmmsClient.connect(daemon.dataDir);
    try {
      // DefineSystem has no integration-service settings yet: these VMs are defined through the VMMS's own verb.
      for (const [name, cmdline] of [['ic', ''], ['deaf', 'ignore-shutdown']]) {
        await c.call('new', { name, memoryBytes: 32 * 1024 * 1024, imagePath: guestImagePath('ic-services'), cmdline, devices: [{ kind: 'integration-services' }] });
      }
    } finally {
      c.close();
    }
    for (const name of ['ic', 'deaf']) expect((await vm('start', name)).code).toBe(0);
    const q = await tsvisor('query', '--data-dir', daemon.dataDir, '--json', "SELECT * FROM Msvm_ComputerSystem WHERE Description = 'Microsoft Virtual Machine'");
    for (const v of JSON.parse(q.stdout)) daemon.noteWorker(v.ProcessID);
    // Give the guests' integration services time to connect before asking them.
    await new Promise((r) => setTimeout(r, 3000));
    const [graceful, fallback] = await Promise.all([vm('stop', 'ic', '--timeout', '20'), vm('stop', 'deaf', '--timeout', '2')]);
    expect([graceful.code, graceful.stdout]).toEqual([0, 'ic: shut down (Off)\n']);
    expect([fallback.code, fallback.stdout]).toEqual([0, 'deaf: turned off after the shutdown timeout (Off)\n']);
    expect(fallback.stderr).toContain('did not shut down within 2 s; turning it off');
  }, 300_000);

  it('errors show the CIM code and a sentence', async () => {
    const [missing, badQuery] = await Promise.all([
      vm('start', 'nope'),
      tsvisor('query', '--data-dir', daemon.dataDir, 'SELEKT * FROM Msvm_ComputerSystem'),
    ]);
    expect([missing.code, missing.stderr]).toEqual([1, 'tsvisor: CIM_ERR_NOT_FOUND (6): no VM named or with id "nope"\n']);
    expect(badQuery.code).toBe(1);
    expect(badQuery.stderr).toMatch(/^tsvisor: CIM_ERR_INVALID_QUERY \(15\): /);
  }, 120_000);
});
