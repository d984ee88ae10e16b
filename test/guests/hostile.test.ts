/**
 * The hostile guest (child-sdk/guests/hostile) in a VM beside an honest one, under the embedded
 * VMMS: VP 0 calls every trapping operation with out-of-range arguments and must get refusals
 * (status codes, all-ones, zeros), never a fault; VPs 1..12 each take the fault their case is
 * designed to raise. VMMS, its host process and the other VM live on, the other VM's result is
 * right, and nothing is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { MiB, processAlive, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
let hostile: string;
let checksum: string;

beforeAll(async () => {
  await buildGuests(['hostile', 'checksum']);
  hostile = guestImagePath('hostile');
  checksum = guestImagePath('checksum');
});
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

describe('hostile guest', () => {
  it('gets refusals for every out-of-range call, faults only where designed, and harms nothing else', async () => {
    const v = await fx.vmms({ dataDir: fx.dataDir() });
    v.defineVm({ name: 'bystander', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=400 work=2000' });
    v.defineVm({ name: 'hostile', memoryBytes: 16 * MiB, vpCount: 13, imagePath: hostile, cmdline: 'vps' });
    const faults: { name: string; message: string }[] = [];
    v.events.on('guest-fault', (f: { name: string; message: string }) => faults.push(f));
    const heapBefore = process.memoryUsage().heapUsed;

    expect((await v.start('bystander')).returnValue).toBe(0);
    const started = await v.start('hostile');
    expect(started.returnValue).toBe(0);
    const pids = [v.get('bystander')!.processId!, started.vm!.processId!];
    await waitFor('the hostile VM to stop', () => v.get('hostile')!.enabledState === 3, 120_000);
    await waitFor('the bystander to finish', () => v.get('bystander')!.enabledState === 3, 60_000);

    // VP 0 ran every sweep, got only refusals, and halted with interrupts disabled, last.
    const out = v.console('hostile');
    const sweep = /calls=(\d+) refused=(\d+) answers=\d+ sweep=done\nfaulting_vps=11 \nhalting\n$/.exec(out);
    expect(sweep, out).not.toBeNull();
    expect(Number(sweep![1])).toBeGreaterThan(200_000); // 65536 codes × 2 forms, 65536 ports, …
    expect(Number(sweep![2])).toBeGreaterThan(100_000);
    expect(Number(sweep![2])).toBeLessThan(1_000_000); // a SINT that kept reserved bits adds 10^6
    expect(out).not.toMatch(/survived/);

    // Every other VP took exactly the fault its case is designed to raise; VP 0 none.
    const byVp = new Map(
      faults.filter((f) => f.name === 'hostile').map((f) => [Number(/^VP (\d+)/.exec(f.message)![1]), /^VP \d+ \((\w+)\)/.exec(f.message)![1]]),
    );
    expect(Object.fromEntries([...byVp].sort((a, b) => a[0] - b[0]))).toEqual({
      1: 'gp',
      2: 'gp',
      3: 'gp',
      4: 'gp',
      5: 'gp',
      6: 'memory',
      7: 'memory',
      8: 'memory',
      9: 'gp',
      10: 'trap',
      11: 'panic',
      12: 'trap',
    });
    expect(v.get('hostile')).toMatchObject({ enabledState: 3, healthState: 20, processId: null });

    // The VM beside it finished with the right result, untouched.
    expect(v.console('bystander')).toMatch(/result rounds=400 sum=(\w+) expected=\1 verdict=OK/);
    expect(v.get('bystander')).toMatchObject({ healthState: 5, processId: null });
    expect(faults.filter((f) => f.name !== 'hostile')).toEqual([]);

    // VMMS lives on and serves; both worker processes are gone; the host's heap stayed bounded.
    const again = v.defineVm({ name: 'after', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=10' });
    expect(
      v
        .list()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['after', 'bystander', 'hostile']);
    expect(v.removeVm(again.id).returnValue).toBe(0);
    for (const pid of pids) await waitFor(`worker ${pid} to exit`, () => !processAlive(pid), 5000);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * MiB);
  }, 180_000);
});
