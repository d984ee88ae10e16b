/**
 * A running VM whose definition file is corrupted or deleted while VMMS is away: the next VMMS
 * cannot drive it, but lists its worker as an orphan, counts its memory in the host budget while
 * it lives, and stops it on request — the worker is never left running unseen.
 */
import { execFile } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { ClientServer } from '../../root-partition/vmms/client-server.ts';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, testImages, VmmsFixture, waitFor, workersOf } from './fault-fixture.ts';

const fx = new VmmsFixture();
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');

/** The CLI, asynchronously: the service it talks to runs in this process. */
async function tsvisor(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 60_000 });
  return stdout;
}
let image: string;

beforeAll(async () => {
  image = (await testImages()).checksum;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

describe('fault: a running VM whose definition does not load', { timeout: 120_000 }, () => {
  it('a corrupted definition: the worker is listed, holds its memory in the budget, and stops on request', { timeout: 90_000 }, async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    const lost = first.defineVm({ name: 'lost', memoryBytes: 32 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    first.defineVm({ name: 'other', memoryBytes: 32 * MiB, imagePath: image, cmdline: 'rounds=1' });
    await first.start('lost');
    const pid = first.get('lost')!.processId!;
    await fx.detach(first);
    writeFileSync(join(dataDir, 'vms', `${lost.id}.json`), '{ not json');

    // A budget with room for one 32 MiB VM: the orphan holds it.
    const second = await fx.vmms({ dataDir, limits: { memoryBudgetBytes: 48 * MiB } });
    expect(second.list().map((v) => v.name)).toEqual(['other']);
    expect(second.orphans()).toEqual([
      { vmId: lost.id, name: 'lost', processId: pid, memoryBytes: 32 * MiB, reason: expect.stringContaining('not valid JSON') },
    ]);
    const refused = await second.start('other');
    expect(refused.returnValue).toBe(32768);
    expect(refused.error).toMatch(/running VMs hold 32 MiB of a 48 MiB budget/);

    // Through the real binary: `tsvisor host orphans` lists it, `--stop` turns it off.
    const server = new ClientServer(second, second.log, () => {});
    await server.listen(second.paths.vmmsSocket);
    try {
      const listed = await tsvisor(['host', 'orphans', '--data-dir', dataDir]);
      expect(listed).toMatch(new RegExp(`${lost.id} +lost +${pid} +32M +its definition was refused: .*not valid JSON`));
      expect(await tsvisor(['host', 'orphans', '--stop', lost.id, '--data-dir', dataDir])).toBe(`${lost.id}: orphan worker stopped\n`);
    } finally {
      await server.close();
    }
    expect(workersOf(lost.id)).toEqual([]);
    expect(second.orphans()).toEqual([]);
    expect(existsSync(join(dataDir, `vmwp-${lost.id}.sock`))).toBe(false);
    expect(existsSync(join(dataDir, `vmwp-${lost.id}.pid`))).toBe(false);
    expect((await second.start('other')).returnValue).toBe(0);
  });

  it('a deleted definition: the orphan is listed until its worker dies, then forgotten with its files', async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    const gone = first.defineVm({ name: 'gone', memoryBytes: 16 * MiB, imagePath: image, cmdline: 'rounds=100000000' });
    await first.start('gone');
    const pid = first.get('gone')!.processId!;
    await fx.detach(first);
    rmSync(join(dataDir, 'vms', `${gone.id}.json`));

    const second = await fx.vmms({ dataDir });
    expect(second.orphans()).toMatchObject([{ vmId: gone.id, processId: pid, memoryBytes: 16 * MiB, reason: 'its definition file is gone' }]);
    process.kill(pid, 'SIGKILL');
    await waitFor('the orphan to be forgotten', () => second.orphans().length === 0, 5000);
    expect(existsSync(join(dataDir, `vmwp-${gone.id}.sock`))).toBe(false);
    expect(existsSync(join(dataDir, `vmwp-${gone.id}.pid`))).toBe(false);
  });
});
