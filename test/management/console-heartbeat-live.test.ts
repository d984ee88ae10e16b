/**
 * A real `tsvisor serve` with real guests: `tsvisor vm console` typing into the reference shell
 * (stdin → VMMS → worker → COM1) and detaching with Ctrl-]; Msvm_HeartbeatComponent following
 * the guest's heartbeat, its changes pushed as __InstanceModificationEvent (not read on request);
 * Msvm_KvpExchangeComponent with the guest's items as embedded Msvm_KvpExchangeDataItem instances
 * (read with wbemcli too), and host items through AddKvpItems / ModifyKvpItems / RemoveKvpItems.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ManagementEvent } from '../../root-partition/management/client/management-client.ts';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import type { VmView } from '../../root-partition/vmms/vm-entry.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import { LiveDaemon, run, TSVISOR, WBEMCLI } from './live-daemon.ts';

let daemon: LiveDaemon;
const MiB = 1024 * 1024;

beforeAll(async () => {
  await buildGuests(['ref-emulated', 'ic-services']);
  daemon = await LiveDaemon.start();
}, 120_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
}, 60_000);

/** vi.waitFor on a condition; the time-out names it, with `detail()` (what the test saw) when there is any. */
async function until(what: string, check: () => boolean, timeoutMs = 30_000, detail: () => string = () => ''): Promise<void> {
  await vi.waitFor(
    () => {
      if (!check()) throw new Error(`timed out waiting for ${what}${detail() ? `:\n${detail()}` : ''}`);
    },
    { timeout: timeoutMs, interval: 50 },
  );
}

async function defineAndStart(name: string, request: Record<string, unknown>): Promise<VmView> {
  const c = await VmmsClient.connect(daemon.dataDir);
  try {
    await c.call('new', { name, memoryBytes: 32 * MiB, ...request });
    const r = await c.call<{ returnValue: number; vm: VmView }>('start', { vm: name });
    expect(r.returnValue).toBe(0);
    daemon.noteWorker(r.vm.processId);
    return r.vm;
  } finally {
    c.close();
  }
}

async function vmCall<T>(method: 'pause' | 'resume' | 'stop', params: Record<string, unknown>): Promise<T> {
  const c = await VmmsClient.connect(daemon.dataDir);
  try {
    return await c.call<T>(method, params);
  } finally {
    c.close();
  }
}

describe('the console and the integration services through a real daemon', () => {
  it('tsvisor vm console types into the reference shell, detaches on Ctrl-] and when the VM stops', async () => {
    const disk = join(daemon.dataDir, 'disks', 'console.raw'); // disks/: a storage root of every host
    writeFileSync(disk, Buffer.alloc(MiB));
    await defineAndStart('shell', { imagePath: guestImagePath('ref-emulated'), devices: [{ kind: 'ide-disk', controller: 0, position: 0, path: disk }] });

    const cli = spawn(process.execPath, [TSVISOR, 'vm', '--data-dir', daemon.dataDir, 'console', 'shell'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cli.stdout.on('data', (c) => {
      out += c;
    });
    cli.stderr.on('data', (c) => {
      err += c;
    });
    const exited = new Promise<number>((r) => cli.on('exit', (code) => r(code ?? -1)));
    try {
      const seen = () => `stdout:\n${out}\nstderr:\n${err}`;
      // The output VMMS held from before the attach comes first: the banner and a prompt.
      await until('the shell prompt', () => out.includes('tsvisor> '), 60_000, seen);
      cli.stdin.write('echo hello\r');
      await until('hello', () => /tsvisor> hello\r?\n/.test(out), 30_000, seen);
      cli.stdin.write('help\r');
      await until('the command list', () => /devices/.test(out.slice(out.indexOf('hello'))) && /uptime/.test(out), 30_000, seen);
      for (const command of ['read', 'write', 'counters', 'echo', 'shutdown']) expect(out).toContain(command);
      // Ctrl-] detaches while stdin stays open, as at a terminal.
      cli.stdin.write(Buffer.from([0x1d]));
      expect(await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000, 'still attached'))])).toBe(0);
    } finally {
      cli.kill('SIGKILL');
    }

    // Attached again: the shell's own shutdown stops the VM, and the console detaches by itself.
    const again = spawn(process.execPath, [TSVISOR, 'vm', '--data-dir', daemon.dataDir, 'console', 'shell'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out2 = '';
    let err2 = '';
    again.stdout.on('data', (c) => {
      out2 += c;
    });
    again.stderr.on('data', (c) => {
      err2 += c;
    });
    const exited2 = new Promise<number>((r) => again.on('exit', (code) => r(code ?? -1)));
    try {
      // What VMMS held is shown first: the session above, hello included.
      await until(
        'the earlier session',
        () => out2.includes('tsvisor> hello'),
        30_000,
        () => out2,
      );
      again.stdin.write('shutdown\r');
      expect(await Promise.race([exited2, new Promise((r) => setTimeout(r, 30_000, 'still attached'))])).toBe(0);
      expect(out2).toContain('halting');
      expect(err2).toContain('[tsvisor: shell is Off]');
    } finally {
      again.kill('SIGKILL');
    }
  }, 180_000);

  it("Msvm_HeartbeatComponent reports the guest's heartbeat, each change pushed as it happens", async () => {
    const client = await daemon.client();
    const events: ManagementEvent[] = [];
    const watch = await client.watch("SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA 'Msvm_HeartbeatComponent'", (e) =>
      events.push(e),
    );
    try {
      const vm = await defineAndStart('beating', { imagePath: guestImagePath('ic-services'), devices: [{ kind: 'integration-services' }] });
      const statuses = () => events.map((e) => e.target.get('OperationalStatus') as number[]).map((s) => s[0]);
      await until(
        'heartbeat OK',
        () => statuses().includes(2),
        60_000,
        () => JSON.stringify(statuses()),
      );
      const ok = events.find((e) => (e.target.get('OperationalStatus') as number[])[0] === 2)!;
      expect(ok.target.get('SystemName')).toBe(vm.id);
      expect(ok.target.get('StatusDescriptions')).toEqual(['OK']);
      const [component] = await client.query(`SELECT * FROM Msvm_HeartbeatComponent WHERE SystemName = '${vm.id}'`);
      expect([component!.get('OperationalStatus'), component!.get('StatusDescriptions')]).toEqual([[2], ['OK']]);
      // Each event is a change (WQL, like WMI's, cannot compare the arrays): the status before it differs.
      for (const e of events) expect(e.previous?.get('OperationalStatus')).not.toEqual(e.target.get('OperationalStatus'));
      const [service] = await client.enumerate('Msvm_VirtualSystemManagementService');
      const summary = await client.invoke(createVirtualizationSchema().pathOf(service!), 'GetSummaryInformation', { RequestedInformation: [0, 104] });
      const info = (summary.out.SummaryInformation as ManagementEvent['target'][]).find((i) => i.get('Name') === vm.id);
      expect(info?.get('Heartbeat')).toBe(2);

      const before = events.length;
      expect((await vmCall<{ returnValue: number }>('pause', { vm: 'beating' })).returnValue).toBe(0);
      await until(
        'heartbeat Paused',
        () => statuses().slice(before).includes(15),
        30_000,
        () => JSON.stringify(statuses()),
      );
      const paused = events.slice(before).find((e) => (e.target.get('OperationalStatus') as number[])[0] === 15)!;
      expect(paused.target.get('StatusDescriptions')).toEqual(['Paused']);
      expect(paused.previous?.get('OperationalStatus')).toEqual([2]);
      const resumedAt = events.length;
      expect((await vmCall<{ returnValue: number }>('resume', { vm: 'beating' })).returnValue).toBe(0);
      await until(
        'heartbeat OK again',
        () => statuses().slice(resumedAt).includes(2),
        30_000,
        () => JSON.stringify(statuses()),
      );

      const offAt = events.length;
      expect((await vmCall<{ returnValue: number }>('stop', { vm: 'beating', turnOff: true })).returnValue).toBe(0);
      await until(
        'no contact once off',
        () => statuses().slice(offAt).includes(12),
        30_000,
        () => JSON.stringify(statuses()),
      );
    } finally {
      await watch.stop();
      client.close();
    }
  }, 180_000);

  it("Msvm_KvpExchangeComponent carries the guest's items; the host adds, modifies and removes its own through the service", async () => {
    const client = await daemon.client();
    const events: ManagementEvent[] = [];
    const watch = await client.watch("SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE TargetInstance ISA 'Msvm_KvpExchangeComponent'", (e) =>
      events.push(e),
    );
    const c = await VmmsClient.connect(daemon.dataDir);
    try {
      const vm = await defineAndStart('kvp', { imagePath: guestImagePath('ic-services'), devices: [{ kind: 'integration-services' }] });
      const items = (i: ManagementEvent['target'], property: string) =>
        ((i.get(property) as ManagementEvent['target'][] | null) ?? []).map((x) => [x.get('Name'), x.get('Data'), x.get('Source')]);
      await until(
        "the guest's KVP items",
        () => events.some((e) => e.target.get('SystemName') === vm.id && items(e.target, 'GuestExchangeItems').length > 0),
        60_000,
        () => JSON.stringify(events.map((e) => e.target.get('GuestExchangeItems'))),
      );
      const [component] = await client.query(`SELECT * FROM Msvm_KvpExchangeComponent WHERE SystemName = '${vm.id}'`);
      // Source: the pool, 1 Guest and 2 Auto (intrinsic: what the guest's integration driver fills in).
      expect(items(component!, 'GuestExchangeItems')).toEqual([['GuestState', 'serving', 1]]);
      expect(items(component!, 'GuestIntrinsicExchangeItems')).toEqual(
        expect.arrayContaining([
          ['FullyQualifiedDomainName', 'tsvisor-ic-guest', 2],
          ['OSName', 'tsvisor child SDK', 2],
          ['OSVersion', '0.1', 2],
        ]),
      );
      if (WBEMCLI) {
        // The same items through CIM-XML, as embedded instances a stock WBEM client reads.
        const ei = await run(WBEMCLI, ['-nl', 'ei', `${daemon.url()}:Msvm_KvpExchangeComponent`]);
        expect(ei.code).toBe(0);
        expect(ei.stdout).toContain('GuestIntrinsicExchangeItems');
        expect(ei.stdout).toContain('Msvm_KvpExchangeDataItem');
        expect(ei.stdout).toContain('tsvisor-ic-guest');
      }

      const schema = createVirtualizationSchema();
      const [service] = await client.enumerate('Msvm_VirtualSystemManagementService');
      const servicePath = schema.pathOf(service!);
      const dataItem = (name: string, data: string) => schema.createInstance('Msvm_KvpExchangeDataItem', { Name: name, Data: data, Source: 0 });
      const change = async (method: string, name: string, data: string) => {
        const outcome = await client.invoke(servicePath, method, { TargetSystem: client.systemPath(vm.id), DataItems: [dataItem(name, data)] });
        expect(outcome.returnValue).toBe(4096);
        const job = await client.waitForJob(outcome);
        return [job!.get('JobState'), job!.get('ErrorCode'), job!.get('ErrorDescription')];
      };
      // The guest prints each host item it holds ("kvp0 key=value") when the host writes one.
      let seenOnConsole = '';
      c.onConsole = (data) => {
        seenOnConsole += data.toString('latin1');
      };
      seenOnConsole += Buffer.from((await c.call<{ tail: string }>('console-follow', { vm: 'kvp' })).tail, 'base64').toString('latin1');
      expect(await change('AddKvpItems', 'Owner', 'ops')).toEqual([7, 0, null]);
      await until(
        'kvp0 Owner=ops on the guest console',
        () => seenOnConsole.includes('kvp0 Owner=ops'),
        30_000,
        () => seenOnConsole,
      );
      // Hyper-V's rules: Add refuses a key the guest holds; Modify and Remove need one.
      const again = await change('AddKvpItems', 'Owner', 'other');
      expect(again.slice(0, 2)).toEqual([10, 32768]);
      expect(String(again[2])).toContain('already has a host item named Owner');
      expect(await change('ModifyKvpItems', 'Owner', 'platform')).toEqual([7, 0, null]);
      await until(
        'kvp0 Owner=platform on the guest console',
        () => seenOnConsole.includes('kvp0 Owner=platform'),
        30_000,
        () => seenOnConsole,
      );
      expect(await change('RemoveKvpItems', 'Owner', '')).toEqual([7, 0, null]);
      const gone = await change('RemoveKvpItems', 'Owner', '');
      expect(gone.slice(0, 2)).toEqual([10, 32768]);
    } finally {
      await watch.stop();
      client.close();
      const off = await c.call<{ returnValue: number }>('stop', { vm: 'kvp', turnOff: true }).catch(() => null);
      c.close();
      expect(off?.returnValue).toBe(0);
    }
  }, 180_000);
});
