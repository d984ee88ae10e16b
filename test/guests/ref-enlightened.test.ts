/**
 * The enlightened reference guest against the real host side: StorVsp serving raw files as SCSI
 * LUNs and the four integration services on a VMBus host, COM1 on the emulated platform. Commands
 * go into COM1's receiver; the host files, the guest's answers and the IC state are checked.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ShellRig, readSector, tempDisk, writeSector } from './shell-rig.ts';

const SECTORS = 8192; // 4 MiB
let rig: ShellRig | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await rig?.dispose();
  rig = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function disk(name = 'disk.raw'): string {
  const { dir, file } = tempDisk(SECTORS, name);
  dirs.push(dir);
  return file;
}

describe('ref-enlightened: the serial-console shell over storvsc and the integration services', () => {
  it("lists its LUNs and the VMBus offers, writes a sector the host file holds, reads the host's data", async () => {
    const d0 = disk(),
      d1 = disk();
    writeSector(d1, 3, Buffer.from('written by the host'));
    rig = await ShellRig.boot({ image: 'ref-enlightened', scsi: [d0, d1], integrationServices: true });
    await rig.ready();
    expect(rig.console()).toContain('hypervisor: Microsoft Hv, hypercalls and SynIC on, VMBus connected\n');
    expect(rig.console()).toContain('integration services: 4 of 4 open');
    expect(rig.console()).toContain('2 disks attached');

    const devices = await rig.command('devices');
    expect(devices).toContain('disk 0: scsi 0:0:0 (storvsc on VMBus relid 1), 8192 sectors (4 MiB)\n');
    expect(devices).toContain('disk 1: scsi 0:0:1 (storvsc on VMBus relid 1), 8192 sectors (4 MiB)\n');
    expect(devices).toMatch(/vmbus: version \d+\.\d+, 5 offers\n/);
    expect(devices).toContain('relid 1: scsi (storvsc), type {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f} instance {7c3d3a2e-5b1f-4c11-9d0e-0a0b0c0d0e01}, open\n');
    for (const ic of [
      'heartbeat, type {57164f39-9115-4e78-ab55-382f3bd5422d}',
      'shutdown, type {0e0b6031-5213-4934-818b-38d90ced39db}',
      'time sync, type {9527e630-d0ae-497b-adce-e80ab0175caf}',
      'kvp, type {a9a0f4e7-5a45-4d96-b827-8a841e8c03e6}',
    ]) {
      expect(devices).toContain(ic);
    }

    expect(await rig.command('write 0 42 synthetic path')).toBe('disk 0 lba 42: wrote 14 bytes (one sector, zero-padded) and flushed\n');
    const expected = Buffer.alloc(512);
    expected.write('synthetic path', 'latin1');
    expect(readSector(d0, 42)).toEqual(expected);
    expect(readSector(d1, 42)).toEqual(Buffer.alloc(512)); // the other LUN is untouched
    expect(await rig.command('read 0 42')).toContain('00000000  73 79 6e 74 68 65 74 69  63 20 70 61 74 68 00 00  |synthetic path..|\n');
    expect(await rig.command('read 1 3')).toContain('|written by the h|');

    const counters = await rig.command('counters');
    expect(counters).toMatch(/shell: commands=5 errors=0 reads=2 writes=1 flushes=1 sectors_read=2 sectors_written=1/);
    expect(counters).toMatch(/storvsc: submitted=(\d+) completed=\1 /);
    expect(counters).toMatch(/signals sent: storvsc=[1-9]\d* ic=\d+ total=[1-9]/);
    expect(counters).toMatch(/interrupts: com1=[1-9]\d* vmbus_sint2=[1-9]/);
    expect(rig.errors).toEqual([]);
  });

  it('answers bad input with one error line, reports reference time, and serves the integration services meanwhile', async () => {
    rig = await ShellRig.boot({ image: 'ref-enlightened', scsi: [disk()], integrationServices: true });
    await rig.ready();
    expect(await rig.command('dance')).toBe("error: unknown command 'dance' (try help)\n");
    expect(await rig.command('write 0 0x1g x')).toBe("error: lba '0x1g' is not a number\n");
    expect(await rig.command('read 1 0')).toBe("error: no disk '1' (see devices)\n");
    expect(await rig.command('uptime')).toMatch(/^uptime: \d+\.\d{3} s \(partition reference time\)/);
    expect(await rig.command('echo still here')).toBe('still here\n');
    // KVP: the guest's items reach the host while the shell is idle.
    await rig.waitUntil(() => rig!.ic!.kvp.ready, 'KVP negotiated');
    expect(await rig.ic!.refreshKvpGuestItems()).toBe(true);
    expect(rig.ic!.kvpGuestItems().get('Shell')).toBe('tsvisor> on COM1');
    expect(rig.ic!.kvpGuestIntrinsicItems().get('FullyQualifiedDomainName')).toBe('tsvisor-ref-enlightened');
    expect(await rig.command('counters')).toMatch(/ic: heartbeats=\d+ time_samples=\d+ kvp_requests=[1-9]/);
  });

  it('halts cleanly on a shutdown request from the host', async () => {
    rig = await ShellRig.boot({ image: 'ref-enlightened', scsi: [disk()], integrationServices: true });
    await rig.ready();
    await rig.waitUntil(() => rig!.ic!.shutdown.ready, 'the shutdown service negotiated');
    const r = await rig.ic!.initiateShutdown({ timeoutMs: 10_000, reason: 'test', whenOff: () => rig!.partition.whenIdle() });
    expect(r.outcome).toBe('shut-down');
    expect(rig.console()).toContain('shutdown requested by the host: halting\n');
    expect(rig.partition.vpExit(0)).toEqual({ reason: 'halted' });
  });

  it('halts on the shutdown command', async () => {
    rig = await ShellRig.boot({ image: 'ref-enlightened', scsi: [disk()], integrationServices: true });
    await rig.ready();
    rig.type('shutdown\r');
    await rig.waitForHalt();
    expect(rig.console().endsWith('tsvisor> halting\n')).toBe(true);
    expect(rig.partition.vpExit(0)).toEqual({ reason: 'halted' });
  });

  it('runs the shell without VMBus when the host offers none', async () => {
    rig = await ShellRig.boot({ image: 'ref-enlightened' });
    await rig.ready();
    expect(rig.console()).toContain('vmbus: no answer to INITIATE_CONTACT');
    expect(await rig.command('devices')).toContain('disks: none\nvmbus: not connected');
    expect(await rig.command('uptime')).toMatch(/^uptime: \d+\.\d{3} s \(partition reference time\)\n$/);
    rig.type('halt\r');
    await rig.waitForHalt();
  });
});
