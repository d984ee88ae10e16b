/**
 * The CPU settings through the management API as users reach it: `tsvisor vm set --reserve
 * --maximum --weight` (ModifyResourceSettings on Msvm_ProcessorSettingData), the values back in
 * thousandths of a percent, the cap in force, metering in `vm list`, `vm show` (Msvm_Processor
 * LoadPercentage) and `vm measure`. (A live change and admission control: host-scheduler.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, TSVISOR } from '../management/live-daemon.ts';

let daemon: LiveDaemon;
const vm = (...args: string[]) => run(process.execPath, [TSVISOR, 'vm', '--data-dir', daemon.dataDir, ...args], 90_000);

beforeAll(async () => {
  await buildGuests(['checksum']);
  daemon = await LiveDaemon.start({ extraArgs: ['--host-cpus', '1'] });
}, 120_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

describe('CPU reserve, maximum and weight through the CLI and WMI', () => {
  it('sets them, enforces the cap, and meters the VM (vm list, vm show, vm measure)', async () => {
    expect(
      (await vm('new', 'cpu', '--image', guestImagePath('checksum'), '--cmdline', 'rounds=100000000', '-m', '16M', '--stop-action', 'turn-off')).code,
    ).toBe(0);
    const set = await vm('set', 'cpu', '--reserve', '10', '--maximum', '30', '--weight', '300');
    expect([set.code, set.stdout, set.stderr]).toEqual([0, 'cpu: resources changed\n', '']);
    expect((await vm('start', 'cpu')).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    const measured = JSON.parse((await vm('measure', 'cpu', '--json')).stdout);
    expect(measured.averagePercent).toBeLessThan(34);
    expect(measured.averagePercent).toBeGreaterThan(1);

    const shown = JSON.parse((await vm('show', 'cpu', '--json')).stdout);
    daemon.noteWorker(shown.system.ProcessID);
    const cpu = shown.resources.find((r: { __CLASS: string }) => r.__CLASS === 'Msvm_ProcessorSettingData');
    expect(cpu).toMatchObject({ AllocationUnits: 'percent / 1000', Reservation: '10000', Limit: '30000', Weight: 300, VirtualQuantity: '1' });
    const processors = shown.components.filter((c: { __CLASS: string }) => c.__CLASS === 'Msvm_Processor');
    expect(processors).toHaveLength(1);
    expect(processors[0].LoadPercentage).toBeLessThanOrEqual(40);
    const list = JSON.parse((await vm('list', '--json')).stdout);
    expect(list[0].Summary.ProcessorLoad).toBeLessThanOrEqual(40);
  }, 240_000);
});
