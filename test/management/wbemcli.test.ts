/**
 * Black-box tests with Debian's unmodified wbemcli (package sblim-wbemcli) against the CIM-XML
 * server over the in-memory provider, with the commands of wbemcli(1).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CimXmlServer } from '../../root-partition/management/cimxml/http-server.ts';
import { testAuthenticator } from './access-fixture.ts';
import { createFixture, JOB_ID, VM2_NAME, VM_NAME, VSSD_ID, type Fixture } from './fixtures.ts';
import type { CimInstance } from '../../root-partition/management/cim/instance.ts';

const WBEMCLI = ['/usr/bin/wbemcli', '/usr/local/bin/wbemcli'].find((p) => existsSync(p));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function wbemcli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(WBEMCLI!, args, { timeout: 10_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(!WBEMCLI)(
  'wbemcli (sblim-wbemcli) against the CIM-XML server — skipped only when the wbemcli binary is absent; CI installs it in .ci/run',
  () => {
    let fixture: Fixture;
    let server: CimXmlServer;
    let U = '';
    let VM = '';
    let SVC = '';
    let P = '';
    let disposeAccess = () => {};

    beforeAll(async () => {
      fixture = createFixture();
      const access = await testAuthenticator([{ user: 'user', password: 'pass', role: 'full' }]);
      disposeAccess = access.dispose;
      server = new CimXmlServer({ manager: fixture.manager, port: 0, authenticator: access.authenticator });
      const { port } = await server.listen();
      P = `127.0.0.1:${port}/root/virtualization/v2`;
      U = `http://user:pass@127.0.0.1:${port}/root/virtualization/v2`;
      VM = `${U}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}"`;
      SVC = `${U}:Msvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HOST1"`;
    });
    afterAll(async () => {
      await server.close();
      disposeAccess();
    });

    const vmRef = (name: string) => `Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${name}"`;

    it('ein lists the computer systems', async () => {
      const r = await wbemcli('ein', `${U}:Msvm_ComputerSystem`);
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(['HOST1', VM_NAME, VM2_NAME].map((n) => `${P}:${vmRef(n)}`));
    });

    it('ei with a property list prints the asked properties', async () => {
      const r = await wbemcli('ei', `${U}:Msvm_ComputerSystem`, 'ElementName,EnabledState');
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')[1]).toBe(`${P}:${vmRef(VM_NAME)} ElementName="web & db",EnabledState=3`);
    });

    it('gi prints one instance with NULLs as Prop=', async () => {
      const r = await wbemcli('gi', VM, 'Name,ElementName,ProcessID,OperationalStatus');
      expect(r.code).toBe(0);
      // Properties come in class order (CIM_ManagedElement's first), whatever order was asked.
      expect(r.stdout.trim()).toBe(`${P}:${vmRef(VM_NAME)} ElementName="web & db",Name="${VM_NAME}",OperationalStatus=2,ProcessID=`);
    });

    it('gp reads one property', async () => {
      const r = await wbemcli('gp', VM, 'ElementName');
      expect([r.code, r.stdout.trim()]).toEqual([0, 'web & db']);
    });

    it('gc reads the class, keys included', async () => {
      const r = await wbemcli('gc', `${U}:Msvm_VirtualSystemSettingData`);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^127\.0\.0\.1:\d+\/root\/virtualization\/v2:Msvm_VirtualSystemSettingData InstanceID=,Caption=,/);
      expect(r.stdout).toContain('VirtualSystemType=');
    });

    it('ain and ai follow the associations, with all four filters', async () => {
      const names = await wbemcli('ain', '-arc', 'Msvm_VirtualSystemSettingData', VM);
      expect([names.code, names.stdout.trim()]).toEqual([0, `127.0.0.1/root/virtualization/v2:Msvm_VirtualSystemSettingData.InstanceID="${VSSD_ID}"`]);
      const all = await wbemcli('ain', VM);
      expect(
        all.stdout
          .trim()
          .split('\n')
          .map((l) => l.split('.')[3]!.split(':')[1])
          .sort(),
      ).toEqual(['Msvm_HeartbeatComponent', 'Msvm_VirtualSystemSettingData']);
      const r = await wbemcli(
        'ai',
        '-ac',
        'Msvm_SettingsDefineState',
        '-arc',
        'Msvm_VirtualSystemSettingData',
        '-ar',
        'ManagedElement',
        '-arr',
        'SettingData',
        VM,
        'InstanceID,ElementName',
      );
      expect([r.code, r.stdout.trim()]).toEqual([
        0,
        `127.0.0.1/root/virtualization/v2:Msvm_VirtualSystemSettingData.InstanceID="${VSSD_ID}" InstanceID="${VSSD_ID}",ElementName="web"`,
      ]);
    });

    it('rin lists the association instances', async () => {
      const r = await wbemcli('rin', '-arc', 'Msvm_SettingsDefineState', VM);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(
        `127.0.0.1/root/virtualization/v2:Msvm_SettingsDefineState.ManagedElement=127.0.0.1/root/virtualization/v2Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${VM_NAME}",SettingData=127.0.0.1/root/virtualization/v2Msvm_VirtualSystemSettingData.InstanceID="${VSSD_ID}"`,
      );
    });

    it('cm RequestStateChange starts a job that gi can read', async () => {
      const r = await wbemcli('cm', VM, 'RequestStateChange.RequestedState=2');
      expect([r.code, r.stdout.trim()]).toEqual([
        0,
        `${P}:${vmRef(VM_NAME)} RequestStateChange: 4096, Job (reference): 127.0.0.1/root/virtualization/v2Msvm_ConcreteJob.InstanceID="${JOB_ID}"`,
      ]);
      expect(fixture.calls.get('RequestStateChange')).toEqual({ RequestedState: 2 });
      const job = await wbemcli('gi', `${U}:Msvm_ConcreteJob.InstanceID="${JOB_ID}"`, 'JobState,PercentComplete,ErrorCode');
      expect(job.stdout.trim()).toBe(`${P}:Msvm_ConcreteJob.InstanceID="${JOB_ID}" PercentComplete=100,ErrorCode=0,JobState=7`);
      const again = await wbemcli('cm', VM, 'RequestStateChange.RequestedState=2,TimeoutPeriod=00000000000100.000000:000');
      expect(again.stdout.trim()).toBe(`${P}:${vmRef(VM_NAME)} RequestStateChange: 32775`);
    });

    it('cm with a REF parameter, an array parameter and an embedded instance', async () => {
      const destroy = await wbemcli('cm', SVC, `DestroySystem.AffectedSystem=${vmRef(VM2_NAME)}`);
      expect(destroy.stdout.trim()).toMatch(/ DestroySystem: 0$/);
      expect(fixture.manager.enumerateInstanceNames('Msvm_ComputerSystem').map((p) => p.keys[1]!.value)).not.toContain(VM2_NAME);
      const summary = await wbemcli('cm', SVC, 'GetSummaryInformation.RequestedInformation=0,1,100');
      expect(summary.stdout).toContain('GetSummaryInformation: 0, SummaryInformation (string): <INSTANCE CLASSNAME=\\"Msvm_SummaryInformation\\">');
      expect(fixture.calls.get('GetSummaryInformation')).toEqual({ RequestedInformation: [0, 1, 100] });
      const define = await wbemcli(
        'cm',
        SVC,
        'DefineSystem.SystemSettings="&lt;INSTANCE CLASSNAME=&quot;Msvm_VirtualSystemSettingData&quot;&gt;&lt;PROPERTY NAME=&quot;ElementName&quot; TYPE=&quot;string&quot;&gt;&lt;VALUE&gt;vm1&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;"',
      );
      expect(define.stdout).toMatch(
        /DefineSystem: 0, ResultingSystem \(reference\): 127\.0\.0\.1\/root\/virtualization\/v2Msvm_ComputerSystem\.CreationClassName="Msvm_ComputerSystem",Name="B0B0B0B0-0000-0000-0000-000000000001"/,
      );
      expect((fixture.calls.get('DefineSystem')!.SystemSettings as CimInstance).get('ElementName')).toBe('vm1');
    });

    it('reports CIM errors and bad credentials as wbemcli does', async () => {
      const missing = await wbemcli('gi', `${U}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="nope"`);
      expect([missing.code, missing.stderr]).toEqual([
        16,
        expect.stringContaining('Cim: (6) CIM_ERR_NOT_FOUND: no instance Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="nope"'),
      ]);
      const noClass = await wbemcli('ei', `${U}:Msvm_Nope`);
      expect(noClass.stderr).toContain('Cim: (5) CIM_ERR_INVALID_CLASS: no class Msvm_Nope');
      const noMethod = await wbemcli('cm', VM, 'Explode.X=1');
      expect(noMethod.stderr).toContain('Cim: (17) CIM_ERR_METHOD_NOT_FOUND');
      const bad = await wbemcli('ein', `${U.replace('pass@', 'wrong@')}:Msvm_ComputerSystem`);
      expect([bad.code, bad.stderr]).toEqual([16, expect.stringContaining('Invalid username/password.')]);
    });
  },
);
