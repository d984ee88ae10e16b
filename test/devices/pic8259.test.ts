import { beforeEach, describe, expect, it } from 'vitest';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Pic8259 } from '../../root-partition/devices/pic/pic8259.ts';

let bus: IoBus;
let pic: Pic8259;
let wakeups: number;

/** The PC BIOS initialisation: vectors 0x08 (master) and 0x70 (slave), cascade on IR2, 8086 mode. */
function initPc(): void {
  const seq: [number, number][] = [
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
  ];
  for (const [port, v] of seq) bus.write(port, 1, v);
}

beforeEach(() => {
  bus = new IoBus();
  pic = new Pic8259();
  bus.register(pic);
  wakeups = 0;
  pic.onInterruptRequest = () => wakeups++;
  initPc();
});

const readIrr = (port: number) => {
  bus.write(port, 1, 0x0a);
  return bus.read(port, 1);
};
const readIsr = (port: number) => {
  bus.write(port, 1, 0x0b);
  return bus.read(port, 1);
};

describe('8259A pair', () => {
  it('after ICW1–4: IMR as written, IRR/ISR empty, no interrupt', () => {
    expect(bus.read(0x21, 1)).toBe(0x00);
    expect(readIrr(0x20)).toBe(0);
    expect(readIsr(0x20)).toBe(0);
    expect(pic.hasInterrupt()).toBe(false);
    expect(pic.master.vectorBase).toBe(0x08);
    expect(pic.slave.vectorBase).toBe(0x70);
    expect(pic.master.x86Mode).toBe(true);
    bus.write(0x21, 1, 0xb8);
    expect(bus.read(0x21, 1)).toBe(0xb8);
  });

  it('edge-triggered IRQ: IRR on the rising edge, ISR on INTA, cleared by non-specific EOI', () => {
    pic.setIrq(4, true);
    expect(wakeups).toBe(1);
    expect(readIrr(0x20)).toBe(0x10);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x0c);
    expect(readIrr(0x20)).toBe(0x00);
    expect(readIsr(0x20)).toBe(0x10);
    expect(pic.hasInterrupt()).toBe(false);
    // Held high: no new edge, no new request.
    pic.setIrq(4, true);
    expect(pic.hasInterrupt()).toBe(false);
    bus.write(0x20, 1, 0x20);
    expect(readIsr(0x20)).toBe(0);
    expect(pic.hasInterrupt()).toBe(false);
    pic.setIrq(4, false);
    pic.setIrq(4, true);
    expect(pic.acknowledge()).toBe(0x0c);
  });

  it('priority: IRQ 0 first; an in-service IRQ blocks lower ones until its EOI', () => {
    pic.setIrq(3, true);
    pic.setIrq(1, true);
    expect(pic.acknowledge()).toBe(0x09);
    expect(pic.hasInterrupt()).toBe(false); // IR3 is lower than in-service IR1
    pic.setIrq(0, true);
    expect(pic.acknowledge()).toBe(0x08); // higher priority nests
    bus.write(0x20, 1, 0x20); // EOI for IR0
    expect(pic.hasInterrupt()).toBe(false);
    bus.write(0x20, 1, 0x61); // specific EOI for IR1
    expect(pic.acknowledge()).toBe(0x0b);
  });

  it('masking holds a request in IRR without raising INT', () => {
    bus.write(0x21, 1, 0x40);
    pic.setIrq(6, true);
    expect(readIrr(0x20)).toBe(0x40);
    expect(pic.hasInterrupt()).toBe(false);
    expect(wakeups).toBe(0);
    bus.write(0x21, 1, 0x00);
    expect(pic.hasInterrupt()).toBe(true);
    expect(wakeups).toBe(1);
  });

  it('slave IRQs cascade through master IR2 and need EOI on both chips', () => {
    pic.setIrq(14, true);
    expect(readIrr(0xa0)).toBe(0x40);
    expect(readIrr(0x20)).toBe(0x04);
    expect(pic.acknowledge()).toBe(0x76);
    expect(readIsr(0xa0)).toBe(0x40);
    expect(readIsr(0x20)).toBe(0x04);
    pic.setIrq(15, true);
    expect(pic.hasInterrupt()).toBe(false); // master IR2 in service
    bus.write(0xa0, 1, 0x20);
    bus.write(0x20, 1, 0x20);
    expect(pic.acknowledge()).toBe(0x77);
  });

  it('spurious IRQ 7 and 15: the request vanished before INTA, ISR stays clear', () => {
    expect(pic.acknowledge()).toBe(0x0f);
    expect(readIsr(0x20)).toBe(0);
    // Slave request that drops after reaching the master (edge latched on IR2).
    bus.write(0xa0 + 1, 1, 0x00);
    bus.write(0x4d1, 1, 0x40); // IRQ 14 level-triggered so dropping the line withdraws it
    pic.setIrq(14, true);
    expect(readIrr(0x20)).toBe(0x04);
    pic.setIrq(14, false);
    expect(pic.acknowledge()).toBe(0x77);
    expect(readIsr(0xa0)).toBe(0);
    expect(readIsr(0x20)).toBe(0x04); // master IR2 in service: the OS sends the master its EOI
  });

  it('ELCR: level-triggered lines follow the pin and re-request after EOI while high', () => {
    bus.write(0x4d0, 1, 0xff);
    bus.write(0x4d1, 1, 0xff);
    expect(bus.read(0x4d0, 1)).toBe(0xf8); // IRQ 0–2 are edge only
    expect(bus.read(0x4d1, 1)).toBe(0xde); // IRQ 8 and 13 are edge only
    expect(bus.read(0x4d0, 2)).toBe(0xdef8);
    pic.setIrq(11, true);
    expect(pic.acknowledge()).toBe(0x73);
    bus.write(0xa0, 1, 0x20);
    bus.write(0x20, 1, 0x20);
    expect(pic.hasInterrupt()).toBe(true); // still asserted
    expect(readIrr(0xa0)).toBe(0x08);
    pic.setIrq(11, false);
    expect(readIrr(0xa0)).toBe(0x00); // a level request goes with its pin
    // Master IR2 is edge-triggered and already latched the cascade: INTA finds the slave empty.
    expect(pic.acknowledge()).toBe(0x77);
    bus.write(0x20, 1, 0x20);
    expect(pic.hasInterrupt()).toBe(false);
    // On the master, a level line that drops before INTA leaves nothing: spurious IRQ 7.
    pic.setIrq(5, true);
    expect(readIrr(0x20)).toBe(0x20);
    pic.setIrq(5, false);
    expect(readIrr(0x20)).toBe(0x00);
    expect(pic.acknowledge()).toBe(0x0f);
  });

  it('OCW2 rotation and set-priority change the priority order', () => {
    bus.write(0x20, 1, 0xc4); // IR4 lowest, so IR5 highest
    pic.setIrq(3, true);
    pic.setIrq(6, true);
    expect(pic.acknowledge()).toBe(0x0e);
    bus.write(0x20, 1, 0xa0); // rotate on non-specific EOI: IR6 becomes lowest
    expect(pic.master.priorityBase).toBe(7);
    expect(pic.acknowledge()).toBe(0x0b);
  });

  it('auto-EOI mode never sets ISR; poll mode returns 0x80 | IR', () => {
    bus.write(0x20, 1, 0x11);
    bus.write(0x21, 1, 0x08);
    bus.write(0x21, 1, 0x04);
    bus.write(0x21, 1, 0x03); // 8086 mode + AEOI
    pic.setIrq(5, true);
    expect(pic.acknowledge()).toBe(0x0d);
    expect(readIsr(0x20)).toBe(0);
    pic.setIrq(1, true);
    bus.write(0x20, 1, 0x0c); // OCW3 poll
    expect(bus.read(0x20, 1)).toBe(0x81);
    expect(pic.hasInterrupt()).toBe(false);
    bus.write(0x20, 1, 0x0c);
    expect(bus.read(0x20, 1)).toBe(0x00);
  });

  it('special mask mode lets lower-priority IRs through while one is in service', () => {
    pic.setIrq(1, true);
    expect(pic.acknowledge()).toBe(0x09);
    bus.write(0x21, 1, 0x02); // mask the in-service IR1
    bus.write(0x20, 1, 0x68); // OCW3: set special mask mode
    pic.setIrq(5, true);
    expect(pic.acknowledge()).toBe(0x0d);
  });

  it('ICW1 re-initialisation clears IMR, ISR and edge requests', () => {
    bus.write(0x21, 1, 0xff);
    pic.setIrq(3, true);
    bus.write(0x20, 1, 0x11);
    bus.write(0x21, 1, 0x20);
    bus.write(0x21, 1, 0x04);
    bus.write(0x21, 1, 0x01);
    expect(bus.read(0x21, 1)).toBe(0);
    expect(readIrr(0x20)).toBe(0);
    expect(pic.hasInterrupt()).toBe(false);
  });

  it('line() gives devices an InterruptLine; IRQ 2 is redirected to IRQ 9; bad lines are refused', () => {
    pic.line(9).set(true);
    expect(pic.acknowledge()).toBe(0x71);
    bus.write(0xa0, 1, 0x20);
    bus.write(0x20, 1, 0x20);
    pic.setIrq(9, false);
    pic.setIrq(2, true);
    expect(pic.acknowledge()).toBe(0x71);
    expect(() => pic.setIrq(16, true)).toThrow(RangeError);
    expect(() => pic.line(-1)).toThrow(RangeError);
  });
});
