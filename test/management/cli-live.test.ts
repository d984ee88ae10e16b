/**
 * The real `tsvisor` binary against a real `tsvisor serve`: vm new / list / show / set / start /
 * stop (guest shutdown that waits, --turn-off, warnings for a state already reached) / rm, wait,
 * query, watch (events pushed as they happen), job list / show, and errors in words (JSON under --json).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
    const watcher = spawn(process.execPath, [
      TSVISOR,
      'watch',
      '--data-dir',
      daemon.dataDir,
      '--count',
      '6',
      '--json',
      "SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.EnabledState <> PreviousInstance.EnabledState",
    ]);
    let watched = '';
    let watchErr = '';
    watcher.stdout.on('data', (c) => {
      watched += c;
    });
    watcher.stderr.on('data', (c) => {
      watchErr += c;
    });
    const watcherDone = new Promise<number>((r) => watcher.on('exit', (code) => r(code ?? -1)));
    await vi.waitFor(() => expect(watchErr).toContain('watching'), { timeout: 60_000, interval: 50 });

    const started = await vm('start', 'web');
    expect([started.code, started.stdout]).toEqual([0, 'web: started (Running)\n']);
    const list = JSON.parse((await vm('list', '--json')).stdout);
    expect(list).toMatchObject([{ ElementName: 'web', EnabledState: 2, HealthState: 5, Summary: { NumberOfProcessors: 2, MemoryUsage: '48' } }]);
    daemon.noteWorker(list[0].ProcessID);

    // Asking for the state a VM is already in is a warning, not a failure (Start-VM on a running VM).
    const again = await vm('start', 'web');
    expect([again.code, again.stdout, again.stderr]).toEqual([0, 'web: already Running (Running)\n', "tsvisor: warning: VM 'web' is already Running\n"]);
    const refused = await vm('resume', 'web', '--json');
    expect([refused.code, JSON.parse(refused.stdout)]).toEqual([
      0,
      expect.objectContaining({ outcome: 'already Running', warning: "VM 'web' is already Running" }),
    ]);
    const graceless = await vm('stop', 'web');
    expect(graceless.code).toBe(1);
    // vm new gave it the integration services, but this guest runs none: nothing answers the request,
    // and the VM goes back from Stopping to Running.
    expect(graceless.stderr).toBe(
      "tsvisor: the guest of VM 'web' did not take the shutdown request (its shutdown service is not answering); turn it off with: tsvisor vm stop web --turn-off (or --force)\n",
    );

    const stopped = await vm('stop', 'web', '--turn-off', '--json');
    expect(JSON.parse(stopped.stdout)).toMatchObject({ outcome: 'turned off', vm: { EnabledState: 3 } });
    expect(await watcherDone).toBe(0);
    expect(
      watched
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((e) => [e.previous.EnabledState, e.target.EnabledState]),
    ).toEqual([
      [3, 10],
      [10, 2],
      [2, 4],
      [4, 2],
      [2, 4],
      [4, 3],
    ]);

    const jobs = JSON.parse((await tsvisor('job', '--data-dir', daemon.dataDir, 'list', '--json')).stdout);
    expect(jobs.map((j: { Description: string; JobState: number }) => [j.Description, j.JobState])).toEqual([
      ['Starting Virtual Machine', 7],
      ['Turning Off Virtual Machine', 7],
    ]);
    const one = await tsvisor('job', '--data-dir', daemon.dataDir, 'show', jobs[0].InstanceID);
    expect(one.stdout).toMatch(/JobState\s+7 \(Completed\)/);

    const removed = await vm('rm', 'web');
    expect([removed.code, removed.stdout]).toEqual([0, 'web: removed\n']);
    // Each run of the binary loads the CLI under tsx: seconds apiece on a busy machine.
  }, 600_000);

  it('stop without options shuts the guest down through its shutdown service and waits; it turns off only with --force or --turn-off', async () => {
    const c = await VmmsClient.connect(daemon.dataDir);
    try {
      for (const [name, cmdline] of [
        ['ic', ''],
        ['deaf', 'ignore-shutdown'],
      ]) {
        await c.call('new', {
          name,
          memoryBytes: 32 * 1024 * 1024,
          imagePath: guestImagePath('ic-services'),
          cmdline,
          devices: [{ kind: 'integration-services' }],
        });
      }
    } finally {
      c.close();
    }
    const started = await vm('start', 'ic', 'deaf', '--json');
    expect(JSON.parse(started.stdout).map((r: { name: string; outcome: string }) => [r.name, r.outcome])).toEqual([
      ['ic', 'started'],
      ['deaf', 'started'],
    ]);
    const q = await tsvisor(
      'query',
      '--data-dir',
      daemon.dataDir,
      '--json',
      "SELECT * FROM Msvm_ComputerSystem WHERE Description = 'Microsoft Virtual Machine'",
    );
    for (const v of JSON.parse(q.stdout)) daemon.noteWorker(v.ProcessID);
    // Wait-VM -For Heartbeat: the guests' integration services are up before they are asked.
    const waited = await vm('wait', 'ic', 'deaf', '--timeout', '60');
    expect([waited.code, waited.stdout]).toEqual([0, 'ic: heartbeat OK\ndeaf: heartbeat OK\n']);
    const [graceful, deaf] = await Promise.all([vm('stop', 'ic', '--timeout', '30'), vm('stop', 'deaf', '--timeout', '2')]);
    expect([graceful.code, graceful.stdout]).toEqual([0, 'ic: shut down (Off)\n']);
    // A guest that takes the request but does not stop is left running, and the user told how to go on.
    expect([deaf.code, deaf.stderr]).toEqual([
      1,
      "tsvisor: VM 'deaf' took the shutdown request but is still Stopping after 2 s; wait longer (--timeout) or turn it off with: tsvisor vm stop deaf --turn-off\n",
    ]);
    const off = await vm('stop', 'd*', '--turn-off', '--json');
    expect(JSON.parse(off.stdout)).toMatchObject([{ name: 'deaf', outcome: 'turned off', vm: { EnabledState: 3 } }]);
    const already = await vm('stop', 'ic', 'deaf');
    expect([already.code, already.stderr]).toEqual([0, "tsvisor: warning: VM 'ic' is already Off\ntsvisor: warning: VM 'deaf' is already Off\n"]);
  }, 300_000);

  it('errors are sentences; --verbose adds the CIM code; under --json they are JSON', async () => {
    const [missing, verbose, asJson, badQuery] = await Promise.all([
      vm('start', 'nope'),
      vm('start', 'nope', '--verbose'),
      vm('start', 'nope', '--json'),
      tsvisor('query', '--data-dir', daemon.dataDir, 'SELEKT * FROM Msvm_ComputerSystem', '--verbose'),
    ]);
    expect([missing.code, missing.stderr]).toEqual([1, "tsvisor: there is no VM named 'nope'; see the VMs with: tsvisor vm list\n"]);
    expect(verbose.stderr).toBe("tsvisor: there is no VM named 'nope'; see the VMs with: tsvisor vm list [CIM_ERR_NOT_FOUND 6]\n");
    expect([asJson.code, JSON.parse(asJson.stdout), asJson.stderr]).toEqual([
      1,
      { error: { message: "there is no VM named 'nope'; see the VMs with: tsvisor vm list", code: 'not-found' } },
      '',
    ]);
    expect(badQuery.code).toBe(1);
    expect(badQuery.stderr).toMatch(/^tsvisor: .* \[CIM_ERR_INVALID_QUERY \(15\)\]\n$/);
  }, 120_000);
});
