/**
 * `tsvisor vm stop | rm | set` through the management API. Stop-VM without options asks the
 * guest's shutdown integration service (Msvm_ShutdownComponent.InitiateShutdown) and turns the
 * VM off when it has not stopped within the timeout; --turn-off and --save are RequestStateChange
 * 3 and 6. `set` maps Set-VM / Set-VMProcessor / Set-VMMemory / Add-VMHardDiskDrive onto
 * ModifySystemSettings, ModifyResourceSettings, AddResourceSettings and RemoveResourceSettings.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { CimInstance } from '../management/cim/instance.ts';
import { createVirtualizationSchema } from '../management/cim/schema.ts';
import type { ManagementClient } from '../management/client/management-client.ts';
import { callMethod, CommandFailure, findVm, parseSize, servicePath, stateText, verb, vmPath, withManagement } from './management-session.ts';
import { instanceJson, printJson } from './table.ts';

const schema = createVirtualizationSchema();
const OFF = 3;

/** Resolves when the VM is Off (pushed modification events), or with false at the deadline. */
async function offWithin(c: ManagementClient, vmId: string, ms: number): Promise<{ reached: Promise<boolean>; stop: () => Promise<void> }> {
  let settle!: (v: boolean) => void;
  const reached = new Promise<boolean>((r) => { settle = r; });
  const w = await c.watch(`SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.Name = '${vmId}' AND TargetInstance.EnabledState = ${OFF}`, () => settle(true));
  const timer = setTimeout(() => settle(false), ms);
  return { reached, stop: async () => { clearTimeout(timer); await w.stop().catch(() => {}); } };
}

async function gracefulStop(c: ManagementClient, vm: CimInstance, o: { timeout: number; force: boolean; json: boolean }): Promise<string> {
  const id = String(vm.get('Name'));
  const [shutdown] = await c.queryRows(`ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${id}"} WHERE ResultClass = Msvm_ShutdownComponent`);
  if (!shutdown) throw new CommandFailure('InitiateShutdown', 32770, `VM ${String(vm.get('ElementName'))} has no shutdown integration service, so it cannot be shut down from inside; use --turn-off or --save`);
  const off = await offWithin(c, id, o.timeout * 1000);
  try {
    const r = await c.invoke(shutdown.path, 'InitiateShutdown', { Force: o.force, Reason: 'tsvisor vm stop' });
    if (r.returnValue === 32770) throw new CommandFailure('InitiateShutdown', 32770, 'this host cannot ask the guest to shut down (Not Supported); use --turn-off or --save');
    if (r.returnValue !== 0) throw new CommandFailure('InitiateShutdown', r.returnValue, `${r.description ?? 'failed'}: the guest did not accept the shutdown request; use --turn-off`);
    if (Number((await c.get(vmPath(c, vm))).get('EnabledState')) === OFF || await off.reached) return 'shut down';
  } finally {
    await off.stop();
  }
  if (!o.json) console.error(`tsvisor: ${String(vm.get('ElementName'))} did not shut down within ${o.timeout} s; turning it off`);
  await callMethod(c, vmPath(c, vm), 'RequestStateChange', { RequestedState: OFF }, { progress: !o.json, label: 'Turning off' });
  return 'turned off after the shutdown timeout';
}

export function registerStopAndEdit(vm: Command, dir: () => string | undefined): void {
  verb(vm, 'stop <vm>').description('Stop-VM: shut the guest down (turned off if it has not stopped within --timeout), or --turn-off, --save')
    .option('--turn-off', 'turn the VM off at once (RequestStateChange 3)')
    .option('--save', 'save the VM instead (RequestStateChange 6)')
    .option('--force', 'shut down even if applications in the guest object')
    .option('--timeout <seconds>', 'how long the guest has to shut down before it is turned off', '30')
    .option('--json', 'machine-readable output')
    .action((name: string, o: { turnOff?: boolean; save?: boolean; force?: boolean; timeout: string; json?: boolean }) => withManagement(dir(), async (c) => {
      if (o.turnOff && o.save) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--turn-off and --save exclude each other');
      const timeout = Number(o.timeout);
      if (!Number.isFinite(timeout) || timeout < 0) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `--timeout must be a number of seconds, not "${o.timeout}"`);
      const v = await findVm(c, name);
      let outcome: string;
      if (o.turnOff || o.save) {
        await callMethod(c, vmPath(c, v), 'RequestStateChange', { RequestedState: o.save ? 6 : OFF }, { progress: !o.json, label: o.save ? 'Saving' : 'Turning off' });
        outcome = o.save ? 'saved' : 'turned off';
      } else {
        outcome = await gracefulStop(c, v, { timeout, force: Boolean(o.force), json: Boolean(o.json) });
      }
      const after = await c.get(vmPath(c, v));
      if (o.json) printJson({ outcome, vm: instanceJson(after) });
      else console.log(`${String(v.get('ElementName'))}: ${outcome} (${stateText(Number(after.get('EnabledState')))})`);
    }));

  verb(vm, 'rm <vm>').description('Remove-VM (DestroySystem; the VM must be Off or Saved)').option('--json', 'machine-readable output')
    .action((name: string, o: { json?: boolean }) => withManagement(dir(), async (c) => {
      const v = await findVm(c, name);
      await callMethod(c, await servicePath(c), 'DestroySystem', { AffectedSystem: vmPath(c, v) }, { progress: false, label: 'Removing' });
      if (o.json) printJson({ removed: String(v.get('Name')) });
      else console.log(`${String(v.get('ElementName'))}: removed`);
    }));

  verb(vm, 'set <vm>').description('Set-VM / Set-VMProcessor / Set-VMMemory / Add-VMHardDiskDrive (the VM must be Off)')
    .option('--name <name>', 'rename the VM')
    .option('--image <path>', 'guest image (.wasm)')
    .option('--cmdline <text>', 'kernel command line')
    .option('--stop-action <action>', "'save' or 'turn-off'")
    .option('-m, --memory <size>', 'guest memory')
    .option('--vps <count>', 'virtual processors')
    .option('--add-disk <path>', 'attach a raw disk image (with --controller and --location)')
    .option('--controller <type:n>', 'ide:0, ide:1 or scsi:N for --add-disk', 'ide:0')
    .option('--location <n>', 'position on the controller for --add-disk', '0')
    .option('--remove-disk <type:n:location>', 'detach the disk at e.g. ide:0:1 or scsi:0:3')
    .action((name: string, o: Record<string, string | undefined>) => withManagement(dir(), async (c) => {
      const v = await findVm(c, name);
      const id = String(v.get('Name'));
      const service = await servicePath(c);
      const call = (method: string, params: Record<string, unknown>) => callMethod(c, service, method, params, { progress: false, label: method });
      const done: string[] = [];
      if (o.name !== undefined || o.image !== undefined || o.cmdline !== undefined || o.stopAction !== undefined) {
        if (o.stopAction !== undefined && o.stopAction !== 'save' && o.stopAction !== 'turn-off') throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, "--stop-action must be 'save' or 'turn-off'");
        const vssd = schema.createInstance('Msvm_VirtualSystemSettingData', {
          InstanceID: `Microsoft:${id}`, ...(o.name !== undefined ? { ElementName: o.name } : {}), ...(o.image !== undefined ? { GuestImagePath: resolve(o.image) } : {}),
          ...(o.cmdline !== undefined ? { GuestCommandLine: o.cmdline } : {}), ...(o.stopAction !== undefined ? { AutomaticShutdownAction: o.stopAction === 'save' ? 3 : 2 } : {}),
        });
        await call('ModifySystemSettings', { SystemSettings: vssd });
        done.push('system settings');
      }
      const resources: CimInstance[] = [];
      if (o.memory !== undefined) resources.push(schema.createInstance('Msvm_MemorySettingData', { InstanceID: `Microsoft:${id}\\4764334D-E001-4176-82EE-5594EC9B530E`, ResourceType: 4, VirtualQuantity: BigInt(Math.ceil(parseSize(o.memory) / (1024 * 1024))) }));
      if (o.vps !== undefined) resources.push(schema.createInstance('Msvm_ProcessorSettingData', { InstanceID: `Microsoft:${id}\\B637F346-6A0E-4DEC-AF52-BD70CB80A21D\\0`, ResourceType: 3, VirtualQuantity: BigInt(Number(o.vps)) }));
      if (resources.length) { await call('ModifyResourceSettings', { ResourceSettings: resources }); done.push('resources'); }
      if (o.addDisk !== undefined) {
        const m = /^(ide|scsi):(\d+)$/.exec(o.controller ?? '');
        if (!m) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--controller must be ide:0, ide:1 or scsi:N');
        const controller = `Microsoft:${id}\\${m[1] === 'ide' ? '83F8638B-8DCA-4152-9EDA-2CA8B33039B4' : 'D422512D-2BF2-4752-809D-7B82B5FCB1B4'}\\${m[2]}`;
        const drive = `${controller}\\${o.location}\\D`;
        await call('AddResourceSettings', {
          AffectedConfiguration: { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}` }] },
          ResourceSettings: [
            schema.createInstance('Msvm_ResourceAllocationSettingData', { ResourceType: 17, ResourceSubType: 'Microsoft:Hyper-V:Synthetic Disk Drive', Parent: controller, AddressOnParent: o.location }),
            schema.createInstance('Msvm_StorageAllocationSettingData', { ResourceType: 31, ResourceSubType: 'Microsoft:Hyper-V:Virtual Hard Disk', Parent: drive, HostResource: [resolve(o.addDisk)] }),
          ],
        });
        done.push('disk added');
      }
      if (o.removeDisk !== undefined) {
        const m = /^(ide|scsi):(\d+):(\d+)$/.exec(o.removeDisk);
        if (!m) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, '--remove-disk must be ide:C:L or scsi:C:L');
        const guid = m[1] === 'ide' ? '83F8638B-8DCA-4152-9EDA-2CA8B33039B4' : 'D422512D-2BF2-4752-809D-7B82B5FCB1B4';
        await call('RemoveResourceSettings', { ResourceSettings: [{ className: 'Msvm_StorageAllocationSettingData', keys: [{ name: 'InstanceID', value: `Microsoft:${id}\\${guid}\\${m[2]}\\${m[3]}\\L` }] }] });
        done.push('disk removed');
      }
      if (!done.length) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, 'nothing to change: give --name, --image, --cmdline, --stop-action, --memory, --vps, --add-disk or --remove-disk');
      console.log(`${String(v.get('ElementName'))}: ${done.join(', ')} changed`);
    }));
}
