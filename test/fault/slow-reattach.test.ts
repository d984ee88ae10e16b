/**
 * A worker that does not answer when VMMS restarts (SIGSTOP: a stopped, swapped-out or
 * overloaded process) is never lost: the VM shows Unknown with the worker's pid, a start is
 * refused instead of running a second worker on the same disks, and once the worker runs again
 * (SIGCONT) VMMS reattaches to it — one worker, the right state. A turn-off of the Unknown VM
 * kills the worker by its pid.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, processAlive, progress, testImages, VmmsFixture, waitFor, workersOf } from './fault-fixture.ts';

const fx = new VmmsFixture();
let image: string;
const stopped = new Set<number>();

beforeAll(async () => {
  image = (await testImages()).checksum;
});
afterAll(async () => {
  for (const pid of stopped) if (processAlive(pid)) process.kill(pid, 'SIGCONT');
  expect(await fx.cleanup()).toEqual([]);
});

async function runningWorkerThenStopped(name: string) {
  const dataDir = fx.dataDir();
  const first = await fx.vmms({ dataDir });
  const vm = first.defineVm({ name, memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
  await first.start(name);
  const pid = first.get(name)!.processId!;
  await fx.detach(first);
  process.kill(pid, 'SIGSTOP');
  stopped.add(pid);
  return { dataDir, id: vm.id, pid };
}

describe('fault: a worker that does not answer at reattach', { timeout: 120_000 }, () => {
  it('is kept (Unknown, its pid), a start is refused, and SIGCONT brings it back: exactly one worker', async () => {
    const { dataDir, id, pid } = await runningWorkerThenStopped('slow');
    const t0 = Date.now();
    const second = await fx.vmms({ dataDir, reattachTimeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(second.get('slow')).toMatchObject({ enabledState: 0, state: 'Unknown', processId: pid, healthState: 20, availableRequestedStates: [3] });
    expect(second.get('slow')!.lastError).toMatch(new RegExp(`${pid} is alive but does not answer`));
    expect(existsSync(join(dataDir, `vmwp-${id}.sock`))).toBe(true);

    const r = await second.start('slow');
    expect(r.returnValue).toBe(32775);
    await new Promise((res) => setTimeout(res, 300));
    expect(workersOf(id)).toEqual([pid]);

    process.kill(pid, 'SIGCONT');
    stopped.delete(pid);
    await waitFor('the worker to be reattached', () => second.get('slow')!.enabledState === 2, 10_000);
    expect(second.get('slow')).toMatchObject({ processId: pid, healthState: 5, lastError: null });
    const at = progress(second.console('slow'));
    await waitFor('console after reattach', () => progress(second.console('slow')) > at);
    expect(workersOf(id)).toEqual([pid]);
    expect((await second.turnOff('slow')).returnValue).toBe(0);
    expect(workersOf(id)).toEqual([]);
    expect(existsSync(join(dataDir, `vmwp-${id}.sock`))).toBe(false);
    expect(existsSync(join(dataDir, `vmwp-${id}.pid`))).toBe(false);
  });

  it('a turn-off of the Unknown VM kills the stopped worker by its pid; a start then runs one worker', async () => {
    const { dataDir, id, pid } = await runningWorkerThenStopped('stuck');
    const second = await fx.vmms({ dataDir, reattachTimeoutMs: 300 });
    expect(second.get('stuck')!.enabledState).toBe(0);
    const r = await second.turnOff('stuck');
    expect(r.returnValue).toBe(0);
    expect(second.get('stuck')).toMatchObject({ enabledState: 3, processId: null });
    expect(processAlive(pid) && workersOf(id).includes(pid)).toBe(false);
    stopped.delete(pid);
    expect((await second.start('stuck')).returnValue).toBe(0);
    const workers = workersOf(id);
    expect(workers).toHaveLength(1);
    expect(workers[0]).not.toBe(pid);
    expect((await second.turnOff('stuck')).returnValue).toBe(0);
  });

  it('a worker whose socket is gone but which is alive is still found by its record: no second worker', async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    const vm = first.defineVm({ name: 'nosock', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await first.start('nosock');
    const pid = first.get('nosock')!.processId!;
    await fx.detach(first);
    const { rmSync } = await import('node:fs');
    rmSync(join(dataDir, `vmwp-${vm.id}.sock`));
    const second = await fx.vmms({ dataDir, reattachTimeoutMs: 300 });
    expect(second.get('nosock')).toMatchObject({ enabledState: 0, processId: pid });
    expect((await second.start('nosock')).returnValue).toBe(32775);
    expect(workersOf(vm.id)).toEqual([pid]);
    expect((await second.turnOff('nosock')).returnValue).toBe(0);
    expect(workersOf(vm.id)).toEqual([]);
  });
});
