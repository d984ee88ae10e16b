/**
 * Debian's unmodified wbemcli against a real `tsvisor serve`: the live model of real VMs
 * (enumerate, get, GetClass, associations), DefineSystem, RequestStateChange through every state
 * with its Msvm_ConcreteJob, jobs that fail with ErrorCode and ErrorDescription, DestroySystem;
 * and the intrinsic events the service pushes for each change, seen through the typed client.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ManagementClient, ManagementEvent } from '../../root-partition/management/client/management-client.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, runAs, WBEMCLI } from './live-daemon.ts';

const CREDS = 'operator:s3cret';
const VIEWER = 'viewer:l00k';
let daemon: LiveDaemon;
let client: ManagementClient;
let image: string;
let scratch: string;
const events: ManagementEvent[] = [];

const wbemcli = (...args: string[]) => run(WBEMCLI!, args, 30_000);
const embedded = (cls: string, props: Record<string, string | number>) => {
  const body = Object.entries(props)
    .map(([k, v]) => `<PROPERTY NAME="${k}" TYPE="${typeof v === 'number' ? 'uint16' : 'string'}"><VALUE>${v}</VALUE></PROPERTY>`)
    .join('');
  return `<INSTANCE CLASSNAME="${cls}">${body}</INSTANCE>`.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
};

/** vi.waitFor on a probe that answers a falsy value until the condition holds; the time-out shows the daemon's log. */
async function until<T>(what: string, probe: () => T | undefined | null | false, ms = 60_000): Promise<T> {
  return vi.waitFor(
    () => {
      const v = probe();
      if (!v) throw new Error(`timed out waiting for ${what}; log: ${daemon.log()}`);
      return v;
    },
    { timeout: ms, interval: 25 },
  );
}

describe.skipIf(!WBEMCLI)('wbemcli against a real tsvisor serve — skipped only when the wbemcli binary is absent; CI installs it', () => {
  let U = '';
  let SVC = '';
  let VM = '';
  let vmId = '';

  beforeAll(async () => {
    await buildGuests(['checksum']);
    image = guestImagePath('checksum');
    scratch = mkdtempSync(join(tmpdir(), 'tsv-img-'));
    // The doomed image below is copied into scratch: a directory the host allows VM files from.
    daemon = await LiveDaemon.start({
      users: [
        { user: 'operator', password: 's3cret', role: 'full' },
        { user: 'viewer', password: 'l00k', role: 'read-only' },
      ],
      storageRoots: [scratch],
    });
    U = daemon.url(CREDS);
    client = await daemon.client();
    await client.watch(
      "SELECT * FROM __InstanceOperationEvent WITHIN 1 WHERE TargetInstance ISA 'Msvm_ComputerSystem' OR TargetInstance ISA 'Msvm_ConcreteJob'",
      (e) => {
        events.push(e);
        daemon.noteWorker(e.target.get('ProcessID'));
      },
    );
  }, 120_000);

  afterAll(async () => {
    client?.close();
    if (daemon) expect(await daemon.stop()).toEqual([]);
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('enumerates the host and its management service; GetClass describes Msvm_ComputerSystem', async () => {
    const cs = await wbemcli('ei', `${U}:Msvm_ComputerSystem`, 'Description,EnabledState');
    expect(cs.code).toBe(0);
    expect(cs.stdout.trim().split('\n')).toEqual([expect.stringMatching(/Description="Microsoft Hosting Computer System",EnabledState=2$/)]);
    const svc = await wbemcli('ein', `${U}:Msvm_VirtualSystemManagementService`);
    expect(svc.stdout).toContain('Msvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms"');
    SVC = `http://${CREDS}@${svc.stdout.trim()}`;
    const gc = await wbemcli('gc', `${U}:Msvm_ComputerSystem`);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toContain('OnTimeInMilliseconds=');
    expect(gc.stdout).toContain('EnabledState=');
  });

  it('DefineSystem creates a VM that enumeration, GetInstance and the associations show', async () => {
    const r = await wbemcli(
      'cm',
      SVC,
      `DefineSystem.SystemSettings="${embedded('Msvm_VirtualSystemSettingData', { ElementName: 'web', GuestImagePath: image, GuestCommandLine: 'rounds=100000000', AutomaticShutdownAction: 2 })}"`,
    );
    expect(r.stdout).toMatch(
      /DefineSystem: 0, ResultingSystem \(reference\): .*Msvm_ComputerSystem\.CreationClassName="Msvm_ComputerSystem",Name="[0-9a-f-]{36}"/,
    );
    vmId = /Name="([0-9a-f-]{36})"/.exec(r.stdout)![1]!;
    VM = `${U}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${vmId}"`;
    await until('the creation event', () => events.find((e) => e.kind === 'creation' && e.target.get('Name') === vmId));

    const names = await wbemcli('ein', `${U}:Msvm_ComputerSystem`);
    expect(names.stdout).toContain(`Name="${vmId}"`);
    const gi = await wbemcli('gi', VM, 'ElementName,EnabledState,RequestedState,HealthState,Description');
    expect(gi.stdout.trim()).toMatch(/Description="Microsoft Virtual Machine",ElementName="web",.*HealthState=5,EnabledState=3,RequestedState=12/);

    const vssd = await wbemcli('ain', '-ac', 'Msvm_SettingsDefineState', VM);
    expect(vssd.stdout.trim()).toBe(`127.0.0.1/root/virtualization/v2:Msvm_VirtualSystemSettingData.InstanceID="Microsoft:${vmId}"`);
    const parts = await wbemcli('ain', '-ac', 'Msvm_VirtualSystemSettingDataComponent', `${U}:Msvm_VirtualSystemSettingData.InstanceID="Microsoft:${vmId}"`);
    expect(
      parts.stdout
        .trim()
        .split('\n')
        .map((l) => /:(Msvm_\w+)\./.exec(l)![1])
        .sort(),
    ).toEqual([
      'Msvm_HeartbeatComponentSettingData',
      'Msvm_KvpExchangeComponentSettingData',
      'Msvm_MemorySettingData',
      'Msvm_ProcessorSettingData',
      'Msvm_ResourceAllocationSettingData',
      'Msvm_ResourceAllocationSettingData',
      'Msvm_ShutdownComponentSettingData',
      'Msvm_TimeSyncComponentSettingData',
    ]);
    const settings = await wbemcli('gi', `${U}:Msvm_VirtualSystemSettingData.InstanceID="Microsoft:${vmId}"`, 'ElementName,VirtualSystemType,GuestImagePath');
    expect(settings.stdout).toContain('VirtualSystemType="Microsoft:Hyper-V:System:Realized"');
  });

  it('RequestStateChange runs each change as a job; every state change is pushed as an event', async () => {
    const step = async (requested: number, state: number) => {
      const r = await wbemcli('cm', VM, `RequestStateChange.RequestedState=${requested}`);
      expect(r.stdout).toMatch(/RequestStateChange: 4096, Job \(reference\): .*Msvm_ConcreteJob\.InstanceID="[0-9A-F-]{36}"/);
      const job = /InstanceID="([0-9A-F-]{36})"/.exec(r.stdout)![1]!;
      const done = await until(`job ${job}`, () =>
        events.find((e) => e.target.className === 'Msvm_ConcreteJob' && e.target.get('InstanceID') === job && e.target.get('JobState') === 7),
      );
      expect(done.target.get('PercentComplete')).toBe(100);
      const gi = await wbemcli('gi', VM, 'EnabledState');
      expect(gi.stdout.trim()).toMatch(new RegExp(`EnabledState=${state}$`));
      const readBack = await wbemcli('gi', `${U}:Msvm_ConcreteJob.InstanceID="${job}"`, 'JobState,PercentComplete,ErrorCode');
      expect(readBack.stdout.trim()).toMatch(/PercentComplete=100,ErrorCode=0,JobState=7$/);
    };
    await step(2, 2);
    const again = await wbemcli('cm', VM, 'RequestStateChange.RequestedState=2');
    expect(again.stdout.trim()).toMatch(/RequestStateChange: 32775$/);
    const jobs = await wbemcli('ain', '-ac', 'Msvm_AffectedJobElement', VM);
    expect(jobs.stdout).toContain('Msvm_ConcreteJob.InstanceID=');
    await step(9, 9);
    await step(2, 2);
    await step(6, 6);
    await step(2, 2);
    await step(3, 3);

    const states = events
      .filter(
        (e) =>
          e.kind === 'modification' &&
          e.target.className === 'Msvm_ComputerSystem' &&
          e.target.get('Name') === vmId &&
          e.previous!.get('EnabledState') !== e.target.get('EnabledState'),
      )
      .map((e) => [e.previous!.get('EnabledState'), e.target.get('EnabledState')]);
    // Off → Starting → Running → Pausing → Paused → Resuming → Running → Saving → Saved → Starting → Running → Stopping → Off
    expect(states).toEqual([
      [3, 10],
      [10, 2],
      [2, 32776],
      [32776, 9],
      [9, 32777],
      [32777, 2],
      [2, 32773],
      [32773, 6],
      [6, 10],
      [10, 2],
      [2, 4],
      [4, 3],
    ]);
  }, 180_000);

  it('a job that fails ends in Exception with the Hyper-V code and a reason; a refused DefineSystem too', async () => {
    const doomed = join(scratch, 'gone.wasm');
    copyFileSync(image, doomed);
    const def = await wbemcli(
      'cm',
      SVC,
      `DefineSystem.SystemSettings="${embedded('Msvm_VirtualSystemSettingData', { ElementName: 'doomed', GuestImagePath: doomed })}"`,
    );
    const id = /Name="([0-9a-f-]{36})"/.exec(def.stdout)![1]!;
    rmSync(doomed);
    const r = await wbemcli('cm', `${U}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${id}"`, 'RequestStateChange.RequestedState=2');
    const job = /InstanceID="([0-9A-F-]{36})"/.exec(r.stdout)![1]!;
    const failed = await until('the job to fail', () => events.find((e) => e.target.get('InstanceID') === job && e.target.get('JobState') === 10));
    expect(failed.target.get('ErrorCode')).toBe(32768);
    expect(String(failed.target.get('ErrorDescription'))).not.toBe('');
    const gi = await wbemcli('gi', `${U}:Msvm_ConcreteJob.InstanceID="${job}"`, 'JobState,ErrorCode');
    expect(gi.stdout.trim()).toMatch(/ErrorCode=32768,JobState=10$/);

    const refused = await wbemcli(
      'cm',
      SVC,
      `DefineSystem.SystemSettings="${embedded('Msvm_VirtualSystemSettingData', { ElementName: 'nothing', GuestImagePath: '/no/such/image.wasm' })}"`,
    );
    expect(refused.stdout).toMatch(/DefineSystem: 4096, Job \(reference\)/);
    const refusedJob = /InstanceID="([0-9A-F-]{36})"/.exec(refused.stdout)![1]!;
    const why = await wbemcli('gi', `${U}:Msvm_ConcreteJob.InstanceID="${refusedJob}"`, 'JobState,ErrorCode,ErrorDescription');
    expect(why.stdout).toContain('ErrorCode=32773');
    expect(why.stdout).toContain('guest image /no/such/image.wasm is not in a storage root this host allows');

    const destroy = await wbemcli('cm', SVC, `DestroySystem.AffectedSystem=Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${id}"`);
    expect(destroy.stdout.trim()).toMatch(/DestroySystem: 0$/);
    await until('the deletion event', () => events.find((e) => e.kind === 'deletion' && e.target.get('Name') === id));
  }, 120_000);

  it('answers malformed requests with CIM errors and refuses wrong credentials', async () => {
    const missing = await wbemcli('gi', `${U}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="nope"`);
    expect(missing.stderr).toContain('CIM_ERR_NOT_FOUND');
    const bad = await wbemcli('cm', VM, 'RequestStateChange.RequestedState=banana');
    expect(bad.stderr).toMatch(/CIM_ERR_INVALID_PARAMETER|\(4\)/);
    const unsupported = await wbemcli('cm', VM, 'RequestStateChange.RequestedState=5');
    expect(unsupported.stdout.trim()).toMatch(/RequestStateChange: 4097$/);
    const creds = await wbemcli('ein', `${daemon.url('operator:wrong')}:Msvm_ComputerSystem`);
    expect(creds.stderr).toContain('Invalid username/password');
    const alive = await wbemcli('gi', VM, 'EnabledState');
    expect(alive.code).toBe(0);
  });

  it('HTTPS with Basic credentials: wbemcli with -noverify and with -cacert the generated certificate', async () => {
    const https = daemon.httpsUrl(CREDS);
    const noverify = await wbemcli('-noverify', 'ei', `${https}:Msvm_ComputerSystem`, 'Description');
    expect(noverify.code).toBe(0);
    expect(noverify.stdout).toContain('Description="Microsoft Hosting Computer System"');
    const pinned = await wbemcli('-cacert', daemon.certFile, 'ein', `${https}:Msvm_VirtualSystemManagementService`);
    expect(pinned.stdout).toContain('Msvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms"');
    const wrong = await wbemcli('-noverify', 'ein', `${daemon.httpsUrl('operator:nope')}:Msvm_ComputerSystem`);
    expect(wrong.stderr).toContain('Invalid username/password');
    // The fingerprint printed at start is the certificate's.
    expect(daemon.output()).toContain(`SHA-256 ${new X509Certificate(readFileSync(daemon.certFile)).fingerprint256}`);
  });

  it('a read-only user may read but not call methods that change the host (CIM_ERR_ACCESS_DENIED)', async () => {
    const R = daemon.httpsUrl(VIEWER);
    const ei = await wbemcli('-noverify', 'ei', `${R}:Msvm_ComputerSystem`, 'Description');
    expect(ei.code).toBe(0);
    const vm = `${R}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${vmId}"`;
    const start = await wbemcli('-noverify', 'cm', vm, 'RequestStateChange.RequestedState=2');
    expect(start.stderr).toContain('CIM_ERR_ACCESS_DENIED');
    const define = await wbemcli(
      '-noverify',
      'cm',
      SVC.replace(/^http:\/\/[^/]+/, `https://${VIEWER}@127.0.0.1:${daemon.httpsPort}`),
      `DefineSystem.SystemSettings="${embedded('Msvm_VirtualSystemSettingData', { ElementName: 'not-allowed', GuestImagePath: image })}"`,
    );
    expect(define.stderr).toContain('CIM_ERR_ACCESS_DENIED');
    expect((await client.query("SELECT * FROM Msvm_ComputerSystem WHERE ElementName = 'not-allowed'")).length).toBe(0);
    expect((await wbemcli('gi', VM, 'EnabledState')).stdout.trim()).toMatch(/EnabledState=3$/);
  });

  it("without credentials a local user other than root and the service's own is refused (401), over HTTP and HTTPS", async () => {
    const asNobody = (...args: string[]) => runAs(65534, WBEMCLI!, args);
    const http = await asNobody('ein', `${daemon.url()}:Msvm_ComputerSystem`);
    expect(http.stderr).toMatch(/Username\/password required|HTTP response code said error/);
    expect(http.stdout).toBe('');
    const https = await asNobody('-noverify', 'ein', `${daemon.httpsUrl()}:Msvm_ComputerSystem`);
    expect(https.stderr).toMatch(/Username\/password required|HTTP response code said error/);
    // With the operator's credentials the same user gets in: it is the credentials that count.
    const withCreds = await asNobody('-noverify', 'ein', `${daemon.httpsUrl(CREDS)}:Msvm_VirtualSystemManagementService`);
    expect(withCreds.stdout).toContain('Name="vmms"');
  });

  it('malformed management requests on the socket get error replies; the service keeps serving', async () => {
    const sock = connect(daemon.socketPath);
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      got += c;
    });
    await new Promise((r) => sock.once('connect', r));
    const lines = [
      { id: 1, method: 'cim.get', params: { path: 'Msvm_ComputerSystem' } },
      { id: 2, method: 'cim.get', params: { path: { className: 'Msvm_ComputerSystem', keys: [{ name: 'Name', value: { nested: true } }] } } },
      {
        id: 3,
        method: 'cim.invoke',
        params: { path: { className: 'Msvm_ComputerSystem', keys: [] }, method: 'RequestStateChange', params: { RequestedState: { properties: 7 } } },
      },
      { id: 4, method: 'cim.query', params: { wql: 'SELECT FROM WHERE' } },
      { id: 5, method: 'cim.watch', params: { wql: 'SELECT * FROM Msvm_ComputerSystem' } },
      { id: 6, method: 'cim.unwatch', params: { subscription: 999 } },
      { id: 7, method: 'cim.enumerate', params: { className: 'Msvm_Nope' } },
    ];
    for (const l of lines) sock.write(JSON.stringify(l) + '\n');
    await until('seven replies', () => got.split('\n').filter(Boolean).length >= 7);
    const replies = got
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; error?: { code: string } });
    expect(replies.every((r) => r.error?.code)).toBe(true);
    expect(Object.fromEntries(replies.map((r) => [r.id, r.error!.code]))).toMatchObject({
      4: 'CIM_ERR_INVALID_QUERY',
      6: 'CIM_ERR_NOT_FOUND',
      7: 'CIM_ERR_INVALID_CLASS',
    });
    sock.destroy();
    expect((await client.query('SELECT * FROM Msvm_VirtualSystemManagementService')).length).toBe(1);
  });
});
