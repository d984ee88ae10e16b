import { afterEach, describe, expect, it } from 'vitest';
import { BM, IdeRig, P, pattern, expectSameBytes } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';
import { FaultyIo } from '../helpers/faulty-io.ts';

let rig: IdeRig;
afterEach(() => rig?.close());

/** DRDY | DF | DSC | ERR: a write that did not reach the medium. */
const WRITE_FAULT = 0x71;

/** PIO WRITE SECTORS of `sectors` sectors of `data` at `lba` through the data port. */
function pioWrite(r: IdeRig, lba: number, data: Uint8Array): void {
  r.setup28(lba, data.length / 512);
  r.out8(P.cmd, AtaCommand.WriteSectors);
  for (let s = 0; s < data.length / 512; s++) {
    r.memory.write(0x2000, data.subarray(s * 512, (s + 1) * 512));
    expect(r.bus.writeString(P.data, 2, r.memory.view(0x2000, 512), 256)).toBe(256);
  }
  expect(r.in8(P.cmd)).toBe(0x50);
}

function lbaRegisters(r: IdeRig, hob: boolean): number[] {
  r.bus.write(P.ctl, 1, hob ? 0x80 : 0x00);
  const v = [r.in8(P.lbaLow), r.in8(P.lbaMid), r.in8(P.lbaHigh)];
  r.bus.write(P.ctl, 1, 0x00);
  return v;
}

describe('IDE: write errors reach the guest and stay', () => {
  it('a failed FLUSH CACHE is a write fault naming the first unflushed sector, and every later flush fails too', () => {
    const io = new FaultyIo();
    const logged: string[] = [];
    rig = new IdeRig({ io, log: (m) => logged.push(m) });
    pioWrite(rig, 0x0345, pattern(1024, 1));
    pioWrite(rig, 0x0600, pattern(512, 2));
    io.fail('fdatasync', 'EIO');
    rig.out8(P.dev, 0xe0);
    rig.out8(P.cmd, AtaCommand.FlushCache);
    expect(rig.channel.intrq).toBe(true);
    expect(rig.in8(P.cmd)).toBe(WRITE_FAULT);
    expect(rig.in8(P.err)).toBe(0x00); // not ABRT: the command is supported, the medium failed
    expect(lbaRegisters(rig, false)).toEqual([0x45, 0x03, 0x00]);
    expect(rig.in8(P.dev) & 0x0f).toBe(0);
    expect(logged).toEqual([expect.stringMatching(new RegExp(`^disk image ${rig.dir}/disk.raw: flush failed at sector 837 \\(EIO\\)`))]);
    // The file system would now let fdatasync succeed: the lost writes must not be reported safe.
    expect(io.calls.fdatasync).toBe(0);
    for (const cmd of [AtaCommand.FlushCache, AtaCommand.FlushCacheExt]) {
      rig.out8(P.cmd, cmd);
      expect(rig.in8(P.cmd)).toBe(WRITE_FAULT);
      expect(lbaRegisters(rig, false)).toEqual([0x45, 0x03, 0x00]);
    }
    // Writes still land; only the durability promise is broken, and each flush says so.
    pioWrite(rig, 7, pattern(512, 3));
    expect(rig.disk.stickyError?.errno).toBe('EIO');
  });

  it('FLUSH CACHE EXT reports a 48-bit first unflushed sector in the HOB registers', () => {
    const io = new FaultyIo();
    rig = new IdeRig({ io, sectors: 0x2000000 + 16 });
    rig.disk.write(0x2000003, pattern(512, 4));
    io.fail('fdatasync', 'EIO');
    rig.out8(P.dev, 0x40);
    rig.out8(P.cmd, AtaCommand.FlushCacheExt);
    expect(rig.in8(P.cmd)).toBe(WRITE_FAULT);
    expect(lbaRegisters(rig, false)).toEqual([0x03, 0x00, 0x00]);
    expect(lbaRegisters(rig, true)).toEqual([0x02, 0x00, 0x00]);
  });

  it('WRITE MULTIPLE FUA EXT makes its data durable before completing (one fdatasync per command)', () => {
    const io = new FaultyIo();
    rig = new IdeRig({ io });
    rig.out8(P.count, 4);
    rig.out8(P.cmd, AtaCommand.SetMultipleMode);
    expect(rig.in8(P.cmd)).toBe(0x50);
    const data = pattern(8 * 512, 5);
    rig.memory.write(0x4000, data);
    for (const [cmd, flushes] of [
      [AtaCommand.WriteMultipleExt, 0],
      [AtaCommand.WriteMultipleFuaExt, 1],
    ] as const) {
      const before = io.calls.fdatasync;
      rig.setup48(64, 8);
      rig.out8(P.cmd, cmd);
      expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x4000, 2048), 1024)).toBe(1024);
      expect(io.calls.fdatasync - before).toBe(0); // not after the first block
      expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x4800, 2048), 1024)).toBe(1024);
      expect(rig.in8(P.cmd)).toBe(0x50);
      expect(io.calls.fdatasync - before).toBe(flushes);
    }
    expectSameBytes(rig.readDisk(64, 8), data);
  });

  it('WRITE MULTIPLE FUA EXT whose flush fails ends in a write fault, not success', () => {
    const io = new FaultyIo();
    rig = new IdeRig({ io });
    rig.out8(P.count, 2);
    rig.out8(P.cmd, AtaCommand.SetMultipleMode);
    io.fail('fdatasync', 'EIO');
    rig.setup48(10, 2);
    rig.out8(P.cmd, AtaCommand.WriteMultipleFuaExt);
    rig.memory.write(0x4000, pattern(1024, 6));
    expect(rig.bus.writeString(P.data, 2, rig.memory.view(0x4000, 1024), 512)).toBe(512);
    expect(rig.in8(P.cmd)).toBe(WRITE_FAULT);
    expect(lbaRegisters(rig, false)).toEqual([10, 0, 0]);
  });

  it('WRITE DMA that runs out of host space is a write fault at the failing sector, with the bus master error', () => {
    const io = new FaultyIo();
    rig = new IdeRig({ io });
    rig.memory.write(0x10000, pattern(4096, 7));
    rig.writePrd(0x8000, [[0x10000, 4096]]);
    rig.bus.write(BM + 4, 4, 0x8000);
    rig.bus.write(BM + 2, 1, 0x26);
    rig.bus.write(BM, 1, 0x00);
    rig.setup28(200, 8);
    io.fail('pwrite', 'ENOSPC');
    rig.out8(P.cmd, AtaCommand.WriteDma);
    rig.bus.write(BM, 1, 0x01);
    expect(rig.bus.read(BM + 2, 1) & 0x07).toBe(0x06); // Interrupt | Error
    expect(rig.in8(P.cmd)).toBe(WRITE_FAULT);
    expect(lbaRegisters(rig, false)).toEqual([200, 0, 0]);
  });
});

describe('IDE: FUA across a saved state', () => {
  it('a WRITE MULTIPLE FUA EXT saved between its blocks still flushes when the restored VM finishes it', () => {
    const a = new IdeRig();
    const io = new FaultyIo();
    const b = new IdeRig({ io });
    try {
      for (const r of [a, b]) {
        r.out8(P.count, 2);
        r.out8(P.cmd, AtaCommand.SetMultipleMode);
      }
      a.setup48(30, 4);
      a.out8(P.cmd, AtaCommand.WriteMultipleFuaExt);
      a.memory.write(0x4000, pattern(2048, 8));
      expect(a.bus.writeString(P.data, 2, a.memory.view(0x4000, 1024), 512)).toBe(512);
      b.ide.restoreState(a.ide.saveState());
      expect(b.bus.writeString(P.data, 2, a.memory.view(0x4400, 1024), 512)).toBe(512);
      expect(b.in8(P.cmd)).toBe(0x50);
      expect(io.calls.fdatasync).toBe(1);
    } finally {
      a.close();
      b.close();
    }
  });
});
