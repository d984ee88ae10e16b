/**
 * Set-VM -AutomaticStartAction, with real workers: as the service starts, 'start' VMs are
 * started, 'start-if-running' VMs only if they ran when the service last stopped them, and
 * 'nothing' VMs stay Off. The record of what ran is consumed by the start that reads it.
 */
import { afterAll, expect, it } from 'vitest';
import { EnabledState } from '../../root-partition/vmms/lifecycle.ts';
import { MiB, testImages, VmmsFixture } from './vmms-fixture.ts';

const f = new VmmsFixture();

afterAll(async () => {
  expect(await f.cleanup()).toEqual([]);
}, 60_000);

it('starts the VMs whose automatic start action asks for it, and only those', async () => {
  const { checksum } = await testImages();
  const dataDir = f.dataDir();
  let vmms = await f.vmms({ dataDir });
  // A long checksum: the guest is still running when the service stops it.
  const define = (name: string, automaticStartAction: 'nothing' | 'start' | 'start-if-running') =>
    vmms.defineVm({ name, memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=100000000', automaticStopAction: 'turn-off', automaticStartAction });
  define('always', 'start');
  define('was-running', 'start-if-running');
  define('was-off', 'start-if-running');
  define('never', 'nothing');
  for (const name of ['was-running', 'never']) expect((await vmms.start(name)).returnValue).toBe(0);
  // A notes or start-action change is allowed while the VM runs (it concerns the service only).
  expect(vmms.modifyVm('never', { notes: 'keep off after a reboot' }).returnValue).toBe(0);
  expect(vmms.modifyVm('never', { memoryBytes: 32 * MiB }).error).toBe('cannot change the settings of a VM that is Running; turn it off first');
  // The service stops: each VM gets its stop action, and the running ones are recorded.
  await vmms.close();

  vmms = await f.vmms({ dataDir });
  expect(vmms.list().every((v) => v.enabledState === EnabledState.Off)).toBe(true);
  const started = await vmms.autoStart();
  expect(started.map((s) => [s.vm, s.result.returnValue]).sort()).toEqual([
    ['always', 0],
    ['was-running', 0],
  ]);
  expect(Object.fromEntries(vmms.list().map((v) => [v.name, v.state]))).toEqual({
    always: 'Running',
    'was-running': 'Running',
    'was-off': 'Off',
    never: 'Off',
  });
  expect(vmms.get('never')!.notes).toBe('keep off after a reboot');

  // The record is consumed: a second pass finds nothing more to start.
  for (const name of ['always', 'was-running']) await vmms.turnOff(name);
  expect((await vmms.autoStart()).map((s) => s.vm)).toEqual(['always']);
}, 180_000);
