/**
 * A restored saved state is consumed by the worker that restored it, before the guest runs: a
 * management service that dies during the restore leaves no file behind that a later service
 * would take for a Saved VM. Real worker processes: launched as VMMS launches them with no VMMS
 * left to finish the restore, and under a real daemon frozen as its worker starts and killed with
 * SIGKILL once the guest runs. A new VMMS reattaches (Running); once the worker is gone too (a
 * host crash) the VM is Off — never Saved with memory older than its disks.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataDir } from '../../root-partition/host/data-dir.ts';
import { launchWorker } from '../../root-partition/vmms/vmwp-launcher.ts';
import { VmwpConnection } from '../../root-partition/vmms/vmwp-connection.ts';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import type { RequestResult } from '../../root-partition/vmms/vmms.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let checksum: string;

beforeAll(async () => {
  checksum = (await testImages()).checksum;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

async function kill9(d: ChildProcess): Promise<void> {
  d.kill('SIGKILL');
  await waitFor('the daemon to die', () => d.exitCode !== null || d.signalCode !== null);
}

const rounds = (text: string) => [...text.matchAll(/progress round=(\d+)/g)].map((m) => Number(m[1]));

describe('a restored saved state is consumed', () => {
  it('the worker removes the file before the guest runs; after VMMS and the worker die the VM is Off, not Saved', { timeout: 90_000 }, async () => {
    const dataDir = fx.dataDir();
    const paths = new DataDir(dataDir);
    const v1 = await fx.vmms({ dataDir });
    const vm = v1.defineVm({ name: 'ck', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=100000000 work=20000' });
    expect((await v1.start('ck')).returnValue).toBe(0);
    await waitFor('progress', () => rounds(v1.console('ck')).length > 0);
    expect((await v1.save('ck')).vm).toMatchObject({ enabledState: 6 });
    const file = paths.savedState(vm.id);
    const stale = join(dataDir, 'stale-copy.vmrs');
    copyFileSync(file, stale);
    await fx.detach(v1);

    // The restore as VMMS starts it; the service is gone before it could finish it.
    const w = launchWorker(
      { dataDir, vmId: vm.id, name: 'ck', memoryBytes: 16 * MiB, vpCount: 1, imagePath: checksum, cmdline: 'rounds=100000000 work=20000', restoreFrom: file },
      paths.workerOutput(vm.id),
    );
    fx.pids.add(w.pid);
    const conn = await VmwpConnection.open(paths.workerSocket(vm.id), 60_000, () => !w.exited());
    expect((await conn.request('STATUS', 60_000)).state).toBe('running');
    conn.close();
    expect(existsSync(file)).toBe(false);
    expect(readFileSync(join(dataDir, 'logs', `vmwp-${vm.id}.log`), 'utf8')).toMatch(/restored from .* the file is consumed/);

    // The next service reattaches: Running, the same worker.
    const v2 = await fx.vmms({ dataDir });
    expect(v2.get('ck')).toMatchObject({ enabledState: 2, processId: w.pid });
    const seen = rounds(v2.console('ck')).length;
    await waitFor('the restored guest to run on', () => rounds(v2.console('ck')).length > seen);
    await fx.detach(v2);

    // The host goes down with the VM running: nothing left claims the VM is Saved.
    process.kill(w.pid, 'SIGKILL');
    await waitFor('the worker to die', () => !processAlive(w.pid));
    const v3 = await fx.vmms({ dataDir });
    expect(v3.get('ck')).toMatchObject({ enabledState: 3, processId: null });
    await fx.detach(v3);
  });

  it('a saved-state file beside a running worker is stale: VMMS discards it on reattach', { timeout: 90_000 }, async () => {
    const dataDir = fx.dataDir();
    const paths = new DataDir(dataDir);
    const v1 = await fx.vmms({ dataDir });
    const vm = v1.defineVm({ name: 'ck', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=100000000 work=20000' });
    expect((await v1.start('ck')).returnValue).toBe(0);
    await waitFor('progress', () => rounds(v1.console('ck')).length > 0);
    expect((await v1.save('ck')).returnValue).toBe(0);
    const file = paths.savedState(vm.id);
    const stale = join(dataDir, 'stale-copy.vmrs');
    copyFileSync(file, stale);
    expect((await v1.start('ck')).vm).toMatchObject({ enabledState: 2 });
    const pid = v1.get('ck')!.processId!;
    await fx.detach(v1);
    // A file left by a release whose worker did not consume it, or put back by hand.
    copyFileSync(stale, file);
    const v2 = await fx.vmms({ dataDir });
    expect(v2.get('ck')).toMatchObject({ enabledState: 2, processId: pid });
    expect(existsSync(file)).toBe(false);
    await fx.detach(v2);
    process.kill(pid, 'SIGKILL');
    await waitFor('the worker to die', () => !processAlive(pid));
    expect((await fx.vmms({ dataDir })).get('ck')).toMatchObject({ enabledState: 3 });
  });

  it('the daemon killed with SIGKILL in the middle of a restore: a new daemon finds the VM Running, then Off — never Saved', { timeout: 120_000 }, async () => {
    const dataDir = fx.dataDir();
    const paths = new DataDir(dataDir);
    const d1 = await fx.daemon(dataDir);
    const c1 = await VmmsClient.connect(dataDir);
    const vm = await c1.call<VmView>('new', { name: 'ck', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=100000000 work=20000' });
    expect((await c1.call<RequestResult>('start', { vm: 'ck' })).returnValue).toBe(0);
    fx.pids.add((await c1.call<VmView>('show', { vm: 'ck' })).processId!);
    for (let i = 0; rounds(await c1.call<string>('console', { vm: 'ck' })).length === 0; i++) {
      if (i > 300) throw new Error('no progress');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await c1.call<RequestResult>('save', { vm: 'ck' })).returnValue).toBe(0);
    const file = paths.savedState(vm.id);
    expect(existsSync(file)).toBe(true);

    // Restore; the daemon is frozen as soon as its worker listens (before the boot, which
    // answers the daemon's STATUS), and killed once the worker has restored and runs the guest.
    void c1.call('start', { vm: 'ck' }).catch(() => {});
    await waitFor('the restoring worker', () => existsSync(paths.workerSocket(vm.id)), 60_000);
    d1.kill('SIGSTOP');
    const log = join(dataDir, 'logs', `vmwp-${vm.id}.log`);
    const restoredLine = await waitFor(
      'the restore',
      () =>
        readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => /restored from/.test(l))
          .at(-1),
      60_000,
    );
    const pid = Number(/"pid":(\d+)/.exec(restoredLine)![1]);
    fx.pids.add(pid);
    await kill9(d1);
    c1.close();
    expect(processAlive(pid)).toBe(true);
    expect(existsSync(file)).toBe(false);

    const d2 = await fx.daemon(dataDir);
    const c2 = await VmmsClient.connect(dataDir);
    expect(await c2.call<VmView>('show', { vm: 'ck' })).toMatchObject({ enabledState: 2, processId: pid });
    c2.close();
    await kill9(d2);
    // The host goes down: the worker dies too.
    process.kill(pid, 'SIGKILL');
    await waitFor('the worker to die', () => !processAlive(pid));

    const d3 = await fx.daemon(dataDir);
    const c3 = await VmmsClient.connect(dataDir);
    expect(await c3.call<VmView>('show', { vm: 'ck' })).toMatchObject({ enabledState: 3, processId: null });
    c3.close();
    d3.kill('SIGTERM');
    await waitFor('the daemon to stop', () => d3.exitCode !== null, 30_000);
  });
});
