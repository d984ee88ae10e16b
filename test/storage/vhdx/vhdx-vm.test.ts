/**
 * A real VM on a VHDX that qemu-img made and qemu-io filled: the storage-synthetic guest attaches
 * it through storvsc (the worker's device thread opens it with openDisk, as a VM start does),
 * writes its pattern, and reads 1024 random 4 KiB blocks, whose checksum must equal the one
 * computed over what `qemu-img convert -O raw` reads. Afterwards qemu-img finds the file
 * consistent and reads the guest's write from it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../../hypervisor/hypervisor.ts';
import { DeviceThread } from '../../../root-partition/vmwp/device-thread.ts';
import { buildGuests, guestImagePath } from '../../../scripts/build-guests.ts';

const MiB = 1024 * 1024;
const qemu = spawnSync('sh', ['-c', 'command -v qemu-img && command -v qemu-io']).status === 0;
// What the guest (child-sdk/guests/storage-synthetic) does, replayed from the expected bytes.
const PATTERN_LBA = 8;
const PATTERN_BYTES = 256 * 512;
const RANDOM_READS = 1024;
const RANDOM_SEED = 12345;

function fnv(bytes: Uint8Array, h = 2166136261): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
  return h >>> 0;
}
function guestPattern(): Uint8Array {
  const b = new Uint8Array(PATTERN_BYTES);
  for (let o = 0; o < b.length; o++) b[o] = ((o >> 9) * 37 + (o & 511) * 11 + 3) & 0xff;
  return b;
}
function randomReadChecksum(disk: Uint8Array): number {
  const blocks = disk.length / 4096;
  let x = RANDOM_SEED,
    sum = 0;
  for (let i = 0; i < RANDOM_READS; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const b = (x >>> 8) % blocks;
    sum = (sum + fnv(disk.subarray(b * 4096, b * 4096 + 4096))) >>> 0;
  }
  return sum;
}
function qemuRaw(p: string): Uint8Array {
  const out = `${p}.raw`;
  const r = spawnSync('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', p, out], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const b = new Uint8Array(fs.readFileSync(out));
  fs.rmSync(out);
  return b;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe.skipIf(!qemu)('a VM on a qemu-img VHDX', () => {
  it('reads through storvsc exactly what qemu-io wrote, and its writes leave a file qemu-img checks clean', async () => {
    await buildGuests(['storage-synthetic']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-vhdx-vm-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'qemu.vhdx');
    expect(spawnSync('qemu-img', ['create', '-f', 'vhdx', '-o', 'block_size=1M', file, '16M']).status).toBe(0);
    // Data in most blocks (several patterns, one offset block), ZERO blocks left elsewhere.
    const fills = ['write -P 0x11 0 3M', 'write -P 0x22 4M 1M', 'write -P 0x33 6M 2560k', 'write -P 0x44 12M 64k', 'write -P 0x55 15M 1M'];
    const w = spawnSync('qemu-io', ['-f', 'vhdx', ...fills.flatMap((c) => ['-c', c]), file], { encoding: 'utf8' });
    expect(w.status, w.stderr).toBe(0);
    const expected = qemuRaw(file);
    expected.set(guestPattern(), PATTERN_LBA * 512);

    const hv = new Hypervisor();
    cleanup.push(() => hv.shutdown());
    const p = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1 });
    p.initialize();
    p.loadImage(fs.readFileSync(guestImagePath('storage-synthetic')));
    let out = '';
    const dt = await DeviceThread.start(p, {
      devices: { scsi: [{ instanceId: '5f3e1c2a-0000-4000-8000-000000000001', disks: [{ path: file }] }] },
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
    expect(v.attach, out).toBe(0);
    expect(v.sectors).toBe((16 * MiB) / 512);
    expect(v.write_status).toBe(0);
    expect(v.readback_ok).toBe(1);
    expect(v.rand_errors).toBe(0);
    expect(v.rand_checksum).toBe(randomReadChecksum(expected));

    const check = spawnSync('qemu-img', ['check', file], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const after = qemuRaw(file);
    expect(Buffer.from(after).equals(Buffer.from(expected))).toBe(true);
  });
});
