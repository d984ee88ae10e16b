import { describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import * as P from '../../abi/hv-cpuid.ts';
import { Hypervisor, ROOT_PARTITION_ID } from '../../hypervisor/hypervisor.ts';
import { PartitionProperty } from '../../hypervisor/partition.ts';
import { loadGuestImage } from '../../hypervisor/image-loader.ts';

describe('partitions', () => {
  it('allocates ids from 2 upward (1 is the root), walks children in order, and deletes', async () => {
    const hv = new Hypervisor();
    const a = hv.createPartition({ memoryBytes: 1 << 20, vpCount: 1 });
    const b = hv.createPartition({ memoryBytes: 1 << 20, vpCount: 2 });
    expect([a.id, b.id]).toEqual([ROOT_PARTITION_ID + 1, ROOT_PARTITION_ID + 2]);
    expect(hv.nextChild(0)).toBe(a.id);
    expect(hv.nextChild(a.id)).toBe(b.id);
    expect(hv.nextChild(b.id)).toBe(0);
    expect(() => hv.createPartition({ id: a.id, memoryBytes: 1 << 20, vpCount: 1 })).toThrow(/in use/);
    expect(await hv.deletePartition(a.id)).toBe(HvStatus.Success);
    expect(await hv.deletePartition(a.id)).toBe(HvStatus.InvalidPartitionId);
    expect(a.state).toBe('deleted');
    await hv.shutdown();
  });

  it('treats PrivilegeFlags as an early property and never grants CreatePartitions to a child', () => {
    const hv = new Hypervisor();
    const p = hv.createPartition({ memoryBytes: 1 << 20, vpCount: 1 });
    const all = (BigInt(P.HV_CREATE_PARTITIONS | P.HV_POST_MESSAGES) << 32n) | 0x7fn;
    expect(p.setProperty(PartitionProperty.PrivilegeFlags, all)).toBe(HvStatus.Success);
    expect(p.getProperty(PartitionProperty.PrivilegeFlags).value).toBe((BigInt(P.HV_POST_MESSAGES) << 32n) | 0x7fn);
    expect(p.getProperty(PartitionProperty.ReferenceTime).status).toBe(HvStatus.InvalidPartitionState);
    expect(p.initialize()).toBe(HvStatus.Success);
    expect(p.initialize()).toBe(HvStatus.InvalidPartitionState);
    expect(p.setProperty(PartitionProperty.PrivilegeFlags, 0n)).toBe(HvStatus.InvalidPartitionState);
    expect(p.getProperty(0x12345).status).toBe(HvStatus.UnknownProperty);
    expect(p.setProperty(PartitionProperty.GuestOsId, 1n)).toBe(HvStatus.InvalidParameter);
  });

  it('freezes the reference time while TimeFreeze is set', async () => {
    const p = new Hypervisor().createPartition({ memoryBytes: 1 << 20, vpCount: 1 });
    p.initialize();
    await new Promise((r) => setTimeout(r, 5));
    expect(p.setProperty(PartitionProperty.TimeFreeze, 1n)).toBe(HvStatus.Success);
    const t = p.getProperty(PartitionProperty.ReferenceTime).value;
    expect(t).toBeGreaterThan(0n);
    await new Promise((r) => setTimeout(r, 5));
    expect(p.getProperty(PartitionProperty.ReferenceTime).value).toBe(t);
    expect(p.setProperty(PartitionProperty.TimeFreeze, 0n)).toBe(HvStatus.Success);
    await new Promise((r) => setTimeout(r, 5));
    expect(p.getProperty(PartitionProperty.ReferenceTime).value).toBeGreaterThan(t);
    expect(p.setProperty(PartitionProperty.TimeFreeze, 2n)).toBe(HvStatus.PropertyValueOutOfRange);
  });

  it('rejects bad memory sizes and VP counts with clear errors', () => {
    const hv = new Hypervisor();
    expect(() => hv.createPartition({ memoryBytes: 1000, vpCount: 1 })).toThrow(/multiple of 64 KiB/);
    expect(() => hv.createPartition({ memoryBytes: 1 << 20, vpCount: 0 })).toThrow(/VP count/);
    expect(() => hv.createPartition({ memoryBytes: 1 << 20, vpCount: 65 })).toThrow(/VP count/);
  });
});

describe('guest image loader', () => {
  it('refuses what is not a guest image, with the reason', () => {
    expect(() => loadGuestImage(new Uint8Array([1, 2, 3]))).toThrow(/missing \\0asm magic/);
    expect(() => loadGuestImage(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]))).toThrow(/unsupported version/);
    // A module with no imports at all: no shared memory import.
    expect(() => loadGuestImage(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toThrow(/does not import env.memory/);
    // A section whose size runs past the end of the file.
    expect(() => loadGuestImage(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 0x7f]))).toThrow(/overruns/);
  });

  it('refuses an image that does not fit the partition, and a data segment over the boot page', async () => {
    const { buildGuests, guestImagePath } = await import('../../scripts/build-guests.ts');
    const { readFileSync } = await import('node:fs');
    await buildGuests(['hello']);
    const image = readFileSync(guestImagePath('hello'));
    const hv = new Hypervisor();
    const small = hv.createPartition({ memoryBytes: 64 << 10, vpCount: 1 });
    small.initialize();
    expect(() => small.loadImage(image)).toThrow(/needs \d+ KiB of memory/);
    const ok = hv.createPartition({ memoryBytes: 8 << 20, vpCount: 1 });
    ok.initialize();
    const img = ok.loadImage(image, 'a b c');
    expect(img.exports.map((e) => e.name)).toEqual(expect.arrayContaining(['boot', 'interrupt']));
    expect(img.imports.every((i) => i.module === 'hv' || (i.module === 'env' && i.name === 'memory'))).toBe(true);
    expect(ok.mem.readU32(0x1000)).toBe(0x42565354);
    expect(ok.mem.readU32(0x1000 + 24)).toBe(5);
    expect(Buffer.from(ok.mem.read(0x1000 + 256, 5)).toString()).toBe('a b c');
  });
});
