import { afterEach, describe, expect, it } from 'vitest';
import { IdeRig, P, pattern, expectSameBytes } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';

let rig: IdeRig;
afterEach(() => rig?.close());

function readWords(r: IdeRig, words: number): Uint8Array {
  const b = new Uint8Array(words * 2);
  for (let i = 0; i < words; i++) {
    const w = r.bus.read(P.data, 2);
    b[2 * i] = w & 0xff;
    b[2 * i + 1] = w >> 8;
  }
  return b;
}

function writeWords(r: IdeRig, data: Uint8Array): void {
  for (let i = 0; i < data.length; i += 2) r.bus.write(P.data, 2, data[i]! | (data[i + 1]! << 8));
}

describe('PIIX4 IDE: reset state and IDENTIFY', () => {
  it('powers on ready with the ATA signature; an absent slave reads status 0', () => {
    rig = new IdeRig();
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(rig.in8(P.ctl)).toBe(0x50);
    expect(rig.in8(P.err)).toBe(0x01);
    expect([rig.in8(P.count), rig.in8(P.lbaLow), rig.in8(P.lbaMid), rig.in8(P.lbaHigh)]).toEqual([1, 1, 0, 0]);
    rig.out8(P.dev, 0xf0);
    expect(rig.in8(P.cmd)).toBe(0x00);
    rig.out8(P.dev, 0xa0);
    expect(rig.in8(P.cmd)).toBe(0x50);
    // No drives on the secondary channel: its registers decode but nothing answers.
    expect(rig.in8(0x177)).toBe(0x00);
  });

  it('IDENTIFY DEVICE returns the ATA-6 words, raises IRQ 14, and ends with DRQ clear', () => {
    rig = new IdeRig({ sectors: 20000 });
    rig.pic.write(0x21, 1, 0); // PIC left uninitialised: vectors 0.., all unmasked
    rig.out8(P.dev, 0xa0);
    rig.out8(P.cmd, AtaCommand.IdentifyDevice);
    expect(rig.in8(P.ctl)).toBe(0x58); // alternate status does not clear the interrupt
    expect(rig.irq14).toEqual([true]);
    expect(rig.pic.hasInterrupt()).toBe(true);
    expect(rig.in8(P.cmd)).toBe(0x58);
    expect(rig.irq14).toEqual([true, false]);
    const id = readWords(rig, 256);
    expect(rig.in8(P.cmd)).toBe(0x50);
    const w = (i: number) => id[2 * i]! | (id[2 * i + 1]! << 8);
    expect(w(0)).toBe(0x0040);
    expect(Buffer.from(id.subarray(54, 64)).toString('latin1')).toBe('iVtrau lDH');
    expect(Buffer.from(id.subarray(54, 94)).toString('latin1').trimEnd()).toBe('iVtrau lDH');
    expect(w(47)).toBe(0x8080);
    expect(w(49) & 0x0300).toBe(0x0300);
    expect(w(59)).toBe(0); // multiple mode not set yet
    expect(w(60) | (w(61) << 16)).toBe(20000);
    expect(w(83) & 0x0400).toBe(0x0400);
    expect(w(86) & 0x0400).toBe(0x0400);
    expect(w(100) + w(101) * 0x10000).toBe(20000);
    expect(w(102)).toBe(0);
    expect(w(1) * w(3) * w(6)).toBeLessThanOrEqual(20000);
    expect(w(255) & 0xff).toBe(0xa5);
    expect(id.reduce((a, b) => a + b, 0) & 0xff).toBe(0);
    expect(rig.irq14).toEqual([true, false]); // no interrupt at the end of a data-in command
  });
});

describe('PIIX4 IDE: PIO data integrity against a raw file', () => {
  it('READ SECTORS word by word: one interrupt per sector, 0x58 while data is ready, 0x50 after', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(100, 3, 1);
    rig.setup28(100, 3);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    const got: Uint8Array[] = [];
    for (let s = 0; s < 3; s++) {
      expect(rig.channel.intrq).toBe(true);
      expect(rig.in8(P.cmd)).toBe(0x58);
      got.push(readWords(rig, 256));
    }
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(Buffer.concat(got), expected);
    expect(rig.irq14.filter((l) => l).length).toBe(3);
  });

  it('READ SECTORS by string I/O lands in guest memory, one rep insw per sector', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(7, 2, 2);
    rig.setup28(7, 2);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    expect(rig.in8(P.cmd)).toBe(0x58);
    expect(rig.bus.readString(P.data, 2, rig.memory.view(0x10000, 512), 256)).toBe(256);
    expect(rig.channel.intrq).toBe(true); // the second sector's interrupt
    expect(rig.in8(P.cmd)).toBe(0x58);
    expect(rig.bus.readString(P.data, 2, rig.memory.view(0x10200, 512), 256)).toBe(256);
    expect(rig.channel.intrq).toBe(false);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(rig.memory.read(0x10000, 1024), expected);
    // No data phase: nothing moves, memory untouched.
    expect(rig.bus.readString(P.data, 2, rig.memory.view(0x10000, 512), 256)).toBe(0);
    expectSameBytes(rig.memory.read(0x10000, 1024), expected);
  });

  it('one rep insw over several DRQ blocks gets all the data and stops where the data phase ends', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(9, 3, 8);
    rig.memory.u8.fill(0xee, 0x10000, 0x10000 + 2048);
    rig.setup28(9, 3);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    rig.in8(P.cmd);
    expect(rig.bus.readString(P.data, 2, rig.memory.view(0x10000, 2048), 1024)).toBe(768);
    expectSameBytes(rig.memory.read(0x10000, 1536), expected);
    expect(rig.memory.read(0x10000 + 1536, 512).every((b) => b === 0xee)).toBe(true);
    expect(rig.in8(P.cmd)).toBe(0x50);
    // Same for a write: one rep outsw of three sectors, then the completion.
    rig.setup28(20, 3);
    rig.out8(P.cmd, AtaCommand.WriteSectors);
    expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x10000, 2048), 1024)).toBe(768);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(rig.readDisk(20, 3), expected);
  });

  it('32-bit data port accesses (insd, in eax) move two words each', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(0, 2, 3);
    rig.setup28(0, 2);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    rig.in8(P.cmd);
    const first = new Uint8Array(512);
    for (let i = 0; i < 128; i++) new DataView(first.buffer).setUint32(i * 4, rig.bus.read(P.data, 4), true);
    expectSameBytes(first, expected.subarray(0, 512));
    rig.in8(P.cmd);
    expect(rig.bus.readString(P.data, 4, rig.memory.view(0x2000, 512), 128)).toBe(128);
    expectSameBytes(rig.memory.read(0x2000, 512), expected.subarray(512));
  });

  it('WRITE SECTORS word by word and by string: DRQ first without interrupt, interrupt per sector', () => {
    rig = new IdeRig();
    const data = pattern(3 * 512, 4);
    rig.setup28(50, 3);
    rig.out8(P.cmd, AtaCommand.WriteSectors);
    expect(rig.in8(P.ctl)).toBe(0x58);
    expect(rig.channel.intrq).toBe(false);
    writeWords(rig, data.subarray(0, 512));
    expect(rig.channel.intrq).toBe(true);
    expect(rig.in8(P.cmd)).toBe(0x58);
    rig.memory.write(0x3000, data.subarray(512));
    expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x3000, 512), 256)).toBe(256);
    expect(rig.in8(P.cmd)).toBe(0x58);
    // The last sector in two halves exercises the buffered path.
    expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x3200, 256), 128)).toBe(128);
    expect(rig.channel.intrq).toBe(false);
    expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x3300, 256), 128)).toBe(128);
    expect(rig.channel.intrq).toBe(true); // completion interrupt
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(rig.readDisk(50, 3), data);
  });

  it('READ/WRITE MULTIPLE move one block per interrupt after SET MULTIPLE MODE', () => {
    rig = new IdeRig();
    rig.setup28(0, 20);
    rig.out8(P.cmd, AtaCommand.ReadMultiple);
    expect(rig.in8(P.cmd)).toBe(0x51); // multiple mode not enabled: aborted
    expect(rig.in8(P.err)).toBe(0x04);
    rig.out8(P.count, 3);
    rig.out8(P.cmd, AtaCommand.SetMultipleMode);
    expect(rig.in8(P.cmd)).toBe(0x51); // 3 is not a power of two
    rig.out8(P.count, 8);
    rig.out8(P.cmd, AtaCommand.SetMultipleMode);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(rig.drive.identify()[59 * 2]).toBe(8);
    expect(rig.drive.identify()[59 * 2 + 1]).toBe(1);

    const data = pattern(20 * 512, 5);
    rig.memory.write(0x20000, data);
    rig.setup28(300, 20);
    rig.out8(P.cmd, AtaCommand.WriteMultiple);
    const irqsBefore = rig.channel.interruptsRaised;
    let off = 0;
    for (const block of [8, 8, 4]) {
      expect(rig.in8(P.ctl)).toBe(0x58);
      expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x20000 + off, block * 512), block * 256)).toBe(block * 256);
      off += block * 512;
      rig.in8(P.cmd);
    }
    expect(rig.channel.interruptsRaised - irqsBefore).toBe(3);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(rig.readDisk(300, 20), data);

    rig.setup28(300, 20);
    rig.out8(P.cmd, AtaCommand.ReadMultiple);
    off = 0;
    for (const block of [8, 8, 4]) {
      expect(rig.in8(P.cmd)).toBe(0x58);
      expect(rig.bus.readString(P.data, 2, rig.memory.view(0x40000 + off, block * 512), block * 256)).toBe(block * 256);
      off += block * 512;
    }
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(rig.memory.read(0x40000, 20 * 512), data);
  });

  it('READ/WRITE SECTORS EXT use the 48-bit FIFO registers, readable back with HOB', () => {
    rig = new IdeRig({ sectors: 4096 });
    const data = pattern(2 * 512, 6);
    rig.setup48(0xf00, 2);
    rig.bus.write(P.ctl, 1, 0x80); // HOB
    expect([rig.in8(P.count), rig.in8(P.lbaLow), rig.in8(P.lbaMid)]).toEqual([0, 0, 0]);
    rig.bus.write(P.ctl, 1, 0x00);
    expect([rig.in8(P.count), rig.in8(P.lbaLow), rig.in8(P.lbaMid)]).toEqual([2, 0x00, 0x0f]);
    rig.out8(P.cmd, AtaCommand.WriteSectorsExt);
    rig.memory.write(0x5000, data);
    rig.bus.writeString(P.data, 2, rig.memory.view(0x5000, 512), 256);
    rig.in8(P.cmd);
    rig.bus.writeString(P.data, 2, rig.memory.view(0x5200, 512), 256);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expectSameBytes(rig.readDisk(0xf00, 2), data);
    rig.setup48(0xf00, 2);
    rig.out8(P.cmd, AtaCommand.ReadSectorsExt);
    rig.in8(P.cmd);
    expectSameBytes(readWords(rig, 256), data.subarray(0, 512));
    // The 48-bit count 0 means 65536 sectors: past the end of this 4096-sector disk.
    rig.setup48(0, 0);
    rig.out8(P.cmd, AtaCommand.ReadSectorsExt);
    expect(rig.in8(P.cmd)).toBe(0x51);
    expect(rig.in8(P.err)).toBe(0x10);
    // A high LBA byte set (sector 2^24 + 5) is past the end too.
    rig.setup48(0x1000005, 1);
    rig.out8(P.cmd, AtaCommand.ReadSectorsExt);
    expect(rig.in8(P.err)).toBe(0x10);
  });

  it('CHS addressing through the default geometry (16 heads, 63 sectors per track)', () => {
    rig = new IdeRig({ sectors: 4096 });
    const expected = rig.fillDisk((1 * 16 + 2) * 63 + 4, 1, 7); // C=1 H=2 S=5
    rig.out8(P.dev, 0xa0 | 2);
    rig.out8(P.count, 1);
    rig.out8(P.lbaLow, 5);
    rig.out8(P.lbaMid, 1);
    rig.out8(P.lbaHigh, 0);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    expect(rig.in8(P.cmd)).toBe(0x58);
    expectSameBytes(readWords(rig, 256), expected);
    rig.out8(P.lbaLow, 0); // sector numbers start at 1
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    expect(rig.in8(P.cmd)).toBe(0x51);
    expect(rig.in8(P.err)).toBe(0x10);
  });
});
