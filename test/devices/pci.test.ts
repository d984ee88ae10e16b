import { afterEach, describe, expect, it } from 'vitest';
import { IdeRig } from './ide-rig.ts';
import { PciBus } from '../../root-partition/devices/pci/pci-bus.ts';
import { I440bxHostBridge, Piix4IsaBridge } from '../../root-partition/devices/pci/pci-config-space.ts';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Piix4Ide } from '../../root-partition/devices/ide/piix4-ide.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';

let rig: IdeRig;
afterEach(() => rig?.close());

function cfgAddr(dev: number, fn: number, reg: number): number {
  return (0x80000000 | (dev << 11) | (fn << 8) | reg) >>> 0;
}

function setup(): {
  pci: PciBus;
  read: (d: number, f: number, r: number, size?: 1 | 2 | 4) => number;
  write: (d: number, f: number, r: number, v: number, size?: 1 | 2 | 4) => void;
} {
  rig = new IdeRig();
  const pci = new PciBus();
  pci.attach(0, 0, new I440bxHostBridge());
  pci.attach(7, 0, new Piix4IsaBridge());
  pci.attach(7, 1, rig.ide.config);
  rig.bus.register(pci);
  const read = (d: number, f: number, r: number, size: 1 | 2 | 4 = 4) => {
    rig.bus.write(0xcf8, 4, cfgAddr(d, f, r & 0xfc));
    return rig.bus.read(0xcfc + (r & 3), size);
  };
  const write = (d: number, f: number, r: number, v: number, size: 1 | 2 | 4 = 4) => {
    rig.bus.write(0xcf8, 4, cfgAddr(d, f, r & 0xfc));
    rig.bus.write(0xcfc + (r & 3), size, v);
  };
  return { pci, read, write };
}

describe('PCI configuration mechanism #1', () => {
  it('enumerates the 440BX host bridge and the PIIX4 functions with their real ids and classes', () => {
    const { read } = setup();
    expect(read(0, 0, 0x00)).toBe(0x71928086);
    expect(read(0, 0, 0x08) >>> 8).toBe(0x060000);
    expect(read(7, 0, 0x00)).toBe(0x71108086);
    expect((read(7, 0, 0x0c, 4) >>> 16) & 0xff).toBe(0x80); // multi-function header
    expect(read(7, 1, 0x00)).toBe(0x71118086);
    expect(read(7, 1, 0x08)).toBe(0x01018001);
    expect(read(7, 1, 0x02, 2)).toBe(0x7111);
    expect(read(7, 1, 0x0b, 1)).toBe(0x01);
    expect(read(1, 0, 0x00)).toBe(0xffffffff); // empty slot
    expect(read(7, 2, 0x00)).toBe(0xffffffff);
  });

  it('CONFIG_ADDRESS latches only 32-bit writes, keeps bit 31 and bits 23:2; disabled cycles read all ones', () => {
    const { pci } = setup();
    rig.bus.write(0xcf8, 4, 0xffffffff);
    expect(rig.bus.read(0xcf8, 4)).toBe(0x80fffffc);
    rig.bus.write(0xcf8, 1, 0x00);
    expect(pci.address).toBe(0x80fffffc);
    rig.bus.write(0xcf8, 4, 0x00000000 | (7 << 11) | (1 << 8)); // enable bit clear
    expect(rig.bus.read(0xcfc, 4)).toBe(0xffffffff);
    rig.bus.write(0xcf8, 4, 0x80010000); // bus 1 does not exist
    expect(rig.bus.read(0xcfc, 4)).toBe(0xffffffff);
  });

  it('BAR4 sizes as a 16-byte I/O BAR and relocates the BMIDE ports', () => {
    const { read, write } = setup();
    expect(read(7, 1, 0x20)).toBe(0xc001); // as the firmware step left it
    expect(read(7, 1, 0x04, 2)).toBe(0x0005);
    write(7, 1, 0x20, 0xffffffff);
    expect(read(7, 1, 0x20)).toBe(0x0000fff1); // size 16, I/O
    write(7, 1, 0x20, 0xd000);
    expect(read(7, 1, 0x20)).toBe(0xd001);
    expect(rig.bus.deviceAt(0xc000)).toBeUndefined();
    expect(rig.bus.deviceAt(0xd000)).toBe(rig.ide.busMaster);
    rig.bus.write(0xd004, 4, 0x1234);
    expect(rig.bus.read(0xd004, 4)).toBe(0x1234);
    // I/O space disabled: the block disappears; re-enabled: it is back.
    write(7, 1, 0x04, 0x0000, 2);
    expect(rig.bus.deviceAt(0xd000)).toBeUndefined();
    expect(rig.bus.read(0xd004, 4)).toBe(0xffffffff);
    write(7, 1, 0x04, 0xffff, 2);
    expect(read(7, 1, 0x04, 2)).toBe(0x0005); // only I/O space and bus master are writable
    expect(rig.bus.read(0xd004, 4)).toBe(0x1234);
  });

  it('a BAR moved onto ports another device owns stays undecoded', () => {
    const { read, write } = setup();
    write(7, 1, 0x20, 0x0020); // the PIC's ports
    expect(read(7, 1, 0x20)).toBe(0x0021);
    expect(rig.ide.bmideConflict).toMatch(/pic8259/);
    expect(rig.bus.deviceAt(0x20)).toBe(rig.pic);
    write(7, 1, 0x20, 0xe000);
    expect(rig.bus.deviceAt(0xe000)).toBe(rig.ide.busMaster);
    expect(rig.ide.bmideConflict).toBeUndefined();
  });

  it('IDETIM decode enables (41h/43h bit 7) switch the legacy channel ports', () => {
    const { read, write } = setup();
    expect(read(7, 1, 0x40)).toBe(0x80008000);
    expect(rig.bus.read(0x1f7, 1)).toBe(0x50);
    write(7, 1, 0x41, 0x00, 1);
    expect(rig.bus.read(0x1f7, 1)).toBe(0xff);
    expect(rig.bus.read(0x177, 1)).toBe(0x00); // secondary still decoded (no drives)
    write(7, 1, 0x41, 0x80, 1);
    expect(rig.bus.read(0x1f7, 1)).toBe(0x50);
  });

  it('refuses two functions at one address', () => {
    const { pci } = setup();
    expect(() => pci.attach(7, 1, new Piix4IsaBridge())).toThrow(RangeError);
  });
});

describe('PIIX4 IDE without the firmware step', () => {
  it('starts as after PCI reset: BAR4 = 1, command 0, legacy and BMIDE ports undecoded until programmed', () => {
    const bus = new IoBus();
    const ide = new Piix4Ide({ memory: new GuestMemory(65536), bus, primaryIrq: { set() {} }, secondaryIrq: { set() {} }, firmwareBmideBase: null });
    expect(ide.config.readConfig(0x20, 4)).toBe(0x00000001);
    expect(ide.config.readConfig(0x04, 2)).toBe(0);
    expect(ide.config.readConfig(0x40, 4)).toBe(0);
    expect(bus.read(0x1f7, 1)).toBe(0xff);
    ide.config.writeConfig(0x40, 2, 0x8000);
    ide.config.writeConfig(0x20, 4, 0xb000);
    expect(bus.deviceAt(0xb000)).toBeUndefined(); // I/O space still disabled
    ide.config.writeConfig(0x04, 2, 0x0001);
    expect(bus.deviceAt(0xb000)).toBe(ide.busMaster);
    expect(bus.read(0x1f7, 1)).toBe(0x00); // decoded, no drive attached
  });
});
