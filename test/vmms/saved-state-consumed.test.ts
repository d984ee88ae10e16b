/**
 * A restored saved state is consumed by the worker that restored it, before the guest runs: a
 * management service that dies during the restore (here: the test launches the worker exactly as
 * VMMS does, and no VMMS is there to finish the restore) leaves no file behind that a later
 * service would take for a Saved VM. A real worker process; a new VMMS reattaches to it, and once
 * the worker is gone too (a host crash) the VM is Off — never Saved with stale memory.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataDir } from '../../root-partition/vmms/data-dir.ts';
import { launchWorker } from '../../root-partition/vmms/vmwp-launcher.ts';
import { VmwpConnection } from '../../root-partition/vmms/vmwp-connection.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let checksum: string;

beforeAll(async () => {
  checksum = (await testImages()).checksum;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

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
    const w = launchWorker({ dataDir, vmId: vm.id, name: 'ck', memoryBytes: 16 * MiB, vpCount: 1, imagePath: checksum, cmdline: 'rounds=100000000 work=20000', restoreFrom: file }, paths.workerOutput(vm.id));
    fx.pids.add(w.pid);
    const conn = await VmwpConnection.open(paths.workerSocket(vm.id), 60_000, () => !w.exited());
    expect((await conn.request('STATUS', 60_000)).state).toBe('running');
    conn.close();
    expect(existsSync(file)).toBe(false);
    expect(readFileSync(join(dataDir, 'logs', `vmwp-${vm.id}.log`), 'utf8')).toMatch(/restored from .* the file is consumed/);

    // The next service reattaches: Running, the same worker.
    const v2 = await fx.vmms({ dataDir });
    expect(v2.get('ck')).toMatchObject({ enabledState: 2, processId: w.pid });
    await waitFor('the restored guest to run on', () => /resumed at round=/.test(v2.console('ck')));
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
});
