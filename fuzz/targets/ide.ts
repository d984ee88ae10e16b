/**
 * The emulated PIIX4 IDE controller (root-partition/devices/ide): ATA task file, command and
 * control registers, data-port string I/O and bus-master DMA with guest-written PRD tables.
 * The input is a program of 6-byte operations `[op][port][u32 value]` against the whole
 * controller on an I/O bus, over 1 MiB of guest memory and a raw disk file. Bugs: an exception
 * escaping a device (the bus contains it and records it; the target re-raises it), or a drive
 * that does not answer IDENTIFY after a software reset.
 */
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';
import type { AccessSize } from '../../root-partition/devices/port-io.ts';
import { BM, IdeRig, P } from '../../test/devices/ide-rig.ts';
import { invariant, type FuzzTarget } from '../engine/target.ts';
import { InputBuilder, InputCursor } from './input-cursor.ts';

const PORTS = [P.data, P.err, P.count, P.lbaLow, P.lbaMid, P.lbaHigh, P.dev, P.cmd, P.ctl, BM, BM + 2, BM + 4, BM + 6, BM + 8, BM + 12];
const SIZES: AccessSize[] = [1, 2, 4];
const Op = { Out: 0, In: 1, Ins: 2, Outs: 3, Prd: 4, Start: 5 } as const;

function program(ops: [op: number, port: number, value: number][]): Uint8Array {
  const b = new InputBuilder();
  for (const [op, port, value] of ops) b.u8(op).u8(port).u32(value);
  return b.build();
}

/** Operations for an LBA28 command with its task file. */
function command(cmd: number, lba: number, count: number): [number, number, number][] {
  return [
    [Op.Out, 6, 0xe0 | ((lba >>> 24) & 0xf)],
    [Op.Out, 2, count],
    [Op.Out, 3, lba & 0xff],
    [Op.Out, 4, (lba >>> 8) & 0xff],
    [Op.Out, 5, (lba >>> 16) & 0xff],
    [Op.Out, 7, cmd],
  ];
}

export function createTarget(): FuzzTarget {
  const rig = new IdeRig({ sectors: 256 });
  const mem = rig.memory;
  const raise = () => {
    const fault = rig.bus.lastFault;
    if (fault !== undefined) {
      rig.bus.lastFault = undefined;
      throw fault;
    }
  };
  return {
    name: 'ide',
    description: 'PIIX4 IDE/ATA registers, PIO string I/O and bus-master DMA with guest PRD tables',
    maxInputBytes: 6 * 200,
    dictionary: [AtaCommand.IdentifyDevice, 0x20, 0x24, 0x25, 0x30, 0x34, 0x35, 0xc4, 0xc5, 0xc8, 0xca, 0xef, 0x91, 0xe7].map((c) =>
      Uint8Array.of(0, 7, c, 0, 0, 0),
    ),
    seeds: () => [
      program([...command(0x20, 3, 2), [Op.Ins, 0, 256], [Op.Ins, 0, 256]]),
      program([...command(0x30, 9, 1), [Op.Outs, 0, 256]]),
      program([[Op.Prd, 0, 0x20000], [Op.Prd, 1, 0x80000400], ...command(0xc8, 0, 2), [Op.Out, 11, 0x8000], [Op.Out, 9, 0x09]]),
      program([[Op.Prd, 0, 0x21000], [Op.Prd, 1, 0x80000200], ...command(0xca, 5, 1), [Op.Out, 11, 0x8000], [Op.Out, 9, 0x01], [Op.In, 10, 0]]),
      program([[Op.Out, 8, 4], [Op.Out, 8, 0], ...command(0xec, 0, 0), [Op.Ins, 1, 256]]),
    ],
    run(input) {
      // A clean controller per input: stop the engine, software reset (state of earlier inputs gone).
      rig.bus.write(BM, 1, 0);
      rig.bus.write(BM + 2, 1, 0x06);
      rig.bus.write(P.ctl, 1, 0x04);
      rig.bus.write(P.ctl, 1, 0x00);
      mem.u8.fill(0, 0x8000, 0x9000);
      raise();
      const c = new InputCursor(input);
      while (!c.done) {
        const op = c.u8() % 6;
        const sel = c.u8();
        const value = c.u32();
        const port = PORTS[sel % PORTS.length]!;
        const size = SIZES[(sel >> 4) % 3]!;
        switch (op) {
          case Op.Out:
            rig.bus.write(port, size, value);
            break;
          case Op.In:
            rig.bus.read(port, size);
            break;
          case Op.Ins:
          case Op.Outs: {
            // rep insw/outsw with a guest-chosen count, clamped to the buffer as the VP clamps it to guest memory.
            const count = Math.min(value & 0x3ffff, Math.floor(0x40000 / size));
            const view = mem.view(0x40000, 0x40000);
            if (op === Op.Ins) rig.bus.readString(P.data, size, view, count);
            else rig.bus.writeString(P.data, size, view, count);
            break;
          }
          case Op.Prd:
            mem.writeU32(0x8000 + (sel % 8) * 8, sel & 0x80 ? value : 0x20000 + (value & 0xffff) * 2);
            mem.writeU32(0x8004 + (sel % 8) * 8, value);
            break;
          case Op.Start:
            rig.bus.write(BM + 4, 4, value);
            break;
        }
        raise();
      }
      rig.bus.write(BM, 1, 0);
      rig.bus.write(P.ctl, 1, 0x04);
      rig.bus.write(P.ctl, 1, 0x00);
      invariant(rig.in8(P.ctl) === 0x50, 'the drive is not ready after a software reset');
      rig.out8(P.dev, 0xa0);
      rig.out8(P.cmd, AtaCommand.IdentifyDevice);
      invariant(rig.bus.readString(P.data, 2, mem.view(0, 512), 256) === 256 && mem.u8[0] === 0x40, 'IDENTIFY after reset failed');
      raise();
    },
    isExpectedError: () => false,
    dispose: () => rig.close(),
  };
}
