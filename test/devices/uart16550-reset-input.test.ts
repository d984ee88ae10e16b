/**
 * Host input that waits while the UART is in loopback (the receiver is disconnected from the
 * line) reaches the receiver when a reset takes loopback away, as it does when the guest clears
 * MCR.LOOP: it must not stay stranded until the next host byte. Found by the uart fuzz target.
 */
import { describe, expect, it } from 'vitest';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Uart16550 } from '../../root-partition/devices/uart/uart16550.ts';

describe('16550 reset and pending host input', () => {
  it('input held back by loopback is receivable after reset', () => {
    const bus = new IoBus();
    const uart = new Uart16550({ base: 0x3f8, irq: { set() {} } });
    bus.register(uart);
    bus.write(0x3fc, 1, 0x10); // MCR.LOOP
    expect(uart.receive(Uint8Array.of(0x41, 0x42))).toBe(2);
    expect(bus.read(0x3fd, 1) & 1).toBe(0); // the receiver does not see the line in loopback
    uart.reset();
    expect(bus.read(0x3fd, 1) & 1).toBe(1);
    expect(bus.read(0x3f8, 1)).toBe(0x41);
    expect(bus.read(0x3f8, 1)).toBe(0x42);
    expect(bus.read(0x3fd, 1) & 1).toBe(0);
    expect(uart.pendingInput).toBe(0);
  });
});
