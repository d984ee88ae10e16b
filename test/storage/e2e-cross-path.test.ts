/**
 * The two storage paths agree on one image: a pattern written through emulated IDE (ATA DMA) reads
 * back through synthetic SCSI (storvsc) and the other way round, and the host file holds both.
 * The image is attached twice, as the IDE primary master and as SCSI LUN 0, on the device thread.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { DeviceThread } from '../../root-partition/vmwp/device-thread.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';

const SECTORS = 128;

function fnv(bytes: Uint8Array): number {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

function pattern(seed: number): Uint8Array {
  const b = new Uint8Array(SECTORS * 512);
  for (let i = 0; i < b.length; i++) b[i] = ((i >> 9) * 31 + (i & 511) * 7 + seed) & 0xff;
  return b;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('cross-path integrity on one image', () => {
  it('reads through storvsc what ATA DMA wrote, and through ATA what storvsc wrote; the file has both', async () => {
    await buildGuests(['storage-cross']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-cross-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'shared.raw');
    const initial = randomFillSync(new Uint8Array(4 << 20));
    fs.writeFileSync(file, initial);

    const hv = new Hypervisor();
    cleanup.push(() => hv.shutdown());
    const p = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1 });
    p.initialize();
    p.loadImage(fs.readFileSync(guestImagePath('storage-cross')));
    let out = '';
    const dt = await DeviceThread.start(p, {
      devices: { ide: [{ path: file }], scsi: [{ instanceId: '7a3e1c2a-0000-4000-8000-0000000000c5', disks: [{ path: file }] }] },
      console: (b) => (out += Buffer.from(b).toString('latin1')),
    });
    cleanup.push(async () => {
      await dt.stop();
    });
    p.start();
    await p.whenIdle();
    await dt.stop();
    const v = Object.fromEntries(
      out
        .split('\n')
        .filter((l) => /^\w+=\d+$/.test(l))
        .map((l) => [l.split('=')[0], Number(l.split('=')[1])]),
    );

    expect(p.vpExit(0)).toEqual({ reason: 'halted' });
    expect(v.ata_attach).toBe(0);
    expect(v.storvsc_open).toBe(1);
    expect(v.storvsc_attach).toBe(0);
    expect(v.same_capacity).toBe(1);
    for (const dir of ['ata_to_scsi', 'scsi_to_ata']) {
      expect([v[`${dir}_write`], v[`${dir}_flush`], v[`${dir}_read`]]).toEqual([0, 0, 0]);
      expect(v[`${dir}_read_back`]).toBe(v[`${dir}_written`]);
    }
    expect(v.unloaded).toBe(1);

    // Byte comparisons with Buffer.equals: element-wise deep equality of megabytes is slow.
    const disk = fs.readFileSync(file);
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
    expect(same(disk.subarray(64 * 512, (64 + SECTORS) * 512), pattern(11))).toBe(true);
    expect(same(disk.subarray(512 * 512, (512 + SECTORS) * 512), pattern(97))).toBe(true);
    expect(fnv(pattern(11))).toBe(v.ata_to_scsi_written);
    // Everything outside the two written ranges is as the host left it.
    expect(same(disk.subarray(0, 64 * 512), initial.subarray(0, 64 * 512))).toBe(true);
    expect(same(disk.subarray((64 + SECTORS) * 512, 512 * 512), initial.subarray((64 + SECTORS) * 512, 512 * 512))).toBe(true);
    expect(same(disk.subarray((512 + SECTORS) * 512), initial.subarray((512 + SECTORS) * 512))).toBe(true);
  });
});
