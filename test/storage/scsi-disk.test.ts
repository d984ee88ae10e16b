import { describe, expect, it } from 'vitest';
import { ScsiDataBuffer } from '../../root-partition/storage/scsi/scsi-data-buffer.ts';
import { ScsiDisk, type ScsiResult } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { MemoryDisk } from '../helpers/memory-disk.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const cdb = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));
const DISK_ID = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));

function setup(sectors = 2048, readOnly = false) {
  const backend = new MemoryDisk(sectors, readOnly);
  const disk = new ScsiDisk(backend, { diskId: DISK_ID });
  return { backend, disk };
}

function runIn(disk: ScsiDisk, c: string, bufLen = 255): { r: ScsiResult; data: Uint8Array } {
  const buf = new Uint8Array(bufLen);
  const r = disk.execute(cdb(c), new ScsiDataBuffer([buf]), 'in');
  return { r, data: buf.subarray(0, r.transferred) };
}

const senseOf = (r: ScsiResult): string => hex(r.sense ?? new Uint8Array());
/** Fixed-format sense: 70 00 key 00000000 0a 00000000 asc ascq 000000 */
const fixed = (key: number, asc: number, ascq: number): string =>
  `7000${key.toString(16).padStart(2, '0')}000000000a00000000${asc.toString(16).padStart(2, '0')}${ascq.toString(16).padStart(2, '0')}00000000`;
/** The same with VALID and INFORMATION = `info` (the failing LBA). */
const fixedAt = (key: number, asc: number, ascq: number, info: number): string =>
  `f000${key.toString(16).padStart(2, '0')}${info.toString(16).padStart(8, '0')}0a00000000${asc.toString(16).padStart(2, '0')}${ascq.toString(16).padStart(2, '0')}00000000`;

describe('ScsiDisk INQUIRY', () => {
  it('returns the 36-byte standard data Hyper-V reports', () => {
    const { disk } = setup();
    const { r, data } = runIn(disk, '12 00 00 00 ff 00');
    expect(r.status).toBe(0);
    expect(hex(data)).toBe('00000502' + '1f000002' + '4d73667420202020' + '5669727475616c204469736b20202020' + '312e3020');
  });

  it('honours a short allocation length', () => {
    const { disk } = setup();
    const { r, data } = runIn(disk, '12 00 00 00 05 00');
    expect(r.transferred).toBe(5);
    expect(hex(data)).toBe('000005021f');
  });

  it('lists the supported VPD pages', () => {
    const { disk } = setup();
    expect(hex(runIn(disk, '12 01 00 00 ff 00').data)).toBe('00000005' + '008083b0b2');
  });

  it('reports the unit serial number from the disk id', () => {
    const { disk } = setup();
    const { data } = runIn(disk, '12 01 80 00 ff 00');
    expect(hex(data.subarray(0, 4))).toBe('00800020');
    expect(Buffer.from(data.subarray(4)).toString('latin1')).toBe('00112233445566778899AABBCCDDEEFF');
  });

  it('identifies the device with an NAA 6 designator under Microsoft OUI 00-22-48', () => {
    const { disk } = setup();
    expect(hex(runIn(disk, '12 01 83 00 ff 00').data)).toBe('00830014' + '01030010' + '60022480' + '112233445566778899aabbcc');
  });

  it('refuses unknown VPD pages and a page code without EVPD', () => {
    const { disk } = setup();
    expect(senseOf(runIn(disk, '12 01 b1 00 ff 00').r)).toBe(fixed(5, 0x24, 0));
    expect(senseOf(runIn(disk, '12 00 80 00 ff 00').r)).toBe(fixed(5, 0x24, 0));
  });
});

describe('ScsiDisk capacity and mode pages', () => {
  it('READ CAPACITY(10) reports the last LBA and block size', () => {
    const { disk } = setup(2048);
    expect(hex(runIn(disk, '25 00 00000000 0000 00 00').data)).toBe('000007ff00000200');
  });

  it('READ CAPACITY(10) returns FFFFFFFF for a disk past 2 TiB', () => {
    const backend = { sectorSize: 512, sectorCount: 2 ** 32 + 5, readOnly: false, read() {}, write() {}, flush() {}, close() {} };
    const disk = new ScsiDisk(backend, { diskId: DISK_ID });
    expect(hex(runIn(disk, '25 00 00000000 0000 00 00').data)).toBe('ffffffff00000200');
    expect(hex(runIn(disk, '9e 10 0000000000000000 00000020 00 00').data)).toBe('0000000100000004' + '00000200' + '00'.repeat(20));
  });

  it('READ CAPACITY(10) with PMI = 0 and an LBA is an invalid field', () => {
    const { disk } = setup();
    expect(senseOf(runIn(disk, '25 00 00000001 0000 00 00').r)).toBe(fixed(5, 0x24, 0));
  });

  it('READ CAPACITY(16) via SERVICE ACTION IN(16)', () => {
    const { disk } = setup(2048);
    expect(hex(runIn(disk, '9e 10 0000000000000000 00000020 00 00').data)).toBe('00000000000007ff' + '00000200' + '00'.repeat(20));
    expect(runIn(disk, '9e 10 0000000000000000 0000000c 00 00').r.transferred).toBe(12);
    expect(senseOf(runIn(disk, '9e 11 0000000000000000 00000020 00 00').r)).toBe(fixed(5, 0x24, 0));
  });

  it('MODE SENSE(6) all pages: header then the caching page with WCE', () => {
    const { disk } = setup();
    expect(hex(runIn(disk, '1a 00 3f 00 ff 00').data)).toBe('17000000' + '0812' + '04' + '00'.repeat(17));
  });

  it('MODE SENSE(10) caching page; changeable values are all zero', () => {
    const { disk } = setup();
    expect(hex(runIn(disk, '5a 00 08 00 00 00 00 00 ff 00').data)).toBe('001a000000000000' + '081204' + '00'.repeat(17));
    expect(hex(runIn(disk, '5a 00 48 00 00 00 00 00 ff 00').data)).toBe('001a000000000000' + '0812' + '00'.repeat(18));
  });

  it('MODE SENSE sets the write-protect bit for a read-only disk', () => {
    const { disk } = setup(64, true);
    expect(hex(runIn(disk, '1a 00 3f 00 04 00').data)).toBe('17008000');
    expect(hex(runIn(disk, '5a 00 3f 00 00 00 00 00 08 00').data)).toBe('001a008000000000');
  });

  it('MODE SENSE refuses saved values, unknown pages and subpages', () => {
    const { disk } = setup();
    expect(senseOf(runIn(disk, '1a 00 c8 00 ff 00').r)).toBe(fixed(5, 0x39, 0));
    expect(senseOf(runIn(disk, '1a 00 1c 00 ff 00').r)).toBe(fixed(5, 0x24, 0));
    expect(senseOf(runIn(disk, '1a 00 08 01 ff 00').r)).toBe(fixed(5, 0x24, 0));
    expect(runIn(disk, '1a 00 3f ff ff 00').r.status).toBe(0);
  });
});

describe('ScsiDisk simple commands and errors', () => {
  it('TEST UNIT READY, START STOP UNIT and REQUEST SENSE', () => {
    const { disk } = setup();
    expect(disk.execute(cdb('000000000000'), ScsiDataBuffer.empty(), 'none')).toEqual({ transport: 'ok', status: 0, transferred: 0 });
    expect(disk.execute(cdb('1b0000000100'), ScsiDataBuffer.empty(), 'none').status).toBe(0);
    expect(hex(runIn(disk, '03 00 00 00 12 00').data)).toBe(fixed(0, 0, 0));
  });

  it('an unknown operation code is ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE', () => {
    const { disk } = setup();
    const r = disk.execute(cdb('d5 00 00 00 00 00 00 00 00 00 00 00'), ScsiDataBuffer.empty(), 'none');
    expect(r.status).toBe(2);
    expect(senseOf(r)).toBe(fixed(5, 0x20, 0));
    expect(senseOf(disk.execute(cdb('e0'), ScsiDataBuffer.empty(), 'none'))).toBe(fixed(5, 0x20, 0));
  });

  it('a CDB shorter than its group size or with NACA set is an invalid field', () => {
    const { disk } = setup();
    expect(senseOf(disk.execute(cdb('28 00 00 00'), ScsiDataBuffer.empty(), 'none'))).toBe(fixed(5, 0x24, 0));
    expect(senseOf(disk.execute(cdb('00 00 00 00 00 04'), ScsiDataBuffer.empty(), 'none'))).toBe(fixed(5, 0x24, 0));
  });

  it('SYNCHRONIZE CACHE flushes; past the end is LBA OUT OF RANGE; a failing flush is a MEDIUM ERROR', () => {
    const { disk, backend } = setup(100);
    expect(disk.execute(cdb('35 00 00000000 00 0000 00'), ScsiDataBuffer.empty(), 'none').status).toBe(0);
    expect(disk.execute(cdb('91 00 0000000000000000 00000000 00 00'), ScsiDataBuffer.empty(), 'none').status).toBe(0);
    expect(backend.flushes).toBe(2);
    expect(senseOf(disk.execute(cdb('35 00 00000064 00 0001 00'), ScsiDataBuffer.empty(), 'none'))).toBe(fixed(5, 0x21, 0));
    backend.failNext = true;
    expect(senseOf(disk.execute(cdb('35 00 00000000 00 0000 00'), ScsiDataBuffer.empty(), 'none'))).toBe(fixedAt(3, 0x0c, 0, 0));
  });

  it('VERIFY checks the range and refuses BYTCHK', () => {
    const { disk } = setup(100);
    expect(disk.execute(cdb('2f 00 00000063 00 0001 00'), ScsiDataBuffer.empty(), 'none').status).toBe(0);
    expect(senseOf(disk.execute(cdb('2f 00 00000063 00 0002 00'), ScsiDataBuffer.empty(), 'none'))).toBe(fixed(5, 0x21, 0));
    expect(senseOf(disk.execute(cdb('2f 02 00000000 00 0001 00'), ScsiDataBuffer.empty(), 'none'))).toBe(fixed(5, 0x24, 0));
  });
});

describe('ScsiDisk READ/WRITE', () => {
  const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

  it('WRITE(10) then READ(10), READ(16), READ(12) and READ(6) return the same bytes', () => {
    const { disk, backend } = setup(100);
    const src = pattern(1024, 3);
    expect(disk.execute(cdb('2a 00 00000005 00 0002 00'), new ScsiDataBuffer([src]), 'out')).toEqual({ transport: 'ok', status: 0, transferred: 1024 });
    expect(hex(backend.bytes.subarray(5 * 512, 7 * 512))).toBe(hex(src));
    for (const c of ['28 00 00000005 00 0002 00', '88 00 0000000000000005 00000002 00 00', 'a8 00 00000005 00000002 00 00', '08 00 00 05 02 00']) {
      const dst = new Uint8Array(1024);
      expect(disk.execute(cdb(c), new ScsiDataBuffer([dst]), 'in').transferred).toBe(1024);
      expect(hex(dst)).toBe(hex(src));
    }
  });

  it('moves data straight into each segment, passing only straddling sectors through scratch', () => {
    const { disk, backend } = setup(100);
    backend.bytes.set(pattern(4096, 9), 0);
    // 4096 bytes split 1000 / 2072 / 1024: sectors 1 and 5 straddle segment boundaries.
    const segs = [new Uint8Array(1000), new Uint8Array(2072), new Uint8Array(1024)];
    expect(disk.execute(cdb('28 00 00000000 00 0008 00'), new ScsiDataBuffer(segs), 'in').transferred).toBe(4096);
    expect(hex(Buffer.concat(segs))).toBe(hex(backend.bytes.subarray(0, 4096)));
    const writeSegs = [pattern(1000, 1), pattern(2072, 2), pattern(1024, 4)];
    expect(disk.execute(cdb('2a 00 00000010 00 0008 00'), new ScsiDataBuffer(writeSegs), 'out').status).toBe(0);
    expect(hex(backend.bytes.subarray(16 * 512, 24 * 512))).toBe(hex(Buffer.concat(writeSegs)));
  });

  it('READ(6) with transfer length 0 means 256 blocks', () => {
    const { disk } = setup(300);
    expect(disk.execute(cdb('08 00 00 00 00 00'), new ScsiDataBuffer([new Uint8Array(256 * 512)]), 'in').transferred).toBe(256 * 512);
  });

  it('past the end is LBA OUT OF RANGE and nothing is accessed', () => {
    const { disk, backend } = setup(100);
    const r = disk.execute(cdb('28 00 00000063 00 0002 00'), new ScsiDataBuffer([new Uint8Array(1024)]), 'in');
    expect(r.status).toBe(2);
    expect(senseOf(r)).toBe(fixed(5, 0x21, 0));
    expect(senseOf(disk.execute(cdb('8a 00 ffffffffffffffff 00000001 00 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'out'))).toBe(fixed(5, 0x21, 0));
    expect(backend.reads + backend.writes).toBe(0);
  });

  it('a write to a read-only disk is DATA PROTECT / WRITE PROTECTED', () => {
    const { disk } = setup(100, true);
    expect(senseOf(disk.execute(cdb('2a 00 00000000 00 0001 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'out'))).toBe(fixed(7, 0x27, 0));
  });

  it('a buffer too small or in the wrong direction is an invalid request', () => {
    const { disk } = setup(100);
    expect(disk.execute(cdb('28 00 00000000 00 0002 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'in').transport).toBe('invalid-request');
    expect(disk.execute(cdb('28 00 00000000 00 0001 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'out').transport).toBe('invalid-request');
    expect(disk.execute(cdb('12 00 00 00 24 00'), new ScsiDataBuffer([new Uint8Array(36)]), 'out').transport).toBe('invalid-request');
  });

  it('backend failures become MEDIUM ERROR sense', () => {
    const { disk, backend } = setup(100);
    backend.failNext = true;
    expect(senseOf(disk.execute(cdb('28 00 00000005 00 0001 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'in'))).toBe(fixedAt(3, 0x11, 0, 5));
    backend.failNext = true;
    expect(senseOf(disk.execute(cdb('2a 00 00000000 00 0001 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'out'))).toBe(fixedAt(3, 0x0c, 0, 0));
  });

  it('FUA writes are flushed before GOOD', () => {
    const { disk, backend } = setup(100);
    disk.execute(cdb('2a 08 00000000 00 0001 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'out');
    expect(backend.flushes).toBe(1);
  });
});

describe('ScsiDisk edge sizes', () => {
  it('an empty backend reports last LBA 0 instead of failing', () => {
    const { disk } = { disk: new ScsiDisk(new MemoryDisk(0), { diskId: DISK_ID }) };
    expect(hex(runIn(disk, '25 00 00000000 0000 00 00').data)).toBe('0000000000000200');
    expect(runIn(disk, '9e 10 0000000000000000 00000020 00 00').r.transferred).toBe(32);
    expect(senseOf(runIn(disk, '28 00 00000000 00 0001 00').r)).toBe(fixed(5, 0x21, 0));
  });
});
