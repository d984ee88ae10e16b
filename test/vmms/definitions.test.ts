/**
 * VM definitions on disk: atomic writes, and hand-edited or corrupt files reported by name while
 * every other VM loads — and the bad file left as it was, for the operator to repair.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefinitionError, newDefinition } from '../../root-partition/vmms/vm-definition.ts';
import { DefinitionStore } from '../../root-partition/vmms/definition-store.ts';
import { MiB, testImages, VmmsFixture } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let image: string;

beforeAll(async () => {
  image = (await testImages()).hello;
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

describe('definition store', () => {
  it('writes each definition atomically as <id>.json and reads it back', () => {
    const store = new DefinitionStore(join(fx.dataDir(), 'vms'));
    const def = newDefinition({ name: 'web', memoryBytes: 16 * MiB, imagePath: image, devices: [{ kind: 'ide-disk', path: '/x.img' }] });
    store.save(def);
    expect(readdirSync(store.dir)).toEqual([`${def.id}.json`]);
    expect(JSON.parse(readFileSync(store.path(def.id), 'utf8'))).toEqual(def);
    expect(store.loadAll()).toEqual({ definitions: [def], errors: [] });
  });

  it('reports every problem of a bad definition with its field', () => {
    try {
      newDefinition({ name: 'a/b', memoryBytes: 1000, vpCount: 0, imagePath: 'relative.wasm' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DefinitionError);
      expect((e as DefinitionError).problems).toEqual([
        expect.stringMatching(/^name:/),
        expect.stringMatching(/^memoryBytes: must be between/),
        expect.stringMatching(/^vpCount:/),
        expect.stringMatching(/^imagePath:/),
      ]);
    }
  });

  it('loads the good VMs when others are corrupt, naming each bad file, and leaves the files untouched', async () => {
    const dataDir = fx.dataDir();
    const first = await fx.vmms({ dataDir });
    const good = first.defineVm({ name: 'good', memoryBytes: 16 * MiB, imagePath: image });
    const edited = first.defineVm({ name: 'edited', memoryBytes: 16 * MiB, imagePath: image });
    const truncated = first.defineVm({ name: 'truncated', memoryBytes: 16 * MiB, imagePath: image });
    await fx.detach(first);

    const vms = join(dataDir, 'vms');
    const editedFile = join(vms, `${edited.id}.json`);
    const hand = JSON.parse(readFileSync(editedFile, 'utf8'));
    hand.vpCount = 'four';
    hand.colour = 'blue';
    writeFileSync(editedFile, JSON.stringify(hand));
    const truncatedFile = join(vms, `${truncated.id}.json`);
    const half = readFileSync(truncatedFile, 'utf8').slice(0, 40);
    writeFileSync(truncatedFile, half);
    writeFileSync(join(vms, 'not-a-guid.json'), readFileSync(join(vms, `${good.id}.json`)));
    writeFileSync(join(vms, `.tmp-${good.id}.json.1.2`), '{"half":'); // a write interrupted by a crash

    const second = await fx.vmms({ dataDir });
    expect(second.list().map((v) => v.name)).toEqual(['good']);
    expect(second.get('good')).toMatchObject({ id: good.id, state: 'Off', memoryBytes: 16 * MiB });
    const errors = second.loadErrors.map((e) => [e.file, e.message]);
    expect(errors).toEqual(
      expect.arrayContaining([
        [editedFile, expect.stringMatching(/vpCount: must be an integer.*colour: unknown field/)],
        [truncatedFile, expect.stringMatching(/not valid JSON/)],
        [join(vms, 'not-a-guid.json'), expect.stringMatching(/file name does not match the VM id/)],
      ]),
    );
    expect(errors).toHaveLength(3);
    expect(readFileSync(truncatedFile, 'utf8')).toBe(half);
    expect(JSON.parse(readFileSync(editedFile, 'utf8')).colour).toBe('blue');
    // The service runs on: a new VM can be defined and listed.
    second.defineVm({ name: 'later', memoryBytes: 16 * MiB, imagePath: image });
    expect(
      second
        .list()
        .map((v) => v.name)
        .sort(),
    ).toEqual(['good', 'later']);
  });

  it('refuses a second service on the same data directory while the first runs; a pid file alone decides nothing', async () => {
    const dataDir = fx.dataDir();
    // A pid file naming a live process that holds no lock (a recycled pid, a zombie): not a service.
    writeFileSync(join(dataDir, 'vmms.pid'), `${process.ppid}\n`);
    const v = await fx.vmms({ dataDir });
    expect(readFileSync(join(dataDir, 'vmms.pid'), 'utf8')).toBe(`${process.pid}\n`);
    // The lock is held on the lock file; another service (here in this very process) is refused.
    await expect(fx.vmms({ dataDir })).rejects.toThrow(`another management service (process ${process.pid}) runs on ${dataDir}`);
    await fx.detach(v);
    expect(existsSync(join(dataDir, 'vmms.pid'))).toBe(false);
    const again = await fx.vmms({ dataDir });
    // A service stopping never removes a pid file that names another process.
    writeFileSync(join(dataDir, 'vmms.pid'), '999999999\n');
    await fx.detach(again);
    expect(readFileSync(join(dataDir, 'vmms.pid'), 'utf8')).toBe('999999999\n');
  });

  it('bounds the number of VMs', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir(), limits: { maxVms: 2 } });
    v.defineVm({ name: 'one', memoryBytes: 16 * MiB, imagePath: image });
    v.defineVm({ name: 'two', memoryBytes: 16 * MiB, imagePath: image });
    expect(() => v.defineVm({ name: 'three', memoryBytes: 16 * MiB, imagePath: image })).toThrow(/2 VMs defined, its limit/);
    expect(v.list()).toHaveLength(2);
  });

  it('refuses a bad request without touching what is stored', async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    v.defineVm({ name: 'one', memoryBytes: 16 * MiB, imagePath: image });
    const before = readdirSync(join(dataDir, 'vms'));
    expect(() => v.defineVm({ name: 'one', memoryBytes: 16 * MiB, imagePath: image })).toThrow(/named "one" exists/);
    expect(() => v.defineVm({ name: 'two', memoryBytes: 16 * MiB, imagePath: '/no/such.wasm' })).toThrow(/does not exist/);
    expect(() => v.defineVm({ name: 'three', memoryBytes: 3 * MiB + 1, imagePath: image })).toThrow(/multiple of 64 KiB/);
    expect(() => v.defineVm({ name: 'four', memoryBytes: 16 * MiB, vpCount: 65, imagePath: image })).toThrow(/vpCount: must be between 1 and 64/);
    expect(() => v.defineVm({ name: 'five', memoryBytes: 16 * MiB, imagePath: image, automaticStopAction: 'explode' as never })).toThrow(/automaticStopAction/);
    expect(readdirSync(join(dataDir, 'vms'))).toEqual(before);
    expect(existsSync(join(dataDir, 'vms', before[0]))).toBe(true);
  });
});
