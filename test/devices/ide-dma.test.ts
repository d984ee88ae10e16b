import { afterEach, describe, expect, it } from 'vitest';
import { BM, IdeRig, P, pattern, expectSameBytes } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';

let rig: IdeRig;
afterEach(() => rig?.close());

const BMCMD = BM;
const BMSTS = BM + 2;
const BMPRD = BM + 4;

/** The READ/WRITE DMA sequence (ATA/ATAPI-6; PIIX4 bus master as Linux libata-sff drives it), up to the start of the engine. */
function startDma(r: IdeRig, table: number, lba: number, count: number, read: boolean, cmd?: number): void {
  r.bus.write(BMPRD, 4, table);
  r.bus.write(BMSTS, 1, 0x26);
  r.bus.write(BMCMD, 1, read ? 0x08 : 0x00);
  r.setup28(lba, count);
  r.out8(P.cmd, cmd ?? (read ? AtaCommand.ReadDma : AtaCommand.WriteDma));
  r.bus.write(BMCMD, 1, read ? 0x09 : 0x01);
}

/** The interrupt handler's part: BM status, stop, ATA status, clear BM interrupt. */
function endDma(r: IdeRig): { bm: number; ata: number } {
  const bm = r.bus.read(BMSTS, 1);
  r.bus.write(BMCMD, 1, 0);
  const ata = r.in8(P.cmd);
  r.bus.write(BMSTS, 1, 0x26);
  return { bm, ata };
}

describe('Bus Master IDE DMA', () => {
  it('BMIDE registers: reset values, W1C status bits, dword-aligned PRD pointer, read-only active bit', () => {
    rig = new IdeRig();
    expect(rig.bus.read(BMCMD, 1)).toBe(0);
    expect(rig.bus.read(BMSTS, 1)).toBe(0x20); // drive 0 DMA capable (set by the firmware step)
    rig.bus.write(BMPRD, 4, 0x12345677);
    expect(rig.bus.read(BMPRD, 4)).toBe(0x12345674);
    rig.bus.write(BMPRD + 2, 2, 0xabcd); // 16-bit write of the high half
    expect(rig.bus.read(BMPRD, 4)).toBe(0xabcd5674);
    rig.bus.write(BMSTS, 1, 0x61); // active is read-only, drive-capable bits are read/write
    expect(rig.bus.read(BMSTS, 1)).toBe(0x60);
    rig.bus.write(BMCMD, 1, 0xff);
    expect(rig.bus.read(BMCMD, 1)).toBe(0x09);
    expect(rig.bus.read(BMSTS, 1) & 0x01).toBe(1); // Start sets Active
    rig.bus.write(BMCMD, 1, 0x00);
    expect(rig.bus.read(BMSTS, 1) & 0x01).toBe(0);
    // The secondary channel's block at +8 is separate.
    rig.bus.write(BM + 8 + 4, 4, 0x1000);
    expect(rig.bus.read(BMPRD, 4)).toBe(0xabcd5674);
    expect(rig.bus.read(BM + 12, 4)).toBe(0x1000);
  });

  it('READ DMA through a multi-entry PRD table with odd-sized regions', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(40, 9, 11); // 4608 bytes
    // Regions of 1000, 2, 3000 and 606 bytes: sectors split across entries go through the bounce sector.
    rig.writePrd(0x8000, [
      [0x10000, 1000],
      [0x20000, 2],
      [0x30000, 3000],
      [0x40000, 606],
    ]);
    startDma(rig, 0x8000, 40, 9, true);
    expect(rig.channel.intrq).toBe(true);
    const { bm, ata } = endDma(rig);
    expect(bm).toBe(0x24); // interrupt, not active (table ended exactly), drive 0 capable
    expect(ata).toBe(0x50);
    const got = Buffer.concat([rig.memory.read(0x10000, 1000), rig.memory.read(0x20000, 2), rig.memory.read(0x30000, 3000), rig.memory.read(0x40000, 606)]);
    expectSameBytes(got, Buffer.from(expected));
    expect(rig.bus.read(BMSTS, 1)).toBe(0x20);
  });

  it('WRITE DMA EXT from several regions; byte count 0 means 64 KiB', () => {
    rig = new IdeRig({ sectors: 4096 });
    const data = pattern(65536 + 1024, 12);
    rig.memory.write(0x10000, data.subarray(0, 65536));
    rig.memory.write(0x30000, data.subarray(65536));
    rig.writePrd(0x8000, [
      [0x10000, 0],
      [0x30000, 1024],
    ]);
    rig.bus.write(BMPRD, 4, 0x8000);
    rig.bus.write(BMSTS, 1, 0x26);
    rig.bus.write(BMCMD, 1, 0x00);
    rig.setup48(1000, 130);
    rig.out8(P.cmd, AtaCommand.WriteDmaExt);
    expect(rig.in8(P.ctl)).toBe(0x58); // waiting for the engine
    rig.bus.write(BMCMD, 1, 0x01);
    const { bm, ata } = endDma(rig);
    expect(bm & 0x07).toBe(0x04);
    expect(ata).toBe(0x50);
    expectSameBytes(rig.readDisk(1000, 130), data);
  });

  it('the engine may be started before the command; a larger table leaves Active set', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(0, 1, 13);
    rig.writePrd(0x8000, [
      [0x10000, 512],
      [0x20000, 512],
    ]);
    rig.bus.write(BMPRD, 4, 0x8000);
    rig.bus.write(BMCMD, 1, 0x09);
    rig.setup28(0, 1);
    rig.out8(P.cmd, AtaCommand.ReadDma);
    expect(rig.bus.read(BMSTS, 1) & 0x07).toBe(0x05); // interrupt + still active
    expectSameBytes(rig.memory.read(0x10000, 512), expected);
    expect(rig.in8(P.cmd)).toBe(0x50);
  });

  it('DMA waits while PCI bus mastering is disabled', () => {
    rig = new IdeRig();
    rig.fillDisk(0, 1, 14);
    rig.ide.config.writeConfig(0x04, 2, 0x0001); // I/O space only
    rig.writePrd(0x8000, [[0x10000, 512]]);
    startDma(rig, 0x8000, 0, 1, true);
    expect(rig.in8(P.ctl)).toBe(0x58);
    expect(rig.channel.intrq).toBe(false);
    rig.ide.config.writeConfig(0x04, 2, 0x0005);
    rig.bus.write(BMCMD, 1, 0x08);
    rig.bus.write(BMCMD, 1, 0x09); // restart with bus mastering on
    expect(rig.in8(P.cmd)).toBe(0x50);
  });
});

describe('Bus Master IDE: hostile PRD tables', () => {
  function expectDmaError(r: IdeRig): void {
    expect(r.channel.intrq).toBe(true);
    const { bm, ata } = endDma(r);
    expect(bm & 0x07).toBe(0x06); // error + interrupt, not active
    expect(ata).toBe(0x51);
    expect(r.in8(P.err)).toBe(0x04);
    expect(r.bus.counters(r.ide.busMaster)!.faults).toBe(0);
  }

  function expectStillWorks(r: IdeRig): void {
    const expected = r.readDisk(3, 1);
    if (!r.disk.readOnly) {
      expected.set(pattern(16, 99));
      r.disk.write(3, expected);
    }
    r.writePrd(0x9000, [[0x50000, 512]]);
    startDma(r, 0x9000, 3, 1, true);
    expect(endDma(r)).toEqual({ bm: 0x24, ata: 0x50 });
    expectSameBytes(r.memory.read(0x50000, 512), expected);
  }

  it('a region outside guest memory moves no data and errors', () => {
    rig = new IdeRig();
    rig.fillDisk(0, 2, 1);
    rig.writePrd(0x8000, [
      [0x10000, 512],
      [0xfffff000, 512],
    ]);
    startDma(rig, 0x8000, 0, 2, true);
    expectDmaError(rig);
    expect(rig.memory.read(0x10000, 512).every((b) => b === 0)).toBe(true);
    expectStillWorks(rig);
  });

  it('a region straddling the end of guest memory errors', () => {
    rig = new IdeRig();
    rig.writePrd(0x8000, [[1024 * 1024 - 256, 512]]);
    startDma(rig, 0x8000, 0, 1, true);
    expectDmaError(rig);
    expectStillWorks(rig);
  });

  it('a table pointer outside guest memory errors', () => {
    rig = new IdeRig();
    startDma(rig, 0xfffffff0, 0, 1, true);
    expectDmaError(rig);
    expectStillWorks(rig);
  });

  it('a table without EOT that never covers the transfer stops at its 64 KiB boundary', () => {
    rig = new IdeRig({ sectors: 70000 });
    // 8192 entries of 2 bytes fill the whole 64 KiB page of the table: 16 KiB < 32 MiB wanted.
    for (let i = 0; i < 8192; i++) {
      rig.memory.writeU32(0x60000 + i * 8, 0x10000);
      rig.memory.writeU32(0x60000 + i * 8 + 4, 2);
    }
    rig.bus.write(BMPRD, 4, 0x60000);
    rig.bus.write(BMCMD, 1, 0x08);
    rig.setup48(0, 65535);
    rig.out8(P.cmd, AtaCommand.ReadDmaExt);
    rig.bus.write(BMCMD, 1, 0x09);
    expectDmaError(rig);
    expectStillWorks(rig);
  });

  it('a table smaller than the transfer errors instead of hanging', () => {
    rig = new IdeRig();
    rig.writePrd(0x8000, [[0x10000, 512]]);
    startDma(rig, 0x8000, 0, 4, true);
    expectDmaError(rig);
    expectStillWorks(rig);
  });

  it('a direction bit that disagrees with the command errors and writes nothing', () => {
    rig = new IdeRig();
    const before = rig.readDisk(0, 1);
    rig.memory.write(0x10000, pattern(512, 5));
    rig.writePrd(0x8000, [[0x10000, 512]]);
    startDma(rig, 0x8000, 0, 1, true, AtaCommand.WriteDma);
    expectDmaError(rig);
    expectSameBytes(rig.readDisk(0, 1), before);
    expectStillWorks(rig);
  });

  it('WRITE DMA to a read-only disk aborts before any transfer', () => {
    rig = new IdeRig({ readOnly: true });
    rig.memory.write(0x10000, pattern(512, 5));
    rig.writePrd(0x8000, [[0x10000, 512]]);
    startDma(rig, 0x8000, 0, 1, false);
    expect(rig.in8(P.cmd)).toBe(0x51);
    expect(rig.in8(P.err)).toBe(0x04);
    expect(rig.readDisk(0, 1).every((b) => b === 0)).toBe(true);
    rig.bus.write(BMCMD, 1, 0);
    expectStillWorks(rig);
  });
});
