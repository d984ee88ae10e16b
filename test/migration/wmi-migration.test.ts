/**
 * Move-VM through WMI: Debian's unmodified wbemcli calls
 * Msvm_VirtualSystemMigrationService.MigrateVirtualSystemToHost on a real daemon, which moves a
 * running VM to a second real daemon (own data directory, mutual TLS on the migration ports).
 * The job carries PercentComplete and its phase; a first move is cancelled through
 * RequestStateChange on its job (Terminated, the VM runs on at the source, nothing is left on the
 * destination), the second completes (the VM runs there with the same id, gone from the source).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { LiveDaemon, run, WBEMCLI } from '../management/live-daemon.ts';
import { MiB, testImages } from '../vmms/vmms-fixture.ts';

const CREDS = 'operator:s3cret';
const wbemcli = (...args: string[]) => run(WBEMCLI!, args, 30_000);
const xmlEscape = (xml: string) => xml.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const SETTINGS = xmlEscape(
  '<INSTANCE CLASSNAME="Msvm_VirtualSystemMigrationSettingData"><PROPERTY NAME="MigrationType" TYPE="uint16"><VALUE>32768</VALUE></PROPERTY></INSTANCE>',
);
const VM_AND_STORAGE_SETTINGS = xmlEscape(
  '<INSTANCE CLASSNAME="Msvm_VirtualSystemMigrationSettingData"><PROPERTY NAME="MigrationType" TYPE="uint16"><VALUE>32771</VALUE></PROPERTY></INSTANCE>',
);
const STORAGE_SETTINGS = xmlEscape(
  '<INSTANCE CLASSNAME="Msvm_VirtualSystemMigrationSettingData"><PROPERTY NAME="MigrationType" TYPE="uint16"><VALUE>32769</VALUE></PROPERTY></INSTANCE>',
);

interface Host {
  daemon: LiveDaemon;
  client: VmmsClient;
  port: number;
  fingerprint: string;
}
const hosts: Host[] = [];

async function host(): Promise<Host> {
  const daemon = await LiveDaemon.start({
    users: [{ user: 'operator', password: 's3cret', role: 'full' }],
    extraArgs: ['--migration-port', '0', '--migration-host', '127.0.0.1', '--web-port', 'none'],
  });
  const m = /live migration on port (\d+) .*SHA-256 ([0-9A-F:]{95})/.exec(daemon.output());
  expect(m, daemon.output()).not.toBeNull();
  const h = { daemon, client: await VmmsClient.connect(daemon.dataDir), port: Number(m![1]), fingerprint: m![2]! };
  hosts.push(h);
  return h;
}

afterAll(async () => {
  for (const h of hosts) {
    for (const vm of await h.client.call<VmView[]>('list').catch(() => [])) await h.client.call('stop', { vm: vm.id, turnOff: true }).catch(() => {});
    h.client.close();
    expect(await h.daemon.stop()).toEqual([]);
  }
}, 60_000);

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!WBEMCLI)('Msvm_VirtualSystemMigrationService — skipped only when the wbemcli binary is absent; CI installs it', () => {
  let image: string;
  beforeAll(async () => {
    image = (await testImages()).memoryWriter;
  });

  it('MigrateVirtualSystemToHost runs as a job with phase and percent, is cancellable, and moves the VM', { timeout: 180_000 }, async () => {
    const [a, b] = await Promise.all([host(), host()]);
    await a.client.call('host-trust', { fingerprint: b.fingerprint, name: 'b' });
    await b.client.call('host-trust', { fingerprint: a.fingerprint, name: 'a' });
    const vm = await a.client.call<VmView>('new', {
      name: 'wmi-mover',
      imagePath: image,
      memoryBytes: 32 * MiB,
      vpCount: 1,
      cmdline: 'mib=16 rate=16',
      automaticStopAction: 'turn-off',
    });
    await a.client.call('start', { vm: vm.id });
    a.daemon.noteWorker((await a.client.call<VmView>('show', { vm: vm.id })).processId);
    await until('a first generation', async () => /gen=1 ok/.test(await a.client.call<string>('console', { vm: vm.id })));

    const U = a.daemon.url(CREDS);
    const svc = await wbemcli('ein', `${U}:Msvm_VirtualSystemMigrationService`);
    expect(svc.stdout.trim()).toMatch(
      /Msvm_VirtualSystemMigrationService\.CreationClassName="Msvm_VirtualSystemMigrationService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="[^"]+"$/,
    );
    const SVC = `http://${CREDS}@${svc.stdout.trim()}`;
    const ref = `Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="${vm.id}"`;
    const migrate = (settings: string) =>
      wbemcli('cm', SVC, `MigrateVirtualSystemToHost.ComputerSystem=${ref},DestinationHost="127.0.0.1:${b.port}",MigrationSettingData="${settings}"`);
    const job = async (id: string) =>
      (await wbemcli('gi', `${U}:Msvm_ConcreteJob.InstanceID="${id}"`, 'JobState,PercentComplete,JobStatus,ErrorDescription,Cancellable')).stdout.trim();
    const jobId = (out: string) => {
      expect(out).toMatch(/MigrateVirtualSystemToHost: 4096, Job \(reference\): .*Msvm_ConcreteJob\.InstanceID="[0-9A-F-]{36}"/);
      return /InstanceID="([0-9A-F-]{36})"/.exec(out)![1]!;
    };

    // A storage-only move (within one host) is not offered: refused at once, nothing started. A
    // move with storage needs the drives' new paths (NewResourceSettingData): without, refused.
    expect((await migrate(STORAGE_SETTINGS)).stdout.trim()).toMatch(/MigrateVirtualSystemToHost: 32770$/);
    expect((await migrate(VM_AND_STORAGE_SETTINGS)).stdout.trim()).toMatch(/MigrateVirtualSystemToHost: 32773$/);

    // A move cancelled through its job: Terminated with the reason, the VM runs on here, nothing is left there.
    const first = jobId((await migrate(SETTINGS)).stdout);
    expect(await job(first)).toMatch(/Cancellable=TRUE/);
    expect((await wbemcli('cm', `${U}:Msvm_ConcreteJob.InstanceID="${first}"`, 'RequestStateChange.RequestedState=4')).stdout.trim()).toMatch(
      /RequestStateChange: 0$/,
    );
    const terminated = await until('the cancelled job to end', async () => {
      const j = await job(first);
      return /JobState=8/.test(j) && j;
    });
    expect(terminated).toMatch(/ErrorDescription="[^"]*cancelled/);
    expect((await a.client.call<VmView>('show', { vm: vm.id })).state).toBe('Running');
    await until('the destination to drop the VM', async () => (await b.client.call<VmView[]>('list')).length === 0);

    // The move that completes: the job passes through its phases to Completed at 100%.
    const second = jobId((await migrate(SETTINGS)).stdout);
    const seen = new Set<string>();
    const done = await until(
      'the migration job to end',
      async () => {
        const j = await job(second);
        const status = /JobStatus="([^"]*)"/.exec(j)?.[1];
        if (status) seen.add(status);
        return /JobState=(7|10)/.test(j) && j;
      },
      120_000,
    );
    expect(done).toMatch(/PercentComplete=100/);
    expect(done).toMatch(/JobState=7/);
    // While it ran, JobStatus named the phase (the destination's worker start alone outlasts a poll).
    expect([...seen].filter((s) => /pre-copy|switch-over|committing/.test(s))).not.toEqual([]);
    expect(await a.client.call<VmView[]>('list')).toEqual([]);
    // The job completed: the destination's VMMS had recorded the VM Running before its worker told the source.
    const moved = await b.client.call<VmView>('show', { vm: vm.id });
    expect(moved.state).toBe('Running');
    b.daemon.noteWorker(moved.processId);
    // The guest's own check: every generation after the move reads its whole working set back intact.
    const gens = async () => [...(await b.client.call<string>('console', { vm: vm.id })).matchAll(/gen=(\d+) ok/g)].length;
    await until('a generation on the destination', async () => (await gens()) >= 2);
    expect(await b.client.call<string>('console', { vm: vm.id })).not.toMatch(/MISMATCH/);
  });
});
