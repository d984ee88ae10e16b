/**
 * What a worker leaves when it ends: a crashed worker's socket and record are removed once it is
 * confirmed dead; a turn-off always reaches Off even when a file cannot be removed (the error is
 * the VM's last error and its health); a guest that faults at instantiation leaves its reason as
 * the VM's last error.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, testImages, VmmsFixture, waitFor, workersOf } from './fault-fixture.ts';

const fx = new VmmsFixture();
let image: string;

beforeAll(async () => {
  image = (await testImages()).checksum;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

describe('fault: a worker ends', { timeout: 120_000 }, () => {
  it('crashed (SIGKILL): Off, Critical failure, and its socket and record are removed', async () => {
    const dataDir = fx.dataDir();
    const vmms = await fx.vmms({ dataDir });
    const vm = vmms.defineVm({ name: 'crash', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await vmms.start('crash');
    const pid = vmms.get('crash')!.processId!;
    expect(JSON.parse(readFileSync(join(dataDir, `vmwp-${vm.id}.pid`), 'utf8'))).toMatchObject({ vmId: vm.id, pid, memoryBytes: 16 * MiB });
    process.kill(pid, 'SIGKILL');
    await waitFor('Off', () => vmms.get('crash')!.enabledState === 3, 5000);
    expect(vmms.get('crash')).toMatchObject({ healthState: 25, lastError: `the worker process ${pid} ended unexpectedly` });
    await waitFor('the socket removed', () => !existsSync(join(dataDir, `vmwp-${vm.id}.sock`)), 3000);
    expect(existsSync(join(dataDir, `vmwp-${vm.id}.pid`))).toBe(false);
    expect((await vmms.start('crash')).returnValue).toBe(0);
    expect(workersOf(vm.id)).toHaveLength(1);
  });

  it('turn-off with a directory where the saved state goes: Off, the error reported, not stuck in Stopping', async () => {
    const dataDir = fx.dataDir();
    const vmms = await fx.vmms({ dataDir });
    const vm = vmms.defineVm({ name: 'blocked', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await vmms.start('blocked');
    const dir = join(dataDir, 'saved', `${vm.id}.vmrs`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep'), 'operator data');
    const r = await vmms.turnOff('blocked');
    expect(r.returnValue).toBe(32768);
    expect(r.error).toMatch(/^turned off, but cannot remove the saved state/);
    expect(vmms.get('blocked')).toMatchObject({ enabledState: 3, healthState: 20, processId: null, lastError: r.error });
    expect(workersOf(vm.id)).toEqual([]);
    expect(readFileSync(join(dir, 'keep'), 'utf8')).toBe('operator data');
  });

  it('a guest that fails at instantiation: the start fails with the reason, the VM is Off with it as the last error', async () => {
    const dataDir = fx.dataDir();
    const vmms = await fx.vmms({ dataDir });
    // Imports the shared memory (the loader accepts it) and a call the platform does not offer.
    const bad = join(dataDir, 'link-error.wasm');
    writeFileSync(
      bad,
      Buffer.from(
        '0061736d0100000001040160000002250203656e760c6e6f5f737563685f63616c6c000003656e76066d656d6f727902' +
          '03018080040303020000071102065f73746172740001046d61696e00020a0b02040010000b040010000b',
        'hex',
      ),
    );
    vmms.defineVm({ name: 'bad', memoryBytes: 16 * MiB, imagePath: bad, cmdline: '' });
    // The start itself fails with the reason: the worker waits for VP 0 to enter the image.
    const r = await vmms.start('bad');
    expect(r.returnValue).not.toBe(0);
    expect(r.error).toMatch(/the guest did not start: .*no_such_call/);
    await waitFor('Off', () => vmms.get('bad')!.enabledState === 3, 10_000);
    expect(vmms.get('bad')).toMatchObject({ processId: null });
    expect(vmms.get('bad')!.lastError).toMatch(/no_such_call/);
  });
});
