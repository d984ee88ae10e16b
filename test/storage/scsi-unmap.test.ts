/**
 * TRIM/UNMAP on the synthetic SCSI path: the exact bytes of VPD 0xB0 / 0xB2 and READ CAPACITY(16)
 * for a thin (dynamic VHDX) and a fully provisioned disk, the exact sense of every refused UNMAP
 * (nothing released by a refused list), and UNMAP sent through storvsp over a real dynamic and
 * differencing VHDX: whole blocks become UNMAPPED / ZERO in the BAT and read zero, a partial
 * range is left as it was, and qemu-img finds the file clean and reads the same bytes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { ScsiDataBuffer } from '../../root-partition/storage/scsi/scsi-data-buffer.ts';
import { ScsiDisk, type ScsiResult } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { PayloadState } from '../../root-partition/storage/vhdx/vhdx-bat.ts';
import type { VhdxDisk } from '../../root-partition/storage/vhdx/vhdx-disk.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import { StorVspChannel } from '../../root-partition/vsp/storvsp/storvsp-channel.ts';
import { decodeSrbCompletion } from '../../root-partition/vsp/storvsp/storvsp-protocol.ts';
import { MemoryDisk } from '../helpers/memory-disk.ts';
import { negotiate, packet, rangeAt, srbPacket } from '../vsp/storvsp-test-guest.ts';

const MiB = 1024 * 1024;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));
const fixed = (key: number, asc: number, ascq = 0): string =>
  `7000${key.toString(16).padStart(2, '0')}000000000a00000000${asc.toString(16).padStart(2, '0')}${ascq.toString(16).padStart(2, '0')}00000000`;
const DISK_ID = new Uint8Array(16).fill(7);
const qemuImg = spawnSync('qemu-img', ['--version']).status === 0;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsv-unmap-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function dataIn(disk: ScsiDisk, cdb: string, length = 255): string {
  const buf = new Uint8Array(length);
  const r = disk.execute(bytes(cdb), new ScsiDataBuffer([buf]), 'in');
  expect(r.status).toBe(0);
  return hex(buf.subarray(0, r.transferred));
}

/** An UNMAP parameter list: header, then one 16-byte descriptor per [lba, sectors]. */
function unmapList(ranges: [number, number][], o: { dataLength?: number; descriptorLength?: number } = {}): Uint8Array {
  const p = new Uint8Array(8 + 16 * ranges.length);
  const dv = new DataView(p.buffer);
  dv.setUint16(0, o.dataLength ?? p.length - 2, false);
  dv.setUint16(2, o.descriptorLength ?? 16 * ranges.length, false);
  ranges.forEach(([lba, n], i) => {
    dv.setBigUint64(8 + 16 * i, BigInt(lba), false);
    dv.setUint32(16 + 16 * i, n, false);
  });
  return p;
}

const unmapCdb = (length: number, anchor = false) => bytes(`42${anchor ? '01' : '00'}0000000000${length.toString(16).padStart(4, '0')}00`);
const unmap = (disk: ScsiDisk, list: Uint8Array, length = list.length, anchor = false): ScsiResult =>
  disk.execute(unmapCdb(length, anchor), new ScsiDataBuffer([list]), 'out');

function dynamicDisk(): { path: string; vhdx: VhdxDisk } {
  const path = join(dir, 'thin.vhdx');
  newDisk(path, { kind: 'dynamic', sizeBytes: 8 * MiB, blockSizeBytes: MiB });
  return { path, vhdx: openVhdx(path) };
}

const states = (d: VhdxDisk) => Array.from({ length: d.layout.geometry.payloadBlocks }, (_, b) => d.blockEntry(b));

describe('UNMAP: what the disk reports', () => {
  it('a dynamic VHDX: LBPU and thin provisioning in 0xB2, its block as granularity in 0xB0, LBPME in READ CAPACITY(16)', () => {
    const { vhdx } = dynamicDisk();
    const disk = new ScsiDisk(vhdx, { diskId: DISK_ID });
    expect(dataIn(disk, '12 01 00 00 ff 00')).toBe('00000005' + '008083b0b2');
    expect(dataIn(disk, '12 01 b0 00 ff 00')).toBe('00b0003c' + '00'.repeat(16) + '00800000' + '00000040' + '00000800' + '80000000' + '00'.repeat(28));
    expect(dataIn(disk, '12 01 b2 00 ff 00')).toBe('00b20004' + '00800200');
    expect(dataIn(disk, '9e 10 0000000000000000 00000020 00 00')).toBe('0000000000003fff' + '00000200' + '0000' + '8000' + '00'.repeat(16));
    vhdx.close();
  });

  it('a fully provisioned disk (raw, fixed): zero limits, LBPU 0, LBPME 0, and UNMAP is not a command it has', () => {
    const disk = new ScsiDisk(new MemoryDisk(2048), { diskId: DISK_ID });
    expect(dataIn(disk, '12 01 b0 00 ff 00')).toBe('00b0003c' + '00'.repeat(60));
    expect(dataIn(disk, '12 01 b2 00 ff 00')).toBe('00b20004' + '00000000');
    expect(dataIn(disk, '9e 10 0000000000000000 00000020 00 00')).toBe('00000000000007ff' + '00000200' + '00'.repeat(20));
    expect(hex(unmap(disk, unmapList([[0, 8]])).sense!)).toBe(fixed(5, 0x20));
    const fixedPath = join(dir, 'fixed.vhdx');
    newDisk(fixedPath, { kind: 'fixed', sizeBytes: 2 * MiB });
    const fixedVhdx = openVhdx(fixedPath);
    const onFixed = new ScsiDisk(fixedVhdx, { diskId: DISK_ID });
    expect(dataIn(onFixed, '12 01 b2 00 ff 00')).toBe('00b20004' + '00000000');
    expect(hex(unmap(onFixed, unmapList([[0, 8]])).sense!)).toBe(fixed(5, 0x20));
    fixedVhdx.close();
  });
});

describe('UNMAP: refusals', () => {
  it('each bad list or CDB gets its exact sense, and nothing is released', () => {
    const { vhdx } = dynamicDisk();
    vhdx.write(0, new Uint8Array(8 * MiB).fill(0x11));
    const before = states(vhdx);
    const disk = new ScsiDisk(vhdx, { diskId: DISK_ID });
    const sense = (r: ScsiResult) => [r.status, hex(r.sense ?? new Uint8Array())];
    // Shorter than the 8-byte header: PARAMETER LIST LENGTH ERROR.
    expect(sense(unmap(disk, unmapList([[0, 2048]]), 4))).toEqual([2, fixed(5, 0x1a)]);
    // A range past the end: LBA OUT OF RANGE — even after a good one in the same list.
    expect(
      sense(
        unmap(
          disk,
          unmapList([
            [0, 2048],
            [16383, 2],
          ]),
        ),
      ),
    ).toEqual([2, fixed(5, 0x21)]);
    expect(
      sense(
        unmap(
          disk,
          unmapList([
            [0, 2048],
            [2 ** 63, 1],
          ]),
        ),
      ),
    ).toEqual([2, fixed(5, 0x21)]);
    // Lengths that do not fit the list; more descriptors than the limit; more LBAs than the limit.
    expect(sense(unmap(disk, unmapList([[0, 2048]], { descriptorLength: 32 })))).toEqual([2, fixed(5, 0x26)]);
    expect(sense(unmap(disk, unmapList([[0, 2048]], { dataLength: 100 })))).toEqual([2, fixed(5, 0x26)]);
    expect(sense(unmap(disk, unmapList(Array.from({ length: 65 }, (_, i): [number, number] => [i, 1]))))).toEqual([2, fixed(5, 0x26)]);
    expect(
      sense(
        unmap(
          disk,
          unmapList([
            [0, 2048],
            [0, 8 * 1024 * 1024],
          ]),
        ),
      ),
    ).toEqual([2, fixed(5, 0x26)]);
    // ANCHOR is not offered: INVALID FIELD IN CDB.
    expect(sense(unmap(disk, unmapList([[0, 2048]]), undefined, true))).toEqual([2, fixed(5, 0x24)]);
    // The buffer or direction the transport declared does not carry the list.
    expect(disk.execute(unmapCdb(24), new ScsiDataBuffer([new Uint8Array(16)]), 'out').transport).toBe('invalid-request');
    expect(disk.execute(unmapCdb(24), new ScsiDataBuffer([unmapList([[0, 2048]])]), 'in').transport).toBe('invalid-request');
    expect(states(vhdx)).toEqual(before);
    // A zero-length list is no error; a read-only disk refuses with WRITE PROTECTED.
    expect(sense(unmap(disk, new Uint8Array(0), 0))).toEqual([0, '']);
    vhdx.close();
    const ro = openVhdx(join(dir, 'thin.vhdx'), { readOnly: true });
    expect(sense(unmap(new ScsiDisk(ro, { diskId: DISK_ID }), unmapList([[0, 2048]])))).toEqual([2, fixed(7, 0x27)]);
    ro.close();
  });
});

describe('UNMAP through storvsp on a real VHDX', () => {
  function channelOn(backend: VhdxDisk) {
    const memory = new GuestMemory(1 << 20);
    const channel = new StorVspChannel({
      memory,
      luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(backend, { diskId: DISK_ID }) }],
      maxSubChannels: 0,
    });
    negotiate(channel);
    let id = 10n;
    const send = (ranges: [number, number][]) => {
      const list = unmapList(ranges);
      memory.u8.set(list, 0x8000);
      const out = channel.handle(
        packet(srbPacket({ cdb: unmapCdb(list.length), dataIn: 0, dataTransferLength: list.length }), id++, [rangeAt(0x8000, list.length)]),
      )!;
      return decodeSrbCompletion(out.payload);
    };
    return { send };
  }

  it('a dynamic disk: whole blocks become UNMAPPED (offset 0) and read zero; a partial range stays; qemu-img agrees', () => {
    const { path, vhdx } = dynamicDisk();
    const model = Buffer.alloc(8 * MiB);
    for (let i = 0; i < model.length; i++) model[i] = (i >> 9) & 0xff || 1;
    vhdx.write(0, model);
    const { send } = channelOn(vhdx);
    // Blocks 1 and 2 whole; 4.5 KiB into block 4 through the middle of block 5: no whole block.
    expect(
      send([
        [2048, 4096],
        [4 * 2048 + 9, 2048],
      ]),
    ).toMatchObject({ srbStatus: 1, scsiStatus: 0 });
    model.fill(0, MiB, 3 * MiB);
    expect(states(vhdx).map((e) => e.state)).toEqual([6, 3, 3, 6, 6, 6, 6, 6].map((s) => s as number));
    expect(states(vhdx)[1]!.offset).toBe(0);
    const all = Buffer.alloc(8 * MiB);
    vhdx.read(0, all);
    expect(all.equals(model)).toBe(true);
    // Unmapping it again, or ranges that hold nothing, changes nothing; the last block, to the disk's end, is whole.
    expect(
      send([
        [2048, 2048],
        [7 * 2048, 2048],
      ]),
    ).toMatchObject({ srbStatus: 1, scsiStatus: 0 });
    model.fill(0, 7 * MiB);
    expect(states(vhdx).map((e) => e.state)).toEqual([6, 3, 3, 6, 6, 6, 6, 3]);
    // A later write into a released block gets a new block that reads zero around it.
    vhdx.write(2048 + 5, new Uint8Array(512).fill(0xab));
    model.fill(0xab, MiB + 5 * 512, MiB + 6 * 512);
    expect(states(vhdx)[1]!.state).toBe(PayloadState.FullyPresent);
    vhdx.close();
    const again = openVhdx(path, { readOnly: true });
    again.read(0, all);
    expect(all.equals(model)).toBe(true);
    again.close();
    if (qemuImg) {
      execFileSync('qemu-img', ['check', path]);
      execFileSync('qemu-img', ['convert', '-O', 'raw', path, join(dir, 'thin.raw')]);
      expect(readFileSync(join(dir, 'thin.raw')).equals(model)).toBe(true);
    }
  });

  it("a differencing disk: a whole block becomes ZERO and hides the parent's data", () => {
    const base = join(dir, 'base.vhdx');
    newDisk(base, { kind: 'dynamic', sizeBytes: 4 * MiB, blockSizeBytes: MiB });
    const b = openVhdx(base);
    b.write(0, new Uint8Array(4 * MiB).fill(0x22));
    b.close();
    const childPath = join(dir, 'child.avhdx');
    newDisk(childPath, { kind: 'differencing', parentPath: base, blockSizeBytes: MiB });
    const child = openVhdx(childPath);
    child.write(2048 + 1, new Uint8Array(512).fill(0x33)); // block 1 partly the child's
    const { send } = channelOn(child);
    expect(
      send([
        [2048, 2048],
        [2 * 2048, 2048],
      ]),
    ).toMatchObject({ srbStatus: 1, scsiStatus: 0 });
    expect(states(child).map((e) => e.state)).toEqual([0, 2, 2, 0]);
    const all = Buffer.alloc(4 * MiB);
    child.read(0, all);
    const model = Buffer.alloc(4 * MiB, 0x22);
    model.fill(0, MiB, 3 * MiB);
    expect(all.equals(model)).toBe(true);
    child.close();
    const again = openVhdx(childPath, { readOnly: true });
    again.read(0, all);
    expect(all.equals(model)).toBe(true);
    again.close();
  });
});
