import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BM, IdeRig, P } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';
import type { AccessSize } from '../../root-partition/devices/port-io.ts';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Pic8259 } from '../../root-partition/devices/pic/pic8259.ts';
import { Uart16550 } from '../../root-partition/devices/uart/uart16550.ts';

/**
 * Random port traffic from a hostile guest against the whole IDE controller (task file, control,
 * data port string I/O, BMIDE, random PRD tables in guest memory): no exception may escape a
 * device, nothing outside guest memory is touched, and after a software reset the drive works.
 */
const rig = new IdeRig({ sectors: 256 });
afterAll(() => rig.close());

const IDE_PORTS = [P.data, P.err, P.count, P.lbaLow, P.lbaMid, P.lbaHigh, P.dev, P.cmd, P.ctl, BM, BM + 2, BM + 4, BM + 6] as const;
const COMMANDS = [0x20, 0x24, 0x25, 0x29, 0x30, 0x34, 0x35, 0x39, 0x3d, 0x40, 0x91, 0xc4, 0xc5, 0xc6, 0xc8, 0xca, 0xe7, 0xec, 0xef, 0x90, 0x00, 0xff];

const op = fc.oneof(
  // A well-formed transfer in the middle of the garbage, so the data paths run in odd states too.
  fc.record({
    kind: fc.constant('io' as const),
    cmd: fc.constantFrom(0x20, 0x30, 0xc4, 0xc5, 0xc8, 0xca),
    lba: fc.integer({ min: 0, max: 250 }),
    count: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({
    kind: fc.constant('out' as const),
    port: fc.constantFrom(...IDE_PORTS),
    size: fc.constantFrom<AccessSize>(1, 2, 4),
    value: fc.integer({ min: 0, max: 0xffffffff }),
  }),
  fc.record({ kind: fc.constant('in' as const), port: fc.constantFrom(...IDE_PORTS), size: fc.constantFrom<AccessSize>(1, 2, 4) }),
  fc.record({
    kind: fc.constant('cmd' as const),
    cmd: fc.constantFrom(...COMMANDS),
    count: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 255 })),
    lba: fc.oneof(fc.integer({ min: 0, max: 250 }), fc.integer({ min: 0, max: 0x0fffffff })),
  }),
  fc.record({ kind: fc.constant('ins' as const), size: fc.constantFrom<AccessSize>(1, 2, 4), count: fc.integer({ min: 0, max: 40000 }) }),
  fc.record({ kind: fc.constant('outs' as const), size: fc.constantFrom<AccessSize>(2, 4), count: fc.integer({ min: 0, max: 40000 }) }),
  fc.record({
    kind: fc.constant('prd' as const),
    entry: fc.integer({ min: 0, max: 3 }),
    base: fc.oneof(
      fc.integer({ min: 0x10, max: 0xf0 }).map((x) => x << 12),
      fc.integer({ min: 0, max: 0xffffffff }),
    ),
    bytes: fc.oneof(fc.constantFrom(0, 2, 510, 512, 1000, 4096), fc.integer({ min: 0, max: 0xffff })),
    eot: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('start' as const), dir: fc.boolean(), table: fc.constantFrom(0x8000, 0x8004, 0xfff8, 0xfffffffc, 1024 * 1024 - 8) }),
);

describe('hostile guest fuzz', () => {
  it('random IDE/BMIDE traffic never escapes a device and leaves a working drive', () => {
    let moved = 0;
    let movedBefore = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 5, maxLength: 60 }), (ops) => {
        for (const o of ops) {
          switch (o.kind) {
            case 'out':
              rig.bus.write(o.port, o.size, o.value);
              break;
            case 'in':
              rig.bus.read(o.port, o.size);
              break;
            case 'io': {
              rig.setup28(o.lba, o.count);
              rig.out8(P.cmd, o.cmd);
              if (o.cmd === 0xc8 || o.cmd === 0xca) {
                rig.writePrd(0x9000, [[0x20000, o.count * 512]]);
                rig.bus.write(BM + 4, 4, 0x9000);
                rig.bus.write(BM, 1, o.cmd === 0xc8 ? 0x08 : 0x00);
                rig.bus.write(BM, 1, o.cmd === 0xc8 ? 0x09 : 0x01);
              } else {
                const toDevice = o.cmd === 0x30 || o.cmd === 0xc5;
                for (let i = 0; i < 20; i++) {
                  const v = rig.memory.view(0x20000, 0x10000);
                  if ((toDevice ? rig.bus.writeString(P.data, 2, v, 0x8000) : rig.bus.readString(P.data, 2, v, 0x8000)) === 0) break;
                }
              }
              break;
            }
            case 'cmd':
              rig.setup28(o.lba, o.count);
              rig.out8(P.cmd, o.cmd);
              break;
            case 'ins': {
              // A driver's loop: one rep insw per DRQ block until the data phase ends.
              const n = Math.min(o.count, Math.floor(0x40000 / o.size));
              for (let i = 0; i < 300 && rig.bus.readString(P.data, o.size, rig.memory.view(0x40000, n * o.size), n) > 0; i++);
              break;
            }
            case 'outs': {
              const n = Math.min(o.count, Math.floor(0x40000 / o.size));
              for (let i = 0; i < 300 && rig.bus.writeString(P.data, o.size, rig.memory.view(0x80000, n * o.size), n) > 0; i++);
              break;
            }
            case 'prd':
              rig.memory.writeU32(0x8000 + o.entry * 8, o.base);
              rig.memory.writeU32(0x8000 + o.entry * 8 + 4, o.bytes | (o.eot ? 0x80000000 : 0));
              break;
            case 'start':
              rig.bus.write(BM + 4, 4, o.table);
              rig.bus.write(BM, 1, o.dir ? 0x08 : 0x00);
              rig.bus.write(BM, 1, o.dir ? 0x09 : 0x01);
              break;
          }
        }
        for (const d of [rig.ide.channelPorts[0], rig.ide.busMaster]) expect(rig.bus.counters(d)!.faults).toBe(0);
        moved += rig.channel.sectorsTransferred - movedBefore;
        movedBefore = rig.channel.sectorsTransferred;
        // Recover as a driver would: stop the engine, software reset, then IDENTIFY.
        rig.bus.write(BM, 1, 0);
        rig.bus.write(P.ctl, 1, 0x04);
        rig.bus.write(P.ctl, 1, 0x00);
        expect(rig.in8(P.ctl)).toBe(0x50);
        rig.out8(P.dev, 0xa0);
        rig.out8(P.cmd, AtaCommand.IdentifyDevice);
        expect(rig.in8(P.cmd)).toBe(0x58);
        expect(rig.bus.readString(P.data, 2, rig.memory.view(0, 512), 256)).toBe(256);
        expect(rig.memory.u8[0]).toBe(0x40);
        expect(rig.in8(P.cmd)).toBe(0x50);
      }),
      { numRuns: 150, seed: 20261123 },
    );
    // The traffic reached the data paths, not only the error paths.
    expect(moved).toBeGreaterThan(100);
  });
});

describe('hostile guest fuzz: PIC and UART', () => {
  it('random PIC programming and IRQ traffic: no fault, every INTA yields a vector of one of the chips', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('out' as const),
              port: fc.constantFrom(0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1),
              value: fc.integer({ min: 0, max: 255 }),
            }),
            fc.record({ kind: fc.constant('irq' as const), line: fc.integer({ min: 0, max: 15 }), level: fc.boolean() }),
            fc.record({ kind: fc.constant('inta' as const) }),
            fc.record({ kind: fc.constant('in' as const), port: fc.constantFrom(0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1) }),
          ),
          { maxLength: 100 },
        ),
        (ops) => {
          const bus = new IoBus();
          const pic = new Pic8259();
          bus.register(pic);
          for (const o of ops) {
            if (o.kind === 'out') bus.write(o.port, 1, o.value);
            else if (o.kind === 'in') expect(bus.read(o.port, 1)).toBeLessThan(256);
            else if (o.kind === 'irq') pic.setIrq(o.line, o.level);
            else {
              const v = pic.acknowledge();
              const inMaster = v - pic.master.vectorBase;
              const inSlave = v - pic.slave.vectorBase;
              expect((inMaster >= 0 && inMaster < 8) || (inSlave >= 0 && inSlave < 8)).toBe(true);
            }
          }
          expect(bus.counters(pic)!.faults).toBe(0);
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it('random UART register traffic: no fault; after reset the loopback path still echoes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('out' as const),
              reg: fc.integer({ min: 0, max: 7 }),
              size: fc.constantFrom<AccessSize>(1, 2, 4),
              value: fc.integer({ min: 0, max: 0xffffffff }),
            }),
            fc.record({ kind: fc.constant('in' as const), reg: fc.integer({ min: 0, max: 7 }), size: fc.constantFrom<AccessSize>(1, 2, 4) }),
            fc.record({ kind: fc.constant('rx' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
            fc.record({ kind: fc.constant('outs' as const), n: fc.integer({ min: 0, max: 64 }) }),
          ),
          { maxLength: 100 },
        ),
        (ops) => {
          const bus = new IoBus();
          const uart = new Uart16550({ base: 0x3f8, irq: { set() {} } });
          bus.register(uart);
          const buf = new Uint8Array(64);
          for (const o of ops) {
            if (o.kind === 'out') bus.write(0x3f8 + o.reg, o.size, o.value);
            else if (o.kind === 'in') bus.read(0x3f8 + o.reg, o.size);
            else if (o.kind === 'rx') uart.receive(o.bytes);
            else bus.writeString(0x3f8, 1, buf, o.n);
          }
          expect(bus.counters(uart)!.faults).toBe(0);
          uart.reset();
          bus.write(0x3fc, 1, 0x10);
          bus.write(0x3f8, 1, 0x5a);
          expect(bus.read(0x3fd, 1) & 1).toBe(1);
          expect(bus.read(0x3f8, 1)).toBe(0x5a);
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });
});
