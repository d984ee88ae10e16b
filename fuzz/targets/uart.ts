/**
 * The 16550 UART (root-partition/devices/uart): register traffic of any size, string output and
 * host input, as 6-byte operations `[op][reg][u32 value]`. Bugs: an exception escaping the device,
 * host input held beyond the device's bound or that cannot be drained, or a UART whose loopback
 * path does not echo after reset.
 */
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import type { AccessSize } from '../../root-partition/devices/port-io.ts';
import { Uart16550 } from '../../root-partition/devices/uart/uart16550.ts';
import { invariant, type FuzzTarget } from '../engine/target.ts';
import { InputBuilder, InputCursor } from './input-cursor.ts';

const SIZES: AccessSize[] = [1, 2, 4];
const MAX_PENDING = 256;

export function createTarget(): FuzzTarget {
  // One bus and UART for all inputs: building an I/O bus (a 64 Ki-entry port table) costs more
  // than most inputs.
  const bus = new IoBus();
  let transmitted = 0;
  const uart = new Uart16550({
    base: 0x3f8,
    irq: { set() {} },
    sink: (b) => {
      transmitted += b.length;
    },
    maxPendingInput: MAX_PENDING,
  });
  bus.register(uart);
  const buf = new Uint8Array(256).map((_, i) => i);
  /** Reset, then read until the receiver is empty: every byte of host input must come out. */
  const resetAndDrain = () => {
    uart.reset();
    for (let i = 0; i <= MAX_PENDING + 16 && (bus.read(0x3fd, 1) & 1) === 1; i++) bus.read(0x3f8, 1);
    invariant(uart.pendingInput === 0 && (bus.read(0x3fd, 1) & 1) === 0, 'host input does not drain after reset');
  };
  const program = (ops: [number, number, number][]) => {
    const b = new InputBuilder();
    for (const [op, reg, v] of ops) b.u8(op).u8(reg).u32(v);
    return b.build();
  };
  return {
    name: 'uart',
    description: '16550 UART registers, string output and host input',
    maxInputBytes: 6 * 300,
    seeds: () => [
      program([
        [0, 3, 0x80],
        [0, 0, 1],
        [0, 1, 0],
        [0, 3, 3],
        [0, 2, 0xc7],
        [0, 1, 0x0f],
        [0, 0, 0x41],
        [1, 5, 0],
        [1, 2, 0],
      ]),
      program([
        [3, 0, 0x4142],
        [1, 0, 0],
        [1, 5, 0],
        [0, 4, 0x10],
        [0, 0, 0x5a],
        [1, 0, 0],
        [2, 0, 40],
      ]),
    ],
    run(input) {
      resetAndDrain();
      transmitted = 0;
      const c = new InputCursor(input);
      while (!c.done) {
        const op = c.u8() % 4;
        const sel = c.u8();
        const value = c.u32();
        const reg = sel & 7;
        const size = SIZES[(sel >> 3) % 3]!;
        if (op === 0) bus.write(0x3f8 + reg, size, value);
        else if (op === 1) bus.read(0x3f8 + reg, size);
        else if (op === 2) bus.writeString(0x3f8 + reg, 1, buf, value & 0xff);
        else uart.receive(buf.subarray(0, value & 0xff));
        if (bus.lastFault !== undefined) throw bus.lastFault;
        invariant(uart.pendingInput <= MAX_PENDING, `${uart.pendingInput} bytes of host input held (bound ${MAX_PENDING})`);
      }
      invariant(transmitted <= input.length * 256, 'more bytes transmitted than the guest wrote');
      uart.reset();
      bus.write(0x3fc, 1, 0x10);
      bus.write(0x3f8, 1, 0x5a);
      invariant((bus.read(0x3fd, 1) & 1) === 1 && bus.read(0x3f8, 1) === 0x5a, 'loopback does not echo after reset');
      resetAndDrain();
    },
    isExpectedError: () => false,
  };
}
