/**
 * Both reference images on the VM worker's device thread, as VMMS runs them: the devices built
 * from a serialisable configuration on their own thread, console output posted back, typed input
 * posted in (DeviceThread.consoleInput), and the guest shut down through the thread's request path.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import type { VmDeviceConfig } from '../../root-partition/vmwp/device-config.ts';
import { DeviceThread } from '../../root-partition/vmwp/device-thread.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { PROMPT, readSector, tempDisk } from './shell-rig.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Console {
  p: Partition;
  dt: DeviceThread;
  command(line: string): Promise<string>;
  out(): string;
}

async function boot(image: string, devices: VmDeviceConfig): Promise<Console> {
  await buildGuests([image]);
  const hv = new Hypervisor();
  cleanup.push(() => hv.shutdown());
  const p = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 } });
  p.initialize();
  p.loadImage(fs.readFileSync(guestImagePath(image)), '');
  let out = '';
  const waiters: (() => void)[] = [];
  const dt = await DeviceThread.start(p, {
    devices,
    console: (b) => {
      out += Buffer.from(b).toString('latin1');
      for (const w of waiters.splice(0)) w();
    },
  });
  cleanup.push(async () => {
    await p.stop();
    await dt.stop();
  });
  p.start();
  const until = (pred: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; console:\n${out}`)), 15_000);
      const check = () => {
        if (pred()) {
          clearTimeout(t);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  await until(() => out.includes(PROMPT), 'the first prompt');
  return {
    p,
    dt,
    out: () => out,
    command: async (line) => {
      const start = out.length;
      dt.consoleInput(Buffer.from(`${line}\r`, 'latin1'));
      await until(() => out.indexOf(PROMPT, start) >= 0, `the prompt after "${line}"`);
      return out.slice(start, out.indexOf(PROMPT, start));
    },
  };
}

function disk(): string {
  const { dir, file } = tempDisk(8192);
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return file;
}

describe('the reference images on the device thread', () => {
  it('ref-emulated: IDE disk and COM1 input served from the device thread', async () => {
    const file = disk();
    const c = await boot('ref-emulated', { ide: [{ path: file }] });
    expect(await c.command('devices')).toContain('disk 0: ide primary master (ATA, bus-master DMA, LBA48), 8192 sectors (4 MiB)');
    expect(await c.command('write 0 9 through the device thread')).toContain('wrote 25 bytes');
    const sector = Buffer.alloc(512);
    sector.write('through the device thread', 'latin1');
    expect(readSector(file, 9)).toEqual(sector);
    expect(await c.command('nope')).toBe("error: unknown command 'nope' (try help)\n");
    c.dt.consoleInput(Buffer.from('shutdown\r'));
    await c.p.whenIdle();
    expect(c.p.vpExit(0)).toEqual({ reason: 'halted' });
  });

  it('ref-enlightened: storvsc and the integration services on the device thread; a host shutdown request halts it', async () => {
    const file = disk();
    const c = await boot('ref-enlightened', {
      scsi: [{ instanceId: '7c3d3a2e-5b1f-4c11-9d0e-0a0b0c0d0e02', disks: [{ path: file }] }],
      integrationServices: { heartbeat: true, shutdown: true, timeSync: true, kvp: true },
    });
    expect(c.out()).toContain('integration services: 4 of 4 open');
    expect(await c.command('write 0 3 synthetic')).toContain('wrote 9 bytes');
    expect(readSector(file, 3).subarray(0, 10)).toEqual(Buffer.from('synthetic\0', 'latin1'));
    expect(await c.command('read 0 3')).toContain('|synthetic.......|');
    // The shutdown service negotiates once the guest serves it; ask until it is there.
    let answer = await c.dt.request({ op: 'shutdown', force: false, reason: 'test', timeoutMs: 5000 });
    for (let i = 0; i < 100 && answer.outcome === 'unavailable'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      answer = await c.dt.request({ op: 'shutdown', force: false, reason: 'test', timeoutMs: 5000 });
    }
    expect(answer).toEqual({ outcome: 'accepted' });
    await c.p.whenIdle();
    expect(c.out()).toContain('shutdown requested by the host: halting\n');
    expect(c.p.vpExit(0)).toEqual({ reason: 'halted' });
  });
});
