import { beforeEach, describe, expect, it } from 'vitest';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Uart16550 } from '../../root-partition/devices/uart/uart16550.ts';
import { ComPort } from '../../root-partition/devices/uart/uart16550-registers.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';

const B = 0x3f8;
const THR = B,
  IER = B + 1,
  IIR = B + 2,
  LCR = B + 3,
  MCR = B + 4,
  LSR = B + 5,
  MSR = B + 6,
  SCR = B + 7;

let bus: IoBus;
let uart: Uart16550;
let irq: boolean[];
let out: number[];
let sinkCalls: number;

beforeEach(() => {
  bus = new IoBus();
  irq = [];
  out = [];
  sinkCalls = 0;
  uart = new Uart16550({
    base: ComPort.Com1.base,
    irq: { set: (l) => irq.push(l) },
    sink: (b) => {
      sinkCalls++;
      out.push(...b);
    },
  });
  bus.register(uart);
});

const rd = (p: number) => bus.read(p, 1);
const wr = (p: number, v: number) => bus.write(p, 1, v);
const line = () => irq.at(-1) ?? false;

describe('16550 UART', () => {
  it('reset values: IER 0, IIR 01, LCR 0, MCR 0, LSR 60, MSR with CTS/DSR/DCD, SCR 0', () => {
    expect([rd(IER), rd(IIR), rd(LCR), rd(MCR), rd(LSR), rd(MSR) & 0xf0, rd(SCR)]).toEqual([0, 0x01, 0, 0, 0x60, 0xb0, 0]);
    expect(ComPort.Com2).toEqual({ base: 0x2f8, irq: 3 });
  });

  it('DLAB switches offsets 0/1 to the divisor latch', () => {
    wr(LCR, 0x83);
    wr(THR, 0x01);
    wr(IER, 0x00);
    expect(uart.baudRate).toBe(115200);
    wr(THR, 0x0c);
    expect(rd(THR)).toBe(0x0c);
    expect(uart.baudRate).toBe(9600);
    expect(out).toEqual([]); // divisor writes are not data
    wr(LCR, 0x03);
    expect(rd(LCR)).toBe(0x03);
    expect(rd(IER)).toBe(0);
    wr(SCR, 0x5a);
    expect(rd(SCR)).toBe(0x5a);
  });

  it('transmits to the sink; rep outsb delivers the whole buffer in one sink call and one exit', () => {
    wr(THR, 0x41);
    expect(out).toEqual([0x41]);
    const mem = new GuestMemory(65536);
    const text = new TextEncoder().encode('hello, console\n');
    mem.write(0x100, text);
    sinkCalls = 0;
    expect(bus.writeString(THR, 1, mem.view(0x100, text.length), text.length)).toBe(text.length);
    expect(sinkCalls).toBe(1);
    expect(Buffer.from(out.slice(1)).toString()).toBe('hello, console\n');
    expect(bus.counters(uart)!.stringOps).toBe(1);
    expect(rd(LSR) & 0x60).toBe(0x60);
  });

  it('THRE interrupt: raised when enabled, cleared by reading IIR, re-raised after a THR write; gated by OUT2', () => {
    wr(IER, 0x02);
    expect(rd(IIR) & 0x0f).toBe(0x02); // reading it clears it
    expect(line()).toBe(false); // OUT2 clear: the IRQ never reaches the PIC
    expect(rd(IIR)).toBe(0x01);
    wr(MCR, 0x08);
    wr(THR, 0x42);
    expect(line()).toBe(true);
    expect(rd(IIR)).toBe(0x02);
    expect(line()).toBe(false);
    expect(rd(IIR)).toBe(0x01);
    wr(IER, 0x00);
    wr(IER, 0x02); // re-enabling ETBEI with THR empty raises it again
    expect(line()).toBe(true);
    wr(MCR, 0x00);
    expect(line()).toBe(false);
  });

  it('receive without FIFO: data-available interrupt, DR in LSR, cleared by reading RBR', () => {
    wr(MCR, 0x0b);
    wr(IER, 0x01);
    uart.receive(Uint8Array.of(0x61, 0x62));
    expect(line()).toBe(true);
    expect(rd(IIR)).toBe(0x04);
    expect(rd(LSR)).toBe(0x61);
    expect(rd(THR)).toBe(0x61);
    expect(rd(THR)).toBe(0x62); // the host queue refills the holding register
    expect(rd(LSR)).toBe(0x60);
    expect(line()).toBe(false);
    expect(rd(IIR)).toBe(0x01);
  });

  it('FIFO mode: IIR bits 7:6, trigger level, character timeout below the trigger', () => {
    wr(FCR_PORT(), 0xc7); // enable + clear both + trigger 14
    expect(rd(IIR) & 0xc0).toBe(0xc0);
    wr(MCR, 0x08);
    wr(IER, 0x01);
    uart.receive(new Uint8Array(20).map((_, i) => 0x30 + i));
    expect(rd(IIR)).toBe(0xc4); // 16 in the FIFO ≥ 14
    for (let i = 0; i < 3; i++) rd(THR);
    expect(rd(IIR)).toBe(0xc4); // refilled from the host queue: still 16
    for (let i = 0; i < 8; i++) rd(THR);
    expect(rd(IIR)).toBe(0xcc); // 9 left < 14: timeout indication
    const rest: number[] = [];
    while (rd(LSR) & 1) rest.push(rd(THR));
    expect(rest).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19].map((i) => 0x30 + i));
    expect(rd(IIR)).toBe(0xc1);
    expect(line()).toBe(false);
  });

  it('rep insb drains the receive FIFO in one exit', () => {
    wr(FCR_PORT(), 0x01);
    uart.receive(new TextEncoder().encode('abc'));
    const mem = new GuestMemory(65536);
    expect(bus.readString(THR, 1, mem.view(0x200, 3), 3)).toBe(3);
    expect(Buffer.from(mem.read(0x200, 3)).toString()).toBe('abc');
    expect(rd(LSR) & 1).toBe(0);
  });

  it('loopback: TX returns to RX, MSR mirrors MCR, overrun sets OE and a line-status interrupt', () => {
    wr(MCR, 0x10 | 0x03);
    expect(rd(MSR) & 0xf0).toBe(0x30); // RTS→CTS, DTR→DSR
    wr(IER, 0x05);
    wr(THR, 0x55);
    expect(out).toEqual([]);
    expect(rd(LSR) & 0x01).toBe(1);
    wr(THR, 0x66); // 16450 mode: overwrites, overrun
    expect(rd(IIR)).toBe(0x06);
    expect(line()).toBe(false); // loopback disconnects the IRQ
    expect(rd(LSR) & 0x03).toBe(0x03);
    expect(rd(LSR) & 0x02).toBe(0); // OE cleared by reading LSR
    expect(rd(THR)).toBe(0x66);
    // Host input waits while in loopback and arrives when it ends.
    uart.receive(Uint8Array.of(0x77));
    expect(rd(LSR) & 1).toBe(0);
    wr(MCR, 0x0b);
    expect(rd(THR)).toBe(0x77);
  });

  it('modem status: loopback MCR changes set delta bits and a modem-status interrupt, cleared by reading MSR', () => {
    wr(MCR, 0x10);
    rd(MSR);
    wr(IER, 0x08);
    wr(MCR, 0x10 | 0x02 | 0x08); // RTS → CTS, OUT2 → DCD
    expect(rd(IIR)).toBe(0x00);
    expect(rd(MSR)).toBe(0x90 | 0x01 | 0x08);
    expect(rd(IIR)).toBe(0x01);
    wr(MCR, 0x10 | 0x04);
    wr(MCR, 0x10);
    expect(rd(MSR) & 0x0f).toBe(0x04 | 0x01 | 0x08); // RI trailing edge, CTS and DCD changed
  });

  it('interrupt priority: line status over data available over THRE', () => {
    wr(MCR, 0x10);
    wr(IER, 0x07);
    wr(THR, 1);
    wr(THR, 2); // overrun
    expect(rd(IIR)).toBe(0x06);
    rd(LSR);
    expect(rd(IIR)).toBe(0x04);
    rd(THR);
    expect(rd(IIR)).toBe(0x02);
    expect(rd(IIR)).toBe(0x01);
  });

  it('16-bit accesses read consecutive registers', () => {
    wr(LCR, 0x03);
    wr(MCR, 0x08);
    expect(bus.read(LCR, 2)).toBe(0x0803);
  });
});

function FCR_PORT(): number {
  return IIR;
}
