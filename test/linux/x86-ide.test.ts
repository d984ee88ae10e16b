/**
 * The x86 VM's IDE controller and PCI bus on a real v86 (created, not started): ports reached the
 * way v86 dispatches the guest's IN/OUT (its port table), PCI configuration through our bus, and
 * bus-master DMA into v86's RAM with hostile PRD tables. Needs the Linux guest's SeaBIOS (v86
 * will not start without firmware); skips with the build step's reason when it is not built.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X86Vp } from '../../hypervisor/x86/x86-vp.ts';
import { BmStatus } from '../../root-partition/devices/ide/ata-protocol.ts';
import { loadLinuxGuest } from '../../root-partition/x86/linux-guest-files.ts';
import { X86Ide } from '../../root-partition/x86/x86-ide.ts';
import { createVhdx } from '../../root-partition/storage/vhdx/vhdx-create.ts';
import { linuxGuestUnavailable } from './linux-guest-available.ts';

const unavailable = linuxGuestUnavailable();
const RAM = 32 << 20;
const DISK = 1 << 20;
const BMIDE = 0xc040;
const PRD = 0x10000;
const BUF = 0x20000;
/** CONFIG_ADDRESS of 00:07.1 (the PIIX4 IDE), register `reg`. */
const cfg = (reg: number) => (0x80000000 | (((7 << 3) | 1) << 8) | reg) >>> 0;

describe.skipIf(unavailable !== undefined)('x86 VM: our PIIX4 IDE and PCI bus in place of v86’s', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvisor-x86-ide-'));
  const diskFile = join(dir, 'disk.raw');
  const content = randomFillSync(new Uint8Array(DISK));
  writeFileSync(diskFile, content);
  const vhdxFile = join(dir, 'slave.vhdx');
  createVhdx(vhdxFile, { type: 'dynamic', sizeBytes: 4 << 20, blockSizeBytes: 1 << 20 });
  let vp: X86Vp;
  let ide: X86Ide;
  const logs: string[] = [];

  const out = (port: number, size: 1 | 2 | 4, v: number) => {
    const e = vp.cpu.io.ports[port]!;
    if (size === 1) e.write8(v);
    else if (size === 2) e.write16(v);
    else e.write32(v);
  };
  const inp = (port: number, size: 1 | 2 | 4) => {
    const e = vp.cpu.io.ports[port]!;
    return size === 1 ? e.read8() : size === 2 ? e.read16() : e.read32() >>> 0;
  };
  const cfgWrite = (reg: number, size: 1 | 2 | 4, v: number) => {
    out(0xcf8, 4, cfg(reg & ~3));
    out(0xcfc + (reg & 3), size, v);
  };
  const cfgRead = (reg: number, size: 1 | 2 | 4, address = cfg(reg & ~3)) => {
    out(0xcf8, 4, address);
    return inp(0xcfc + (reg & 3), size);
  };
  const ram = () => vp.guestMemory;
  /** A PRD table at PRD: [gpa, bytes, eot] entries. */
  const prd = (entries: [number, number, boolean][]) => {
    const dv = new DataView(ram().buffer, ram().byteOffset + PRD, entries.length * 8);
    entries.forEach(([gpa, bytes, eot], i) => {
      dv.setUint32(i * 8, gpa, true);
      dv.setUint16(i * 8 + 4, bytes & 0xffff, true);
      dv.setUint16(i * 8 + 6, eot ? 0x8000 : 0, true);
    });
  };
  /** READ DMA (0xC8) or WRITE DMA (0xCA) of `count` sectors at `lba` on the primary master, through the bus master. */
  const dma = (cmd: 0xc8 | 0xca, lba: number, count: number, slave = false) => {
    out(0x1f6, 1, (slave ? 0xf0 : 0xe0) | ((lba >> 24) & 0xf));
    out(0x1f2, 1, count);
    out(0x1f3, 1, lba & 0xff);
    out(0x1f4, 1, (lba >> 8) & 0xff);
    out(0x1f5, 1, (lba >> 16) & 0xff);
    out(BMIDE + 2, 1, BmStatus.Interrupt | BmStatus.Error); // clear both
    out(BMIDE + 4, 4, PRD);
    out(0x1f7, 1, cmd);
    out(BMIDE, 1, cmd === 0xc8 ? 0x09 : 0x01);
    const bm = inp(BMIDE + 2, 1);
    out(BMIDE, 1, 0);
    return { bm, status: inp(0x1f7, 1) };
  };

  beforeAll(async () => {
    const m = (loadLinuxGuest() as { manifest: { bios: string; vgaBios: string; kernel: string } }).manifest;
    vp = await X86Vp.create({ memoryBytes: RAM, bios: readFileSync(m.bios), vgaBios: readFileSync(m.vgaBios), kernel: readFileSync(m.kernel), cmdline: '' });
    ide = new X86Ide(vp, [diskFile, vhdxFile], (l) => logs.push(l));
  }, 60_000);

  afterAll(async () => {
    ide?.close();
    await vp?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers PCI configuration itself: our PIIX4 IDE at 00:07.1, v86’s other functions kept, v86’s IDE gone', () => {
    expect(cfgRead(0, 4)).toBe(0x71118086);
    expect(cfgRead(8, 4) >>> 8).toBe(0x010180); // IDE, both channels in compatibility mode, bus master
    expect(cfgRead(0, 4, 0x80000000)).toBe(0x12378086); // v86's 82441FX host bridge
    expect(cfgRead(0, 4, 0x80000000 | (7 << 11))).toBe(0x71138086); // v86's PIIX4 power management, 00:07.0
    expect(cfgRead(0, 4, 0x80000000 | (0x1e << 11))).toBe(0xffffffff); // v86's own IDE (00:1e.0) is not on the bus
    // SeaBIOS sizes I/O BARs as 32-bit values (as QEMU's answer them): BAR4 keeps bits 31:16 written.
    cfgWrite(0x20, 4, 0xffffffff);
    expect(cfgRead(0x20, 4)).toBe(0xfffffff1);
    cfgWrite(0x20, 4, BMIDE);
    expect(cfgRead(0x20, 4)).toBe(BMIDE | 1);
  });

  it('decodes its ports only once the firmware enables them, and gives them back to v86 when it moves the BAR', () => {
    expect(vp.ports.owner(0x1f0)).toBeUndefined();
    cfgWrite(0x40, 2, 0x8000);
    cfgWrite(0x42, 2, 0x8000);
    cfgWrite(0x04, 2, 0x0005); // I/O space, bus master
    expect(vp.ports.owner(0x1f7)).toBe('ide-primary');
    expect(vp.ports.owner(0x376)).toBe('ide-secondary');
    expect(vp.ports.owner(BMIDE)).toBe('piix4-bmide');
    const v86Entry = vp.cpu.io.ports[0xd000];
    cfgWrite(0x20, 4, 0xd000);
    expect(vp.ports.owner(BMIDE)).toBeUndefined();
    expect(vp.ports.owner(0xd000)).toBe('piix4-bmide');
    cfgWrite(0x20, 4, BMIDE);
    expect(vp.cpu.io.ports[0xd000]).toBe(v86Entry); // v86's entry is back
    expect(ide.status().bmideBase).toBe(BMIDE);
  });

  it('reads the disk into v86’s RAM and writes RAM to the host file by bus-master DMA, with IRQ 14', () => {
    prd([[BUF, 1024, true]]);
    const before = ide.status();
    const r = dma(0xc8, 4, 2);
    expect(r.bm & (BmStatus.Interrupt | BmStatus.Error)).toBe(BmStatus.Interrupt);
    expect(r.status & 0x01).toBe(0); // no ERR
    expect(Buffer.from(ram().subarray(BUF, BUF + 1024)).equals(Buffer.from(content.subarray(4 * 512, 6 * 512)))).toBe(true);
    const pattern = randomFillSync(new Uint8Array(1024));
    ram().set(pattern, BUF);
    expect(dma(0xca, 100, 2).bm & BmStatus.Error).toBe(0);
    expect(Buffer.from(readFileSync(diskFile).subarray(100 * 512, 102 * 512)).equals(Buffer.from(pattern))).toBe(true);
    const after = ide.status();
    expect(after.sectors - before.sectors).toBe(4);
    expect(after.interrupts - before.interrupts).toBe(2);
    expect(after.faults).toBe(0);
  });

  it('serves a dynamic VHDX through the same block backend (primary slave): written by DMA, read back by DMA', () => {
    const pattern = randomFillSync(new Uint8Array(1024));
    ram().set(pattern, BUF);
    prd([[BUF, 1024, true]]);
    const sizeBefore = readFileSync(vhdxFile).length;
    expect(dma(0xca, 10, 2, true).bm & BmStatus.Error).toBe(0);
    ram().fill(0, BUF, BUF + 1024);
    expect(dma(0xc8, 10, 2, true).bm & BmStatus.Error).toBe(0);
    expect(Buffer.from(ram().subarray(BUF, BUF + 1024)).equals(Buffer.from(pattern))).toBe(true);
    expect(readFileSync(vhdxFile).length).toBeGreaterThan(sizeBefore); // a block was allocated in the file
    expect(dma(0xc8, 12, 1, true).bm & BmStatus.Error).toBe(0);
    expect(
      ram()
        .subarray(BUF, BUF + 512)
        .every((b) => b === 0),
    ).toBe(true); // never written: zeros
  });

  it('refuses hostile PRD tables with an error the guest sees, moving no data and holding nothing', () => {
    const guard = randomFillSync(new Uint8Array(4096));
    // [what, PRD entries, sectors]: 8192 entries of 2 bytes fill the table to its 64 KiB boundary and cover 16 KiB of a 32 KiB transfer.
    const cases: [string, () => void, number][] = [
      ['a region past the end of RAM', () => prd([[RAM - 512, 1024, true]]), 2],
      ['a region in the 4 GiB hole', () => prd([[0xfec00000, 1024, true]]), 2],
      ['a region covering less than the transfer', () => prd([[BUF, 512, true]]), 2],
      ['no EOT before the table’s 64 KiB boundary', () => prd(Array.from({ length: 8192 }, () => [BUF, 2, false] as [number, number, boolean])), 64],
    ];
    for (const [what, setUp, sectors] of cases) {
      ram().set(guard, BUF);
      setUp();
      const before = readFileSync(diskFile);
      const r = dma(0xc8, 0, sectors);
      expect(r.bm & BmStatus.Error, what).toBe(BmStatus.Error);
      expect(r.status & 0x01, what).toBe(0x01); // ERR: the driver sees the failure at once
      expect(Buffer.from(ram().subarray(BUF, BUF + 4096)).equals(Buffer.from(guard)), what).toBe(true);
      ram().set(guard.subarray(0, 1024), BUF);
      prd([[RAM - 512, 1024, true]]);
      expect(dma(0xca, 0, 2).bm & BmStatus.Error, what).toBe(BmStatus.Error);
      expect(readFileSync(diskFile).equals(before), what).toBe(true);
    }
    // The table itself outside RAM.
    out(BMIDE + 4, 4, 0xfffffff0);
    out(0x1f6, 1, 0xe0);
    out(0x1f2, 1, 1);
    out(0x1f7, 1, 0xc8);
    out(BMIDE, 1, 0x09);
    expect(inp(BMIDE + 2, 1) & BmStatus.Error).toBe(BmStatus.Error);
    out(BMIDE, 1, 0);
    expect(ide.status().faults).toBe(0);
  });

  it('reports no general-purpose event and no PCI hot-plug change (v86 leaves those ports floating)', () => {
    expect(inp(0xafe0, 2)).toBe(0); // GPE0_STS
    out(0xafe2, 2, 0x0002);
    expect(inp(0xafe2, 2)).toBe(0x0002); // GPE0_EN is storage
    expect(inp(0xae00, 4)).toBe(0); // slots up
    expect(inp(0xae04, 4)).toBe(0); // slots down
  });

  it('after v86’s memory grew (views detached) refuses DMA: contained by the bus, counted, the host unharmed', () => {
    const before = readFileSync(diskFile);
    vp.cpu.wasm_memory.grow(1);
    expect(vp.memoryGrew).toBe(true);
    out(0x1f6, 1, 0xe0);
    out(0x1f2, 1, 2);
    out(0x1f3, 1, 0);
    out(BMIDE + 4, 4, PRD);
    out(0x1f7, 1, 0xca);
    out(BMIDE, 1, 0x01);
    expect(ide.status().faults).toBeGreaterThan(0);
    expect(readFileSync(diskFile).equals(before)).toBe(true);
  });
});
