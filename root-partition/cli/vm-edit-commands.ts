/**
 * `tsvisor vm stop | rm | set` through the management API. Stop-VM without options asks the
 * guest's shutdown integration service (Msvm_ShutdownComponent.InitiateShutdown) and waits until
 * the VM is Off; it turns a VM off only when told (--turn-off, or --force when no shutdown
 * service answers); --turn-off and --save are RequestStateChange 3 and 6. `set` maps Set-VM / Set-VMProcessor / Set-VMMemory / Add-VMHardDiskDrive onto
 * ModifySystemSettings, ModifyResourceSettings, AddResourceSettings and RemoveResourceSettings.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { CimInstance } from '../management/cim/instance.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import { MAX_VPS } from '../../hypervisor/partition-control.ts';
import {
  callMethod,
  CommandFailure,
  failureParts,
  findVm,
  findVms,
  parseSize,
  reportFailure,
  servicePath,
  stateText,
  verb,
  vmPath,
  wantsJson,
  wholeNumber,
  withManagement,
} from './management-session.ts';
import { printJson } from './table.ts';
import { forEachVm, requestState } from './vm-state-commands.ts';

const schema = createVirtualizationSchema();
/** VSSD AutomaticStartupAction: 2 None, 3 Restart if previously active, 4 Always startup. */
const START_ACTIONS: Record<string, number> = { nothing: 2, 'start-if-running': 3, start: 4 };
const OFF = 3;
const SAVED = 6;
const PAUSED = 9;

/** Resolves when the VM is Off (pushed modification events), or with false at the deadline. */
async function offWithin(c: ManagementClient, vmId: string, ms: number): Promise<{ reached: Promise<boolean>; stop: () => Promise<void> }> {
  let settle!: (v: boolean) => void;
  const reached = new Promise<boolean>((r) => {
    settle = r;
  });
  const w = await c.watch(
    `SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.Name = '${vmId}' AND TargetInstance.EnabledState = ${OFF}`,
    () => settle(true),
  );
  const timer = setTimeout(() => settle(false), ms);
  return {
    reached,
    stop: async () => {
      clearTimeout(timer);
      await w.stop().catch(() => {});
    },
  };
}

/**
 * Stop-VM: the guest's shutdown integration service is asked, and the command waits until the VM
 * is Off. It never turns the VM off on its own: when no shutdown service answers, --force turns
 * it off (as Stop-VM -Force does), and otherwise the user is told how.
 */
async function gracefulStop(c: ManagementClient, vm: CimInstance, o: { timeout: number; force: boolean; json: boolean }): Promise<string> {
  const id = String(vm.get('Name'));
  const name = String(vm.get('ElementName'));
  const turnOff = async (why: string) => {
    if (!o.json) console.error(`tsvisor: ${name}: ${why}; turning it off (--force)`);
    await callMethod(c, vmPath(c, vm), 'RequestStateChange', { RequestedState: OFF }, { progress: !o.json, label: 'Turning off' });
    return `turned off (${why})`;
  };
  const [shutdown] = await c.queryRows(
    `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${id}"} WHERE ResultClass = Msvm_ShutdownComponent`,
  );
  if (!shutdown) {
    if (o.force) return turnOff('it has no shutdown integration service');
    throw new CommandFailure(
      'InitiateShutdown',
      32770,
      `VM '${name}' has no shutdown integration service, so it cannot be shut down from inside; turn it off with: tsvisor vm stop ${name} --turn-off (or enable the service: tsvisor vm ic enable ${name} shutdown)`,
    );
  }
  const off = await offWithin(c, id, o.timeout * 1000);
  try {
    const r = await c.invoke(shutdown.path, 'InitiateShutdown', { Force: o.force, Reason: 'tsvisor vm stop' });
    if (r.returnValue !== 0) {
      if (o.force) return await turnOff('its guest did not take the shutdown request');
      throw new CommandFailure(
        'InitiateShutdown',
        r.returnValue,
        `the guest of VM '${name}' did not take the shutdown request (its shutdown service is not answering); turn it off with: tsvisor vm stop ${name} --turn-off (or --force)`,
        r.description ?? '',
      );
    }
    if (Number((await c.get(vmPath(c, vm))).get('EnabledState')) === OFF || (await off.reached)) return 'shut down';
  } finally {
    await off.stop();
  }
  const now = stateText(Number((await c.get(vmPath(c, vm))).get('EnabledState')));
  throw new CommandFailure(
    'InitiateShutdown',
    32768,
    `VM '${name}' took the shutdown request but is still ${now} after ${o.timeout} s; wait longer (--timeout) or turn it off with: tsvisor vm stop ${name} --turn-off`,
  );
}

export function registerStopAndEdit(vm: Command, dir: () => string | undefined): void {
  verb(vm, 'stop <vm...>')
    .description('Stop-VM: shut the guest down through its shutdown integration service and wait until it is Off; --turn-off pulls the plug, --save saves')
    .option('--turn-off', 'turn the VM off at once (RequestStateChange 3)')
    .option('--save', 'save the VM instead (RequestStateChange 6)')
    .option('--force', 'shut down even if applications in the guest object, and turn the VM off when no shutdown service answers')
    .option('--timeout <seconds>', 'how long to wait for the guest to shut down', '120')
    .option('--json', 'machine-readable output')
    .action((names: string[], o: { turnOff?: boolean; save?: boolean; force?: boolean; timeout: string; json?: boolean }) =>
      withManagement(dir(), async (c) => {
        if (o.turnOff && o.save) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--turn-off and --save exclude each other; give one');
        const timeout = wholeNumber('--timeout', o.timeout, 0, 3600);
        await forEachVm(c, names, async (v) => {
          const state = Number(v.get('EnabledState'));
          const name = String(v.get('ElementName'));
          if (state === OFF) return { outcome: 'already Off', warning: `VM '${name}' is already Off` };
          if (o.save) return requestState(c, v, 6, 'Saving', 'saved', Boolean(o.json));
          if (o.turnOff) {
            await callMethod(c, vmPath(c, v), 'RequestStateChange', { RequestedState: OFF }, { progress: !o.json, label: 'Turning off' });
            return { outcome: state === SAVED ? 'turned off (its saved state discarded)' : 'turned off' };
          }
          if (state === SAVED)
            return { outcome: 'left Saved', warning: `VM '${name}' is Saved, not running; to discard its saved state: tsvisor vm stop ${name} --turn-off` };
          if (state === PAUSED)
            throw new CommandFailure(
              'InitiateShutdown',
              32775,
              `VM '${name}' is Paused, so its guest cannot shut down; resume it first (tsvisor vm resume ${name}) or turn it off (tsvisor vm stop ${name} --turn-off)`,
            );
          return { outcome: await gracefulStop(c, v, { timeout, force: Boolean(o.force), json: Boolean(o.json) }) };
        });
      }),
    );

  verb(vm, 'rm <vm...>')
    .description('Remove-VM (DestroySystem; the VM must be Off or Saved)')
    .option('--json', 'machine-readable output')
    .action((names: string[]) =>
      withManagement(dir(), async (c) => {
        const service = await servicePath(c);
        const vms = await findVms(c, names);
        const results: { name: string; removed?: string; error?: { message: string; code: string } }[] = [];
        for (const v of vms) {
          const name = String(v.get('ElementName'));
          try {
            const state = Number(v.get('EnabledState'));
            if (state !== OFF && state !== SAVED)
              throw new CommandFailure('DestroySystem', 32775, `VM '${name}' is ${stateText(state)}; stop it first (tsvisor vm stop ${name})`);
            await callMethod(c, service, 'DestroySystem', { AffectedSystem: vmPath(c, v) }, { progress: false, label: 'Removing' });
            results.push({ name, removed: String(v.get('Name')) });
            if (!wantsJson()) console.log(`${name}: removed`);
          } catch (e) {
            const f = failureParts(e);
            results.push({ name, error: { message: f.message, code: f.code } });
            if (!wantsJson()) reportFailure(e);
            process.exitCode = 1;
          }
        }
        if (wantsJson()) printJson(names.length === 1 && !/[*?[]/.test(names[0]!) ? results[0] : results);
      }),
    );

  verb(vm, 'set <vm>')
    .description(
      'Set-VM / Set-VMProcessor / Set-VMMemory / Add-VMHardDiskDrive (the VM must be Off, except for --notes, the automatic actions and the CPU reserve, maximum and weight)',
    )
    .option('--name <name>', 'rename the VM')
    .option('--image <path>', 'guest image (.wasm)')
    .option('--cmdline <text>', 'kernel command line')
    .option('--notes <text>', 'Set-VM -Notes: free text kept with the VM')
    .option(
      '--automatic-start-action <action>',
      "Set-VM -AutomaticStartAction: when the service starts, 'nothing', 'start', or 'start-if-running' (if it ran when the service stopped)",
    )
    .option('--automatic-stop-action <action>', "Set-VM -AutomaticStopAction: when the service stops, 'save' or 'turn-off'")
    .option('--stop-action <action>', 'the same as --automatic-stop-action')
    .option('-m, --memory <size>', 'guest memory')
    .option('--vps <count>', 'virtual processors')
    .option('--reserve <percent>', "Set-VMProcessor -Reserve: percent of the VM's processors guaranteed (0..100; applies while running)")
    .option('--maximum <percent>', "Set-VMProcessor -Maximum: percent of the VM's processors it may use at most (above 0..100)")
    .option('--weight <n>', 'Set-VMProcessor -RelativeWeight: its share of spare CPU against other VMs (1..10000, default 100)')
    .option('--add-disk <path>', 'attach a raw disk image (with --controller and --location)')
    .option('--controller <type:n>', 'ide:0, ide:1 or scsi:N for --add-disk', 'ide:0')
    .option('--location <n>', 'position on the controller for --add-disk', '0')
    .option('--remove-disk <type:n:location>', 'detach the disk at e.g. ide:0:1 or scsi:0:3')
    .option('--json', 'machine-readable output')
    .action((name: string, o: Record<string, string | undefined>) =>
      withManagement(dir(), async (c) => {
        o.stopAction = o.automaticStopAction ?? o.stopAction;
        const startAction = o.automaticStartAction === undefined ? undefined : START_ACTIONS[o.automaticStartAction];
        if (o.automaticStartAction !== undefined && startAction === undefined)
          throw new CommandFailure(
            'CIM_ERR_INVALID_PARAMETER',
            4,
            `--automatic-start-action must be 'nothing', 'start' or 'start-if-running', not "${o.automaticStartAction}"`,
          );
        const v = await findVm(c, name);
        const id = String(v.get('Name'));
        const service = await servicePath(c);
        const call = (method: string, params: Record<string, unknown>) => callMethod(c, service, method, params, { progress: false, label: method });
        const done: string[] = [];
        if (
          o.name !== undefined ||
          o.image !== undefined ||
          o.cmdline !== undefined ||
          o.stopAction !== undefined ||
          o.notes !== undefined ||
          startAction !== undefined
        ) {
          if (o.stopAction !== undefined && o.stopAction !== 'save' && o.stopAction !== 'turn-off')
            throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--automatic-stop-action must be 'save' or 'turn-off', not "${o.stopAction}"`);
          const vssd = schema.createInstance('Msvm_VirtualSystemSettingData', {
            InstanceID: `Microsoft:${id}`,
            ...(o.name !== undefined ? { ElementName: o.name } : {}),
            ...(o.image !== undefined ? { GuestImagePath: resolve(o.image) } : {}),
            ...(o.cmdline !== undefined ? { GuestCommandLine: o.cmdline } : {}),
            ...(o.stopAction !== undefined ? { AutomaticShutdownAction: o.stopAction === 'save' ? 3 : 2 } : {}),
            ...(o.notes !== undefined ? { Notes: [o.notes] } : {}),
            ...(startAction !== undefined ? { AutomaticStartupAction: startAction } : {}),
          });
          await call('ModifySystemSettings', { SystemSettings: vssd });
          done.push('system settings');
        }
        const resources: CimInstance[] = [];
        if (o.memory !== undefined)
          resources.push(
            schema.createInstance('Msvm_MemorySettingData', {
              InstanceID: `Microsoft:${id}\\4764334D-E001-4176-82EE-5594EC9B530E`,
              ResourceType: 4,
              VirtualQuantity: BigInt(Math.ceil(parseSize(o.memory) / (1024 * 1024))),
            }),
          );
        const cpu = cpuSettings(o);
        if (o.vps !== undefined || Object.keys(cpu).length) {
          resources.push(
            schema.createInstance('Msvm_ProcessorSettingData', {
              InstanceID: `Microsoft:${id}\\B637F346-6A0E-4DEC-AF52-BD70CB80A21D\\0`,
              ResourceType: 3,
              ...(o.vps !== undefined ? { VirtualQuantity: BigInt(wholeNumber('--vps', o.vps, 1, MAX_VPS)) } : {}),
              ...cpu,
            }),
          );
        }
        if (resources.length) {
          await call('ModifyResourceSettings', { ResourceSettings: resources });
          done.push('resources');
        }
        if (o.addDisk !== undefined) {
          const m = /^(ide|scsi):(\d+)$/.exec(o.controller ?? '');
          if (!m) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--controller must be ide:0, ide:1 or scsi:N');
          const controller = `Microsoft:${id}\\${m[1] === 'ide' ? '83F8638B-8DCA-4152-9EDA-2CA8B33039B4' : 'D422512D-2BF2-4752-809D-7B82B5FCB1B4'}\\${m[2]}`;
          const drive = `${controller}\\${o.location}\\D`;
          await call('AddResourceSettings', {
            AffectedConfiguration: { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}` }] },
            ResourceSettings: [
              schema.createInstance('Msvm_ResourceAllocationSettingData', {
                ResourceType: 17,
                ResourceSubType: 'Microsoft:Hyper-V:Synthetic Disk Drive',
                Parent: controller,
                AddressOnParent: o.location,
              }),
              schema.createInstance('Msvm_StorageAllocationSettingData', {
                ResourceType: 31,
                ResourceSubType: 'Microsoft:Hyper-V:Virtual Hard Disk',
                Parent: drive,
                HostResource: [resolve(o.addDisk)],
              }),
            ],
          });
          done.push('disk added');
        }
        if (o.removeDisk !== undefined) {
          const m = /^(ide|scsi):(\d+):(\d+)$/.exec(o.removeDisk);
          if (!m) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--remove-disk must be ide:C:L or scsi:C:L');
          const guid = m[1] === 'ide' ? '83F8638B-8DCA-4152-9EDA-2CA8B33039B4' : 'D422512D-2BF2-4752-809D-7B82B5FCB1B4';
          await call('RemoveResourceSettings', {
            ResourceSettings: [
              { className: 'Msvm_StorageAllocationSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}\\${guid}\\${m[2]}\\${m[3]}\\L` }] },
            ],
          });
          done.push('disk removed');
        }
        if (!done.length)
          throw new CommandFailure(
            'CIM_ERR_INVALID_PARAMETER',
            4,
            'nothing to change: give --name, --image, --cmdline, --notes, --automatic-start-action, --automatic-stop-action, --memory, --vps, --reserve, --maximum, --weight, --add-disk or --remove-disk',
          );
        if (o.json) printJson({ vm: String(v.get('ElementName')), changed: done });
        else console.log(`${String(v.get('ElementName'))}: ${done.join(', ')} changed`);
      }),
    );
}

/** --reserve / --maximum (percent, to a thousandth) and --weight as Msvm_ProcessorSettingData Reservation, Limit (thousandths of a percent) and Weight. */
function cpuSettings(o: Record<string, string | undefined>): Record<string, bigint | number> {
  const percent = (flag: string, v: string, min: number) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > 100)
      throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `${flag} must be a percentage from ${min} to 100, not "${v}"`);
    return BigInt(Math.round(n * 1000));
  };
  return {
    ...(o.reserve !== undefined ? { Reservation: percent('--reserve', o.reserve, 0) } : {}),
    ...(o.maximum !== undefined ? { Limit: percent('--maximum', o.maximum, 0.001) } : {}),
    ...(o.weight !== undefined ? { Weight: wholeNumber('--weight', o.weight, 1, 10_000) } : {}),
  };
}
