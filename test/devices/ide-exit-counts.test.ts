import { afterEach, describe, expect, it } from 'vitest';
import { BM, IdeRig, P, expectSameBytes } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';

/**
 * Exits one 4 KiB read (8 sectors) costs with each transfer method, counted by the I/O bus.
 * The driver is interrupt-driven as Linux libata is: it reads Status once per interrupt
 * (no busy polling), so these are the floor a real driver reaches.
 */
let rig: IdeRig;
afterEach(() => rig?.close());

function exits(r: IdeRig): number {
  let n = 0;
  for (const c of r.bus.allCounters().values()) n += c.reads + c.writes + c.stringOps;
  return n;
}

function withCount(r: IdeRig, run: () => void): number {
  const before = exits(r);
  run();
  return exits(r) - before;
}

describe('exits per 4 KiB read', () => {
  it('PIO word by word: 7 task-file writes + 8 × (status + 256 data words) = 2063', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(16, 8, 1);
    const got = new Uint8Array(4096);
    const n = withCount(rig, () => {
      rig.setup28(16, 8);
      rig.out8(P.cmd, AtaCommand.ReadSectors);
      for (let s = 0; s < 8; s++) {
        rig.in8(P.cmd);
        for (let w = 0; w < 256; w++) {
          const v = rig.bus.read(P.data, 2);
          got[s * 512 + 2 * w] = v & 0xff;
          got[s * 512 + 2 * w + 1] = v >> 8;
        }
      }
    });
    expectSameBytes(got, expected);
    expect(n).toBe(2063);
  });

  it('PIO by string I/O, READ SECTORS: 7 + 8 × (status + rep insw) = 23', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(16, 8, 2);
    const n = withCount(rig, () => {
      rig.setup28(16, 8);
      rig.out8(P.cmd, AtaCommand.ReadSectors);
      for (let s = 0; s < 8; s++) {
        rig.in8(P.cmd);
        rig.bus.readString(P.data, 2, rig.memory.view(0x10000 + s * 512, 512), 256);
      }
    });
    expectSameBytes(rig.memory.read(0x10000, 4096), expected);
    expect(n).toBe(23);
  });

  it('PIO by string I/O, READ MULTIPLE with 8-sector blocks: 7 + status + one rep insw = 9', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(16, 8, 3);
    rig.out8(P.count, 8);
    rig.out8(P.cmd, AtaCommand.SetMultipleMode); // once per boot, not per I/O
    rig.in8(P.cmd);
    const n = withCount(rig, () => {
      rig.setup28(16, 8);
      rig.out8(P.cmd, AtaCommand.ReadMultiple);
      rig.in8(P.cmd);
      rig.bus.readString(P.data, 2, rig.memory.view(0x10000, 4096), 2048);
    });
    expectSameBytes(rig.memory.read(0x10000, 4096), expected);
    expect(n).toBe(9);
  });

  it('bus-master DMA: PRD pointer, BM status, BM command, 7 task-file, start; then BM status, stop, status, BM clear = 15', () => {
    rig = new IdeRig();
    const expected = rig.fillDisk(16, 8, 4);
    rig.writePrd(0x8000, [[0x10000, 4096]]);
    const n = withCount(rig, () => {
      rig.bus.write(BM + 4, 4, 0x8000);
      rig.bus.write(BM + 2, 1, 0x26);
      rig.bus.write(BM, 1, 0x08);
      rig.setup28(16, 8);
      rig.out8(P.cmd, AtaCommand.ReadDma);
      rig.bus.write(BM, 1, 0x09);
      const bm = rig.bus.read(BM + 2, 1);
      rig.bus.write(BM, 1, 0x00);
      rig.in8(P.cmd);
      rig.bus.write(BM + 2, 1, bm);
    });
    expectSameBytes(rig.memory.read(0x10000, 4096), expected);
    expect(n).toBe(15);
    expect(rig.channel.interruptsRaised).toBe(1);
  });
});
