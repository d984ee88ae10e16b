import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { DeviceThread } from '../../root-partition/vmwp/device-thread.ts';
import type { VmDeviceConfig } from '../../root-partition/vmwp/device-config.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function run(image: string, cmdline: string, devices: VmDeviceConfig, spinIterations = 2000) {
  await buildGuests([image]);
  const hv = new Hypervisor();
  cleanup.push(() => hv.shutdown());
  const p = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1, waitPolicy: { spinIterations } });
  p.initialize();
  p.loadImage(fs.readFileSync(guestImagePath(image)), cmdline);
  let out = '';
  const logs: string[] = [];
  const dt = await DeviceThread.start(p, { devices, console: (b) => (out += Buffer.from(b).toString('latin1')), log: (m) => logs.push(m) });
  cleanup.push(async () => {
    await dt.stop();
  });
  p.start();
  await p.whenIdle();
  const stats = await dt.stop();
  const values = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => /^\w+=\d+$/.test(l))
      .map((l) => [l.split('=')[0], Number(l.split('=')[1])]),
  );
  return { p, out, stats, values, logs };
}

describe('the device thread', () => {
  it("serves a guest's console and timer-driven boot from its own thread", async () => {
    const { p, out, stats } = await run('hello', '', {});
    expect(out).toContain('5 timer interrupts at 10 ms');
    expect(p.vpExit(0)).toEqual({ reason: 'halted' });
    expect(stats!.served).toBeGreaterThan(0);
    expect(stats!.io.com1.stringOps).toBeGreaterThan(0);
  });

  it('hosts VMBus and storvsp: the synthetic storage guest reads back what it wrote to a raw file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-dt-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'disk.raw');
    fs.writeFileSync(file, randomFillSync(new Uint8Array(8 << 20)));
    const { p, values, stats } = await run('storage-synthetic', '', {
      scsi: [{ instanceId: '5f3e1c2a-0000-4000-8000-000000000001', disks: [{ path: file }] }],
    });
    expect(p.vpExit(0)?.reason).not.toBe('fault');
    expect(values.storvsc_open).toBe(1);
    expect(values.readback_ok).toBe(1);
    expect(values.rand_errors).toBe(0);
    expect(stats!.vmbus!.channelsOpened).toBeGreaterThanOrEqual(1);
    expect(stats!.storvsp[0].requests).toBeGreaterThan(1000);
  });

  it('refuses to start on a disk that does not exist, naming it', async () => {
    const hv = new Hypervisor();
    cleanup.push(() => hv.shutdown());
    const p = hv.createPartition({ memoryBytes: 8 << 20, vpCount: 1 });
    p.initialize();
    await expect(DeviceThread.start(p, { devices: { ide: [{ path: '/nonexistent/disk.raw' }] } })).rejects.toThrow(/nonexistent\/disk.raw/);
  });
});
