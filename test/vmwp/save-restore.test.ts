/**
 * Save and restore of a running guest, guest in the loop: the checksum guest is saved mid-run,
 * restored in a new worker process, and finishes with the checksum it would have computed
 * uninterrupted — no round lost or repeated. A saved state from another configuration or of
 * another format version, or with a damaged record, is refused with a clear error, and the VM
 * stays Saved with its file.
 */
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configurationHash, readSavedState } from '../../root-partition/vmwp/saved-state-file.ts';
import { MiB, processAlive, testImages, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let images: { checksum: string; hello: string };

beforeAll(async () => {
  images = await testImages();
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

const rounds = (text: string) => [...text.matchAll(/progress round=(\d+)/g)].map((m) => Number(m[1]));
const ROUNDS = 30_000;

describe('save and restore', () => {
  it('a guest saved mid-work continues in a new worker with nothing lost or repeated', { timeout: 90_000 }, async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const vm = v.defineVm({ name: 'ck', memoryBytes: 32 * MiB, imagePath: images.checksum, cmdline: `rounds=${ROUNDS} work=20000` });
    expect((await v.start('ck')).returnValue).toBe(0);
    const firstPid = v.get('ck')!.processId!;
    await waitFor('some progress', () => (rounds(v.console('ck')).at(-1) ?? 0) >= 2000, 30_000);

    const states: number[] = [];
    v.events.on('state-changed', (e) => states.push(e.state));
    const saved = await v.save('ck');
    expect(saved).toMatchObject({ returnValue: 0, vm: { enabledState: 6, processId: null } });
    const before = v.console('ck');
    const savedAt = rounds(before).at(-1)!;
    expect(savedAt).toBeLessThan(ROUNDS); // really mid-run
    expect(before).not.toMatch(/result/);
    await waitFor('the first worker to exit', () => !processAlive(firstPid), 5000);

    // Sparse: 32 MiB of guest memory, only the touched pages written.
    const file = join(dataDir, 'saved', `${vm.id}.vmrs`);
    expect(readFileSync(file).subarray(0, 8).toString('latin1')).toBe('TSVSAVE\0');
    expect(statSync(file).size).toBeLessThan(2 * MiB);
    const hash = configurationHash({ vmId: vm.id, memoryBytes: 32 * MiB, vpCount: 1, image: readFileSync(images.checksum) });
    const content = readSavedState(file, hash, new Uint8Array(32 * MiB));
    expect(content.devices.map((d) => d.name).sort()).toEqual(expect.arrayContaining([expect.stringMatching(/pic/), expect.stringMatching(/com1|uart/)]));
    expect(content.devices.length).toBeGreaterThanOrEqual(3); // PIC, COM1, COM2, and whatever else the platform carries
    expect(content.referenceTicks).toBeGreaterThan(0);

    const restored = await v.start('ck');
    expect(restored).toMatchObject({ returnValue: 0, vm: { enabledState: 2 } });
    expect(restored.vm!.processId).not.toBe(firstPid);
    expect(existsSync(file)).toBe(false); // consumed by the restore
    await waitFor('the verdict', () => /verdict=/.test(v.console('ck')), 60_000);
    const after = v.console('ck');
    // The guest cannot tell: no line marks the restore, the progress lines go on one by one.
    expect(after).not.toContain('checksum guest:');
    const m = /result rounds=(\d+) sum=(\w+) expected=(\w+) verdict=(\w+)/.exec(after)!;
    expect({ rounds: Number(m[1]), sum: m[2], verdict: m[4] }).toEqual({ rounds: ROUNDS, sum: m[3], verdict: 'OK' });
    const all = rounds(before + after);
    expect(all).toEqual(Array.from({ length: ROUNDS / 100 }, (_, i) => (i + 1) * 100));
    await waitFor('Off after the guest finished', () => v.get('ck')!.enabledState === 3, 10_000);
    expect(states).toEqual([32773, 6, 10, 2, 3]);
  });

  it('refuses a saved state of another configuration or version, keeping the VM Saved', { timeout: 120_000 }, async () => {
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir });
    const a = v.defineVm({ name: 'a', memoryBytes: 16 * MiB, imagePath: images.checksum, cmdline: 'rounds=100000000 work=20000' });
    const b = v.defineVm({ name: 'b', memoryBytes: 16 * MiB, imagePath: images.checksum, cmdline: 'rounds=100000000 work=20000' });
    await v.start('a');
    await waitFor('progress', () => rounds(v.console('a')).length > 0);
    expect((await v.save('a')).returnValue).toBe(0);
    const fileA = join(dataDir, 'saved', `${a.id}.vmrs`);
    const fileB = join(dataDir, 'saved', `${b.id}.vmrs`);

    // Another VM's saved state (a different configuration) placed under b's name.
    copyFileSync(fileA, fileB);
    await fx.detach(v);
    const v2 = await fx.vmms({ dataDir });
    expect(v2.get('b')!.enabledState).toBe(6);
    const r = await v2.start('b');
    expect(r).toMatchObject({ returnValue: 32768, error: expect.stringMatching(/saved from another configuration/), vm: { enabledState: 6, processId: null } });
    expect(readFileSync(fileB).equals(readFileSync(fileA))).toBe(true);

    // A file of a newer format version.
    const bytes = readFileSync(fileA);
    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(4, 8);
    writeFileSync(fileB, newer);
    expect(await v2.start('b')).toMatchObject({
      returnValue: 32768,
      error: expect.stringMatching(/format version 4; this tsvisor reads version 3/),
      vm: { enabledState: 6 },
    });
    expect(readFileSync(fileB).equals(newer)).toBe(true);
    // One of an older format (before VP stacks were saved).
    const older = Buffer.from(bytes);
    older.writeUInt32LE(2, 8);
    writeFileSync(fileB, older);
    expect(await v2.start('b')).toMatchObject({
      returnValue: 32768,
      error: expect.stringMatching(/format version 2 \(an older file, written before VP stacks and VMBus were saved\); this tsvisor reads version 3/),
      vm: { enabledState: 6 },
    });

    // One flipped bit in a's own file — in the VP record, the reference time, a device record, a
    // memory run: refused naming the record, a stays Saved, its file untouched; the intact file restores.
    const good = readFileSync(fileA);
    const records: { at: number; length: number; field: number }[] = [];
    for (let at = 52; at < good.length; at += 8 + good.readUInt32LE(at)) records.push({ at, length: good.readUInt32LE(at), field: good[at + 8] >> 3 });
    for (const [field, name] of [
      [7, 'virtual processor'],
      [2, 'reference time'],
      [3, 'device'],
      [4, 'memory run'],
    ] as const) {
      const r = records.find((x) => x.field === field)!;
      const bad = Buffer.from(good);
      bad[r.at + 8 + (r.length >> 1)] ^= 0x04;
      writeFileSync(fileA, bad);
      const refused = await v2.start('a');
      expect(refused).toMatchObject({
        returnValue: 32768,
        error: expect.stringMatching(new RegExp(`record #\\d+ at byte ${r.at} \\(by its tag a ${name} record\\) is damaged: checksum mismatch`)),
        vm: { enabledState: 6, processId: null },
      });
      expect(readFileSync(fileA).equals(bad)).toBe(true);
    }
    writeFileSync(fileA, good);

    // Turn-off discards a saved state; the right file still restores.
    expect((await v2.turnOff('b')).vm).toMatchObject({ enabledState: 3 });
    expect(existsSync(fileB)).toBe(false);
    expect((await v2.start('a')).returnValue).toBe(0);
    const savedRounds = rounds(v2.console('a')).length;
    await waitFor('progress after the restore', () => rounds(v2.console('a')).length > savedRounds + 2);
    expect((await v2.turnOff('a')).returnValue).toBe(0);
  });
});
