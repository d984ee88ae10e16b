import { afterEach, describe, expect, it } from 'vitest';
import { BM, IdeRig, P, pattern } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';

let rig: IdeRig;
afterEach(() => rig?.close());

/** A backend wrapper that counts flushes and can be told to fail. */
class ProbeBackend implements BlockBackend {
  flushes = 0;
  failReads = false;
  constructor(private readonly inner: BlockBackend) {}
  get sectorSize() {
    return this.inner.sectorSize;
  }
  get sectorCount() {
    return this.inner.sectorCount;
  }
  get readOnly() {
    return this.inner.readOnly;
  }
  read(lba: number, dst: Uint8Array): void {
    if (this.failReads) throw new Error('EIO');
    this.inner.read(lba, dst);
  }
  write(lba: number, src: Uint8Array): void {
    this.inner.write(lba, src);
  }
  flush(): void {
    this.flushes++;
    this.inner.flush();
  }
  close(): void {
    this.inner.close();
  }
}

function identifyWord(r: IdeRig, i: number): number {
  const id = r.drive.identify();
  return id[2 * i]! | (id[2 * i + 1]! << 8);
}

describe('PIIX4 IDE: control block, reset, diagnostics', () => {
  it('nIEN keeps INTRQ off the IRQ line; clearing it lets a pending interrupt through', () => {
    rig = new IdeRig();
    rig.bus.write(P.ctl, 1, 0x02);
    rig.out8(P.cmd, AtaCommand.IdentifyDevice);
    expect(rig.channel.intrq).toBe(true);
    expect(rig.irq14).toEqual([]);
    rig.bus.write(P.ctl, 1, 0x00);
    expect(rig.irq14).toEqual([true]);
    rig.in8(P.cmd);
    expect(rig.irq14).toEqual([true, false]);
  });

  it('SRST: BSY while set, then the signature and 0x50 without an interrupt; a transfer in progress ends', () => {
    rig = new IdeRig();
    rig.setup28(5, 4);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    rig.in8(P.cmd);
    rig.bus.write(P.ctl, 1, 0x04);
    expect(rig.in8(P.ctl)).toBe(0x80);
    rig.bus.write(P.ctl, 1, 0x00);
    expect(rig.in8(P.ctl)).toBe(0x50);
    expect(rig.in8(P.err)).toBe(0x01);
    expect([rig.in8(P.count), rig.in8(P.lbaLow), rig.in8(P.lbaMid), rig.in8(P.lbaHigh), rig.in8(P.dev)]).toEqual([1, 1, 0, 0, 0xa0]);
    expect(rig.channel.intrq).toBe(false);
    expect(rig.bus.read(P.data, 2)).toBe(0); // no data phase any more
  });

  it('EXECUTE DEVICE DIAGNOSTIC sets the signature, error 01h, and interrupts', () => {
    rig = new IdeRig();
    rig.setup28(0x123456, 9);
    rig.out8(P.cmd, AtaCommand.ExecuteDeviceDiagnostic);
    expect(rig.channel.intrq).toBe(true);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(rig.in8(P.err)).toBe(0x01);
    expect([rig.in8(P.count), rig.in8(P.lbaLow), rig.in8(P.lbaMid), rig.in8(P.lbaHigh)]).toEqual([1, 1, 0, 0]);
  });

  it('FLUSH CACHE and FLUSH CACHE EXT reach backend.flush()', () => {
    const base = new IdeRig();
    const probe = new ProbeBackend(base.disk);
    rig = new IdeRig({ backend: probe });
    rig.out8(P.dev, 0xe0);
    rig.out8(P.cmd, AtaCommand.FlushCache);
    expect(rig.in8(P.cmd)).toBe(0x50);
    rig.out8(P.cmd, AtaCommand.FlushCacheExt);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(probe.flushes).toBe(2);
    base.close();
  });

  it('SET FEATURES selects transfer modes (IDENTIFY words 63/88) and aborts unknown subcommands', () => {
    rig = new IdeRig();
    expect(identifyWord(rig, 63)).toBe(0x0407); // MWDMA 2 selected at power-on
    rig.out8(P.err, 0x03);
    rig.out8(P.count, 0x42); // UDMA 2
    rig.out8(P.cmd, AtaCommand.SetFeatures);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(identifyWord(rig, 88)).toBe(0x043f);
    expect(identifyWord(rig, 63)).toBe(0x0007);
    rig.out8(P.count, 0x47); // UDMA 7 does not exist
    rig.out8(P.cmd, AtaCommand.SetFeatures);
    expect(rig.in8(P.cmd)).toBe(0x51);
    expect(rig.in8(P.err)).toBe(0x04);
    rig.out8(P.err, 0x82); // disable write cache
    rig.out8(P.cmd, AtaCommand.SetFeatures);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(identifyWord(rig, 85) & 0x20).toBe(0);
    rig.out8(P.err, 0x77);
    rig.out8(P.cmd, AtaCommand.SetFeatures);
    expect(rig.in8(P.err)).toBe(0x04);
  });

  it('CHECK POWER MODE reports active (FFh in the sector count)', () => {
    rig = new IdeRig();
    rig.out8(P.cmd, AtaCommand.CheckPowerMode);
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(rig.in8(P.count)).toBe(0xff);
  });
});

describe('PIIX4 IDE: hostile guest', () => {
  function expectWorks(r: IdeRig): void {
    r.out8(P.dev, 0xa0);
    r.out8(P.cmd, AtaCommand.IdentifyDevice);
    expect(r.in8(P.cmd)).toBe(0x58);
    expect(r.bus.readString(P.data, 2, r.memory.view(0, 512), 256)).toBe(256);
    expect(r.in8(P.cmd)).toBe(0x50);
  }

  it('unknown commands and packet commands abort with ERR/ABRT and an interrupt', () => {
    rig = new IdeRig();
    for (const cmd of [0x00, 0x77, 0xff, AtaCommand.Packet, AtaCommand.IdentifyPacketDevice, AtaCommand.DeviceReset]) {
      rig.out8(P.cmd, cmd);
      expect(rig.channel.intrq).toBe(true);
      expect(rig.in8(P.cmd)).toBe(0x51);
      expect(rig.in8(P.err)).toBe(0x04);
    }
    expectWorks(rig);
  });

  it('LBAs past the end give IDNF for PIO, DMA, VERIFY and SEEK, and move nothing', () => {
    rig = new IdeRig({ sectors: 1000 });
    for (const [lba, count, cmd] of [
      [999, 2, AtaCommand.ReadSectors],
      [1000, 1, AtaCommand.WriteSectors],
      [0, 0, AtaCommand.ReadSectors], // 0 = 256 sectors: fine
      [800, 0, AtaCommand.ReadSectors], // 800 + 256 > 1000
      [0x0fffffff, 1, AtaCommand.ReadDma],
      [1000, 1, AtaCommand.ReadVerifySectors],
      [5000, 1, AtaCommand.Seek],
    ] as const) {
      rig.setup28(lba, count);
      rig.out8(P.cmd, cmd);
      const ok = lba === 0 && count === 0;
      expect(rig.in8(P.cmd)).toBe(ok ? 0x58 : 0x51);
      if (!ok) expect(rig.in8(P.err)).toBe(0x10);
    }
    expectWorks(rig);
  });

  it('writes to a read-only disk abort and leave the image unchanged', () => {
    rig = new IdeRig({ readOnly: true });
    for (const cmd of [AtaCommand.WriteSectors, AtaCommand.WriteSectorsExt, AtaCommand.WriteDma]) {
      rig.setup28(0, 1);
      rig.out8(P.cmd, cmd);
      expect(rig.in8(P.cmd)).toBe(0x51);
      expect(rig.in8(P.err)).toBe(0x04);
      rig.bus.writeString(P.data, 2, rig.memory.view(0, 512).fill(0xaa), 256);
    }
    expect(rig.readDisk(0, 1).every((b) => b === 0)).toBe(true);
    expectWorks(rig);
  });

  it('a backend read error ends the command with UNC', () => {
    const base = new IdeRig();
    const probe = new ProbeBackend(base.disk);
    rig = new IdeRig({ backend: probe });
    probe.failReads = true;
    rig.setup28(0, 1);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    rig.in8(P.cmd);
    expect(rig.bus.readString(P.data, 2, rig.memory.view(0, 512), 256)).toBe(0);
    expect(rig.in8(P.cmd)).toBe(0x51);
    expect(rig.in8(P.err)).toBe(0x40);
    probe.failReads = false;
    expectWorks(rig);
    base.close();
  });

  it('data-port traffic without a data phase, odd sizes and garbage registers never throw', () => {
    rig = new IdeRig();
    const seq = pattern(4000, 17);
    for (let i = 0; i < seq.length; i += 2) {
      const port = [P.data, P.err, P.count, P.lbaLow, P.dev, P.cmd, P.ctl, BM, BM + 2, BM + 4][seq[i]! % 10]!;
      const size = ([1, 2, 4] as const)[seq[i + 1]! % 3]!;
      if (seq[i]! & 0x80) rig.bus.read(port, size);
      else rig.bus.write(port, size, (seq[i + 1]! * 0x01010101) >>> 0);
    }
    expect(rig.bus.counters(rig.ide.channelPorts[0])!.faults).toBe(0);
    expect(rig.bus.counters(rig.ide.busMaster)!.faults).toBe(0);
    rig.bus.write(P.ctl, 1, 0x04);
    rig.bus.write(P.ctl, 1, 0x00);
    rig.bus.write(BM, 1, 0);
    expectWorks(rig);
  });
});

describe('PIIX4 IDE: VM reset', () => {
  it('returns drives and engines to power-on state and keeps decoding', () => {
    rig = new IdeRig();
    rig.out8(P.count, 16);
    rig.out8(P.cmd, AtaCommand.SetMultipleMode);
    rig.bus.write(BM + 4, 4, 0x8000);
    rig.bus.write(BM, 1, 0x09);
    rig.setup28(0, 4);
    rig.out8(P.cmd, AtaCommand.ReadSectors);
    rig.ide.reset();
    expect(rig.in8(P.cmd)).toBe(0x50);
    expect(rig.in8(P.err)).toBe(0x01);
    expect(rig.in8(P.count)).toBe(1);
    expect(rig.drive.multipleSectors).toBe(0);
    expect(rig.bus.read(BM, 1)).toBe(0);
    expect(rig.bus.read(BM + 2, 1)).toBe(0x20);
    expect(rig.bus.read(BM + 4, 4)).toBe(0);
    expect(rig.bus.read(P.data, 2)).toBe(0);
  });
});
