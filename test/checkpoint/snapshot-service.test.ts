/**
 * Msvm_VirtualSystemSnapshotService over an embedded VMMS (no worker started; the VM is Off, so
 * its checkpoints are disks only): CreateSnapshot / ApplySnapshot / DestroySnapshot as jobs with
 * Hyper-V's return codes, snapshot VSSDs linked to their VM and to each other, found by WQL.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CimInstance } from '../../root-partition/management/cim/instance.ts';
import type { CimObjectPath } from '../../root-partition/management/cim/object-path.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import { executeWql } from '../../root-partition/management/wql/query-executor.ts';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { startCimService } from '../../root-partition/vmms/cim-binding.ts';
import { MiB, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

const fx = new VmmsFixture();
afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});
const schema = createVirtualizationSchema();

describe('Msvm_VirtualSystemSnapshotService', () => {
  it('creates, lists, applies and destroys snapshots as jobs; the tree is queried with WQL', async () => {
    const dir = fx.dataDir();
    const vmms = await fx.vmms({ dataDir: dir });
    const cim = await startCimService(vmms, { cimPort: null, httpsPort: null });
    try {
      const m = cim.manager;
      const disk = join(dir, 'd.vhdx');
      newDisk(disk, { kind: 'dynamic', sizeBytes: 4 * MiB });
      writeFileSync(join(dir, 'g.wasm'), 'x');
      const vm = vmms.defineVm({
        name: 'snap',
        memoryBytes: 4 * MiB,
        imagePath: join(dir, 'g.wasm'),
        devices: [{ kind: 'ide-disk', controller: 0, position: 0, path: disk }],
      });
      const [svc] = m.enumerateInstanceNames('Msvm_VirtualSystemSnapshotService');
      expect(svc).toBeDefined();
      const system: CimObjectPath = {
        className: 'Msvm_ComputerSystem',
        keys: [
          { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
          { name: 'Name', value: vm.id },
        ],
      };
      const finished = async (r: { returnValue: number; out: Record<string, unknown> }) => {
        expect(r.returnValue).toBe(4096);
        return waitFor('the job to end', () => {
          const j = m.getInstance(r.out.Job as CimObjectPath);
          return j && [7, 10].includes(j.get('JobState') as number) ? j : null;
        });
      };
      const create = async (name: string) => {
        const r = await m.invokeMethod(svc!, 'CreateSnapshot', {
          AffectedSystem: system,
          SnapshotSettings: schema.createInstance('Msvm_VirtualSystemSettingData', { ElementName: name }),
          SnapshotType: 2,
        });
        const job = await finished(r);
        expect(job.get('JobState'), String(job.get('ErrorDescription'))).toBe(7);
        return r.out.ResultingSnapshot as CimObjectPath;
      };
      const first = await create('first');
      const second = await create('second');
      const snapshots = executeWql(m, "SELECT * FROM Msvm_VirtualSystemSettingData WHERE VirtualSystemType = 'Microsoft:Hyper-V:Snapshot:Realized'");
      expect(
        snapshots.kind === 'instances' &&
          snapshots.rows.map((x) => [x.instance.get('ElementName'), x.instance.get('VirtualSystemIdentifier'), x.instance.get('IsSaved')]),
      ).toEqual([
        ['first', vm.id, false],
        ['second', vm.id, false],
      ]);
      expect(m.getInstance(first)!.get('ElementName')).toBe('first');
      const ofVm = executeWql(
        m,
        `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${vm.id}"} WHERE AssocClass = Msvm_SnapshotOfVirtualSystem`,
      );
      expect(ofVm.kind === 'instances' && ofVm.rows.map((x) => x.instance.get('ElementName')).sort()).toEqual(['first', 'second']);
      const current = executeWql(
        m,
        `ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${vm.id}"} WHERE AssocClass = Msvm_MostCurrentSnapshotInBranch`,
      );
      expect(current.kind === 'instances' && current.rows.map((x) => x.instance.get('ElementName'))).toEqual(['second']);
      const children = executeWql(
        m,
        `ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="${String(first.keys[0]!.value)}"} WHERE AssocClass = Msvm_ParentChildSettingData ResultRole = Child`,
      );
      expect(children.kind === 'instances' && children.rows.map((x) => (x.instance as CimInstance).get('ElementName'))).toEqual(['second']);

      expect((await finished(await m.invokeMethod(svc!, 'ApplySnapshot', { Snapshot: first }))).get('JobState')).toBe(7);
      expect(vmms.checkpoints.list(vm.id).find((c) => c.current)?.name).toBe('first');
      // A reference to nothing: 32773 at once, no job.
      expect(
        (
          await m.invokeMethod(svc!, 'ApplySnapshot', {
            Snapshot: { className: 'Msvm_VirtualSystemSettingData', keys: [{ name: 'InstanceID', value: 'Microsoft:nothing' }] },
          })
        ).returnValue,
      ).toBe(32773);
      expect((await finished(await m.invokeMethod(svc!, 'DestroySnapshot', { AffectedSnapshot: second }))).get('JobState')).toBe(7);
      expect(vmms.checkpoints.list(vm.id).map((c) => c.name)).toEqual(['first']);
      // A checkpoint of a VM on a raw disk fails in its job, with the reason.
      const raw = join(dir, 'r.img');
      newDisk(raw, { kind: 'raw', sizeBytes: MiB });
      const rawVm = vmms.defineVm({
        name: 'rawvm',
        memoryBytes: 4 * MiB,
        imagePath: join(dir, 'g.wasm'),
        devices: [{ kind: 'ide-disk', controller: 0, position: 0, path: raw }],
      });
      const bad = await finished(
        await m.invokeMethod(svc!, 'CreateSnapshot', { AffectedSystem: { ...system, keys: [system.keys[0]!, { name: 'Name', value: rawVm.id }] } }),
      );
      expect([bad.get('JobState'), bad.get('ErrorCode')]).toEqual([10, 32768]);
      expect(String(bad.get('ErrorDescription'))).toContain('tsvisor disk convert');
    } finally {
      await cim.close();
    }
  });
});
