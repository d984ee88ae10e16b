import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BM, IdeRig, P, expectSameBytes, pattern } from './ide-rig.ts';
import { AtaCommand } from '../../root-partition/devices/ide/ata-protocol.ts';

/**
 * Data integrity across transfer methods: random writes and reads through PIO words, PIO string
 * I/O, READ/WRITE MULTIPLE and DMA with PRD tables split at random (odd-length) points, checked
 * against a shadow copy of the disk kept by the test.
 */
const SECTORS = 64;
const rig = new IdeRig({ sectors: SECTORS });
const shadow = new Uint8Array(SECTORS * 512);
afterAll(() => rig.close());

rig.out8(P.count, 4);
rig.out8(P.cmd, AtaCommand.SetMultipleMode);
rig.in8(P.cmd);

type Method = 'word' | 'string' | 'multiple' | 'dma';
const BUF = 0x40000;

function pioTransfer(write: boolean, method: Method, lba: number, count: number): void {
  rig.setup28(lba, count);
  const cmd = method === 'multiple' ? (write ? AtaCommand.WriteMultiple : AtaCommand.ReadMultiple) : write ? AtaCommand.WriteSectors : AtaCommand.ReadSectors;
  rig.out8(P.cmd, cmd);
  const block = method === 'multiple' ? 4 : 1;
  for (let s = 0; s < count; s += block) {
    const n = Math.min(block, count - s);
    const gpa = BUF + s * 512;
    if (s > 0 || !write) rig.in8(P.cmd); // status read per interrupt (none before the first write block)
    expect(rig.in8(P.ctl)).toBe(0x58);
    if (method === 'word') {
      for (let w = 0; w < n * 256; w++) {
        if (write) rig.bus.write(P.data, 2, rig.memory.dv.getUint16(gpa + 2 * w, true));
        else rig.memory.dv.setUint16(gpa + 2 * w, rig.bus.read(P.data, 2), true);
      }
    } else if (write) {
      expect(rig.bus.writeString(P.data, 2, rig.memory.view(gpa, n * 512), n * 256)).toBe(n * 256);
    } else {
      expect(rig.bus.readString(P.data, 2, rig.memory.view(gpa, n * 512), n * 256)).toBe(n * 256);
    }
  }
  if (write) rig.in8(P.cmd);
  expect(rig.in8(P.cmd)).toBe(0x50);
}

function dmaTransfer(write: boolean, lba: number, count: number, cuts: number[]): void {
  // Split [0, bytes) at even cut points into PRD regions placed apart in memory, then gather/scatter.
  const bytes = count * 512;
  const points = [...new Set(cuts.map((c) => (c % bytes) & ~1).filter((c) => c > 0))].sort((a, b) => a - b);
  const bounds = [0, ...points, bytes];
  const regions: [number, number][] = [];
  for (let i = 0; i + 1 < bounds.length; i++) regions.push([0x80000 + i * 0x8000, bounds[i + 1]! - bounds[i]!]);
  if (write) for (const [i, [gpa, len]] of regions.entries()) rig.memory.u8.copyWithin(gpa, BUF + bounds[i]!, BUF + bounds[i]! + len);
  rig.writePrd(0x9000, regions);
  rig.bus.write(BM + 4, 4, 0x9000);
  rig.bus.write(BM, 1, write ? 0x00 : 0x08);
  rig.setup28(lba, count);
  rig.out8(P.cmd, write ? AtaCommand.WriteDma : AtaCommand.ReadDma);
  rig.bus.write(BM, 1, write ? 0x01 : 0x09);
  const bm = rig.bus.read(BM + 2, 1);
  expect(bm & 0x07).toBe(0x04);
  rig.bus.write(BM, 1, 0);
  expect(rig.in8(P.cmd)).toBe(0x50);
  rig.bus.write(BM + 2, 1, bm);
  if (!write) for (const [i, [gpa, len]] of regions.entries()) rig.memory.u8.copyWithin(BUF + bounds[i]!, gpa, gpa + len);
}

describe('IDE data integrity across transfer methods', () => {
  it('random writes and reads agree with a shadow disk', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            method: fc.constantFrom<Method>('word', 'string', 'multiple', 'dma'),
            lba: fc.integer({ min: 0, max: SECTORS - 1 }),
            count: fc.integer({ min: 1, max: 9 }),
            seed: fc.integer(),
            cuts: fc.array(fc.integer({ min: 0, max: 9 * 512 }), { maxLength: 4 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        (ops) => {
          for (const o of ops) {
            const count = Math.min(o.count, SECTORS - o.lba);
            const bytes = count * 512;
            if (o.write) {
              const data = pattern(bytes, o.seed);
              rig.memory.write(BUF, data);
              shadow.set(data, o.lba * 512);
            } else {
              rig.memory.zero(BUF, bytes);
            }
            if (o.method === 'dma') dmaTransfer(o.write, o.lba, count, o.cuts);
            else pioTransfer(o.write, o.method, o.lba, count);
            if (!o.write) expectSameBytes(rig.memory.read(BUF, bytes), shadow.subarray(o.lba * 512, o.lba * 512 + bytes));
          }
          expectSameBytes(rig.readDisk(0, SECTORS), shadow);
        },
      ),
      { numRuns: 60, seed: 424242 },
    );
  });
});
