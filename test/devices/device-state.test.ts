import { afterEach, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Pic8259 } from '../../root-partition/devices/pic/pic8259.ts';
import { Uart16550 } from '../../root-partition/devices/uart/uart16550.ts';
import { Gen1Chipset } from '../../root-partition/devices/gen1-chipset.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { BM, IdeRig, P, expectSameBytes, pattern } from './ide-rig.ts';
import { Piix4Ide } from '../../root-partition/devices/ide/piix4-ide.ts';
import { PciBus } from '../../root-partition/devices/pci/pci-bus.ts';
import { I440bxHostBridge, Piix4IsaBridge } from '../../root-partition/devices/pci/pci-config-space.ts';

const rigs: IdeRig[] = [];
afterEach(() => rigs.splice(0).forEach((r) => r.close()));

function initPc(bus: IoBus): void {
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
}

describe('device saved state', () => {
  it('PIC: a restored pair continues with the same IRR/ISR/IMR, ELCR and priority', () => {
    const a = new Pic8259();
    const busA = new IoBus();
    busA.register(a);
    initPc(busA);
    busA.write(0x4d1, 1, 0x08);
    busA.write(0x21, 1, 0x80);
    a.setIrq(3, true);
    a.setIrq(5, true);
    expect(a.acknowledge()).toBe(0x0b);
    a.setIrq(11, true); // level-triggered on the slave, reaches master IR2 (above the in-service IR3)
    const rec = a.saveState();
    const b = new Pic8259();
    b.restoreState(rec);
    expectSameBytes(b.saveState().state, rec.state);
    const busB = new IoBus();
    busB.register(b);
    busB.write(0x20, 1, 0x0b);
    expect(busB.read(0x20, 1)).toBe(0x08);
    expect(busB.read(0x21, 1)).toBe(0x80);
    expect(busB.read(0x4d1, 1)).toBe(0x08);
    expect(b.acknowledge()).toBe(0x73);
    b.setIrq(11, false); // the device is serviced before its EOI
    busB.write(0xa0, 1, 0x20);
    busB.write(0x20, 1, 0x20); // ends IR2
    busB.write(0x20, 1, 0x20); // ends IR3
    expect(b.acknowledge()).toBe(0x0d);
  });

  it('PIC: records that are not its own, of another version, or out of range are refused and change nothing', () => {
    const pic = new Pic8259();
    pic.setIrq(4, true);
    const before = pic.saveState();
    expect(() => pic.restoreState({ ...before, name: 'com1' })).toThrow(/expected pic8259/);
    expect(() => pic.restoreState({ ...before, version: 2 })).toThrow(/version 2/);
    expect(() => pic.restoreState({ ...before, state: Uint8Array.of(0xc1) })).toThrow(expect.objectContaining({ code: 'HV_ERR_DEVICE_STATE' }));
    const bad = pack({ master: { irr: 300 }, slave: {}, output: false });
    expect(() => pic.restoreState({ ...before, state: bad })).toThrow(expect.objectContaining({ code: 'HV_ERR_DEVICE_STATE' }));
    expectSameBytes(pic.saveState().state, before.state);
  });

  it('UART: registers, FIFO contents, pending host input and the IRQ line survive', () => {
    const irqA: boolean[] = [];
    const a = new Uart16550({ name: 'com1', base: 0x3f8, irq: { set: (l) => irqA.push(l) } });
    const bus = new IoBus();
    bus.register(a);
    bus.write(0x3fb, 1, 0x80);
    bus.write(0x3f8, 1, 0x0c);
    bus.write(0x3fb, 1, 0x03);
    bus.write(0x3fa, 1, 0x81); // FIFO, trigger 4
    bus.write(0x3fc, 1, 0x0b);
    bus.write(0x3f9, 1, 0x01);
    bus.write(0x3ff, 1, 0x5a);
    a.receive(new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz'));
    expect(irqA.at(-1)).toBe(true);
    const rec = a.saveState();
    const irqB: boolean[] = [];
    const b = new Uart16550({ name: 'com1', base: 0x3f8, irq: { set: (l) => irqB.push(l) } });
    b.restoreState(rec);
    expect(irqB).toEqual([true]);
    expect(b.baudRate).toBe(9600);
    const busB = new IoBus();
    busB.register(b);
    expect(busB.read(0x3fa, 1)).toBe(0xc4);
    expect(busB.read(0x3ff, 1)).toBe(0x5a);
    let text = '';
    while (busB.read(0x3fd, 1) & 1) text += String.fromCharCode(busB.read(0x3f8, 1));
    expect(text).toBe('abcdefghijklmnopqrstuvwxyz');
    expect(irqB.at(-1)).toBe(false);
    expect(() => b.restoreState({ ...rec, name: 'com2' })).toThrow(/expected com1/);
  });

  it('IDE: a READ SECTORS stopped mid-block and a DMA waiting for its engine continue after restore', () => {
    const a = new IdeRig();
    rigs.push(a);
    const data = a.fillDisk(10, 3, 21);
    a.setup28(10, 3);
    a.out8(P.cmd, AtaCommand.ReadSectors);
    a.in8(P.cmd);
    const head = new Uint8Array(200);
    for (let i = 0; i < 100; i++) new DataView(head.buffer).setUint16(2 * i, a.bus.read(P.data, 2), true);
    const rec = a.ide.saveState();

    // A second controller on the same disk (as after a restore into a fresh VMWP).
    const b = new IdeRig({ backend: a.disk });
    rigs.push(b);
    b.ide.restoreState(rec);
    expect(b.in8(P.ctl)).toBe(0x58);
    const rest = b.memory.view(0x10000, 3 * 512 - 200);
    expect(b.bus.readString(P.data, 2, rest, rest.length / 2)).toBe(rest.length / 2);
    const got = new Uint8Array(3 * 512);
    got.set(head);
    got.set(rest, 200);
    expectSameBytes(got, data);
    expect(b.in8(P.cmd)).toBe(0x50);

    // DMA accepted by the drive, engine not started yet.
    a.writePrd(0x8000, [[0x20000, 1024]]);
    a.bus.write(BM + 4, 4, 0x8000);
    a.bus.write(BM, 1, 0x08);
    a.setup28(10, 2);
    a.out8(P.cmd, AtaCommand.ReadDma);
    const rec2 = a.ide.saveState();
    b.memory.write(0x8000, a.memory.read(0x8000, 8));
    b.ide.restoreState(rec2);
    b.bus.write(BM, 1, 0x09);
    expect(b.in8(P.cmd)).toBe(0x50);
    expectSameBytes(b.memory.read(0x20000, 1024), data.subarray(0, 1024));
  });

  it('IDE: a WRITE MULTIPLE with a half-written block survives; the block lands on disk after restore', () => {
    const a = new IdeRig();
    rigs.push(a);
    a.out8(P.count, 2);
    a.out8(P.cmd, AtaCommand.SetMultipleMode);
    const data = pattern(1024, 33);
    a.setup28(40, 2);
    a.out8(P.cmd, AtaCommand.WriteMultiple);
    a.memory.write(0x1000, data);
    a.bus.writeString(P.data, 2, a.memory.view(0x1000, 300), 150);
    const rec = a.ide.saveState();
    const b = new IdeRig({ backend: a.disk });
    rigs.push(b);
    b.ide.restoreState(rec);
    expect(b.drive.multipleSectors).toBe(2);
    b.memory.write(0x1000, data);
    expect(b.bus.writeString(P.data, 2, b.memory.view(0x1000 + 300, 724), 362)).toBe(362);
    expect(b.in8(P.cmd)).toBe(0x50);
    expectSameBytes(a.readDisk(40, 2), data); // b's drive writes to a's disk
  });

  it('IDE: a record from a controller with other drives, or with an impossible data phase, is refused and changes nothing', () => {
    const a = new IdeRig();
    rigs.push(a);
    a.setup28(0, 1);
    a.out8(P.cmd, AtaCommand.ReadSectors);
    const rec = a.ide.saveState();
    const bus = new IoBus();
    const lonely = new Piix4Ide({ memory: new GuestMemory(65536), bus, primaryIrq: { set() {} }, secondaryIrq: { set() {} } });
    expect(() => lonely.restoreState(rec)).toThrow(/drive presence|absent drive/);
    expect(lonely.channels[0].pio).toBeUndefined();
    const small = new IdeRig({ sectors: 1 });
    rigs.push(small);
    a.setup28(1000, 8);
    a.out8(P.cmd, AtaCommand.ReadSectors);
    const before = small.ide.saveState();
    expect(() => small.ide.restoreState(a.ide.saveState())).toThrow(expect.objectContaining({ code: 'HV_ERR_DEVICE_STATE' }));
    expectSameBytes(small.ide.saveState().state, before.state);
  });

  it('Gen1Chipset: all devices round-trip; BAR4 moved by the guest is decoded at its restored place', () => {
    const memory = new GuestMemory(1024 * 1024);
    const a = new Gen1Chipset({ memory });
    initPc(a.bus);
    a.bus.write(0xcf8, 4, 0x80003920);
    a.bus.write(0xcfc, 4, 0xd000);
    a.bus.write(0x3fb, 1, 0x03);
    const records = a.saveState();
    expect(records.map((r) => r.name)).toEqual(['pic8259', 'com1', 'com2', 'pci-config', 'piix4-ide']);
    const b = new Gen1Chipset({ memory });
    b.restoreState(records);
    expect(b.bus.deviceAt(0xd000)).toBe(b.ide.busMaster);
    expect(b.bus.deviceAt(0xc000)).toBeUndefined();
    expect(b.bus.read(0xcf8, 4)).toBe(0x80003920);
    expect(b.bus.read(0xcfc, 4)).toBe(0xd001);
    expect(b.bus.read(0x3fb, 1)).toBe(0x03);
    expect(b.pic.master.vectorBase).toBe(0x08);
    // All or nothing.
    const c = new Gen1Chipset({ memory });
    const broken = records.map((r) => (r.name === 'piix4-ide' ? { ...r, state: Uint8Array.of(0x80) } : r));
    expect(() => c.restoreState(broken)).toThrow(expect.objectContaining({ code: 'HV_ERR_DEVICE_STATE' }));
    expect(c.pic.master.vectorBase).toBe(0);
    expect(() => c.restoreState(records.slice(1))).toThrow(/no record for pic8259/);
  });
});

describe('device saved state: PCI identity', () => {
  it('a configuration space saved from another function is refused', () => {
    const a = new PciBus();
    a.attach(0, 0, new I440bxHostBridge());
    const b = new PciBus();
    b.attach(0, 0, new Piix4IsaBridge());
    expect(() => b.restoreState(a.saveState())).toThrow(/another PCI function/);
    const c = new PciBus();
    c.attach(0, 0, new I440bxHostBridge());
    c.restoreState(a.saveState());
  });
});
