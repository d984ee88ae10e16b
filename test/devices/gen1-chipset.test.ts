import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { Gen1Chipset } from '../../root-partition/devices/gen1-chipset.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { pattern, expectSameBytes } from './ide-rig.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('Gen1Chipset', () => {
  it('a datasheet driver end to end: PCI probe, PIC init, READ DMA on the secondary slave, IRQ 15 → vector 0x77', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-gen1-'));
    const disk = RawDisk.create(path.join(dir, 'd.raw'), { sizeBytes: 1024 * 512 });
    const data = pattern(2048, 5);
    disk.write(100, data);
    const memory = new GuestMemory(1024 * 1024);
    const out: number[] = [];
    const chip = new Gen1Chipset({ memory, ide: [undefined, undefined, undefined, { backend: disk }], com1Sink: (b) => out.push(...b) });
    const { bus, pic } = chip;
    let wakes = 0;
    pic.onInterruptRequest = () => wakes++;

    // PCI: find 8086:7111 at 00:07.1 and read BAR4.
    bus.write(0xcf8, 4, 0x80003900);
    expect(bus.read(0xcfc, 4)).toBe(0x71118086);
    bus.write(0xcf8, 4, 0x80003920);
    const bmide = bus.read(0xcfc, 4) & 0xfff0;
    expect(bmide).toBe(0xc000);

    // PIC as a PC BIOS leaves it.
    for (const [p, v] of [
      [0x20, 0x11],
      [0x21, 0x08],
      [0x21, 0x04],
      [0x21, 0x01],
      [0xa0, 0x11],
      [0xa1, 0x70],
      [0xa1, 0x02],
      [0xa1, 0x01],
      [0x21, 0x00],
      [0xa1, 0x00],
    ] as const)
      bus.write(p, 1, v);

    // READ DMA of 4 sectors from LBA 100 on the secondary slave (0x170, BMIDE +8).
    memory.writeU32(0x8000, 0x20000);
    memory.writeU32(0x8004, 0x80000000 | 2048);
    bus.write(bmide + 8 + 4, 4, 0x8000);
    bus.write(bmide + 8, 1, 0x08);
    bus.write(0x176, 1, 0xf0);
    bus.write(0x172, 1, 4);
    bus.write(0x173, 1, 100);
    bus.write(0x174, 1, 0);
    bus.write(0x175, 1, 0);
    bus.write(0x177, 1, 0xc8);
    bus.write(bmide + 8, 1, 0x09);
    expect(wakes).toBe(1);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x77);
    expect(bus.read(bmide + 10, 1) & 0x07).toBe(0x04);
    bus.write(bmide + 8, 1, 0);
    expect(bus.read(0x177, 1)).toBe(0x50);
    bus.write(0xa0, 1, 0x20);
    bus.write(0x20, 1, 0x20);
    expectSameBytes(memory.read(0x20000, 2048), data);

    // The console on COM1.
    bus.write(0x3f8, 1, 0x4f);
    expect(out).toEqual([0x4f]);
    chip.reset();
    expect(bus.read(0x21, 1)).toBe(0);
    disk.close();
  });
});
