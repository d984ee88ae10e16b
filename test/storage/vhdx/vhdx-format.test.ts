/**
 * VHDX wire formats against known bytes (a file qemu-img 7.2 wrote and its log entry, a parent
 * locator, the BAT geometry of [MS-VHDX] 2.5), so the encoders are checked
 * against bytes another implementation wrote, not against themselves.
 */
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../../root-partition/storage/crc32c.ts';
import { BatGeometry, encodeEntry, entryOffset, entryState } from '../../../root-partition/storage/vhdx/vhdx-bat.ts';
import { currentHeader, decodeHeader, encodeHeader, RegionGuid, MetadataGuid } from '../../../root-partition/storage/vhdx/vhdx-format.ts';
import { guidFromText, guidToText, ZERO_GUID } from '../../../root-partition/storage/vhdx/vhdx-guid.ts';
import { encodeLogEntry, findActiveSequence } from '../../../root-partition/storage/vhdx/vhdx-log.ts';
import { decodeParentLocator, encodeParentLocator, linkageMatches } from '../../../root-partition/storage/vhdx/vhdx-parent-locator.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const MiB = 1024 * 1024;

describe('VHDX formats', () => {
  it('CRC-32C has the spec check value', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('GUIDs use the Windows byte order', () => {
    expect(RegionGuid.Bat).toEqual(hex('6677c22d23f600429d64115e9bfd4a08'));
    expect(RegionGuid.Metadata).toEqual(hex('06a27c8b90479a4bb8fe575f050f886e'));
    expect(MetadataGuid.ParentLocator).toEqual(hex('2d5fd3a80bb34d45abf7d3d84834ab0c'));
    expect(guidToText(hex('03b7161335e04f64903b4f342ccee696'))).toBe('1316b703-e035-644f-903b-4f342ccee696');
    expect(guidFromText('{1316B703-E035-644F-903B-4F342CCEE696}')).toEqual(hex('03b7161335e04f64903b4f342ccee696'));
  });

  it("encodes qemu-img's header 1 byte for byte (CRC 0xa7cfa320)", () => {
    const h = encodeHeader({
      sequenceNumber: 0x360ddf92,
      fileWriteGuid: hex('56dc3b43a6b74190b034e598659f89bf'),
      dataWriteGuid: hex('b27f858474b94a84a082480a4c572061'),
      logGuid: ZERO_GUID,
      logVersion: 0,
      version: 1,
      logLength: 0x100000,
      logOffset: 0x100000,
    });
    expect(Buffer.from(h.subarray(0, 16)).toString('hex')).toBe('6865616420a3cfa792df0d3600000000');
    expect(Buffer.from(h.subarray(0x40, 0x50)).toString('hex')).toBe('00000100000010000000100000000000');
    const d = decodeHeader(h)!;
    expect(d.sequenceNumber).toBe(0x360ddf92);
    // The greater sequence number is current; a bad CRC makes a slot invalid.
    const h2 = encodeHeader({ ...d, sequenceNumber: d.sequenceNumber + 1 });
    expect(currentHeader('t', [h, h2]).slot).toBe(1);
    const torn = new Uint8Array(h2);
    torn[100] = 1;
    expect(currentHeader('t', [h, torn]).slot).toBe(0);
    expect(() => currentHeader('t', [torn, torn])).toThrow(/neither header/);
  });

  it("encodes qemu-img's log entry for one BAT update (CRC 0x4cf1148b) and finds it as the active sequence", () => {
    const bat = new Uint8Array(4096);
    bat.set(encodeEntry(6, 8 * MiB), 0);
    for (let i = 1; i < 8; i++) bat.set(encodeEntry(2, 0), i * 8);
    const logGuid = hex('5db29f52f4d44ca8ac138b0bfac7e5c1');
    const e = encodeLogEntry({
      logGuid,
      sequenceNumber: 1,
      tail: 0,
      flushedFileOffset: 0x1000000,
      lastFileOffset: 0x1000000,
      sectors: [{ fileOffset: 0x200000, data: bat }],
    });
    expect(e.length).toBe(0x2000);
    expect(Buffer.from(e.subarray(0, 0x60)).toString('hex')).toBe(
      '6c6f67658b14f14c0020000000000000' +
        '01000000000000000100000000000000' +
        '5db29f52f4d44ca8ac138b0bfac7e5c1' +
        '00000001000000000000000100000000' +
        '64657363000000000600800000000000' +
        '00002000000000000100000000000000',
    );
    const log = new Uint8Array(MiB);
    log.set(e, 0);
    const seq = findActiveSequence('t', log, logGuid)!;
    expect(seq.entries).toBe(1);
    expect(seq.writes).toEqual([{ fileOffset: 0x200000, data: bat }]);
    // Another LogGuid, or a flipped byte, and nothing validates.
    expect(findActiveSequence('t', log, hex('00'.repeat(15) + '01'))).toBeNull();
    log[0x1800] ^= 1;
    expect(findActiveSequence('t', log, logGuid)).toBeNull();
  });

  it('picks the complete sequence with the highest head (10, 11 with tail at 10) over a stale entry', () => {
    const g = hex('11'.repeat(16));
    const s = (v: number) => new Uint8Array(4096).fill(v);
    const log = new Uint8Array(MiB);
    log.set(
      encodeLogEntry({ logGuid: g, sequenceNumber: 3, tail: 0, flushedFileOffset: 0, lastFileOffset: 0, sectors: [{ fileOffset: 0x200000, data: s(3) }] }),
      0,
    );
    log.set(
      encodeLogEntry({
        logGuid: g,
        sequenceNumber: 10,
        tail: 0x10000,
        flushedFileOffset: 0,
        lastFileOffset: 0,
        sectors: [{ fileOffset: 0x200000, data: s(10) }],
      }),
      0x10000,
    );
    log.set(
      encodeLogEntry({
        logGuid: g,
        sequenceNumber: 11,
        tail: 0x10000,
        flushedFileOffset: 0,
        lastFileOffset: 0,
        sectors: [{ fileOffset: 0x201000, data: s(11) }],
      }),
      0x12000,
    );
    const seq = findActiveSequence('t', log, g)!;
    expect(seq.entries).toBe(2);
    expect(seq.writes.map((w) => ('data' in w ? w.data[0] : -1))).toEqual([10, 11]);
  });

  it("encodes the reference's parent locator example exactly", () => {
    const b = encodeParentLocator([
      ['parent_linkage', '{0210f60d-597d-6a48-9604-27166acc867a}'],
      ['relative_path', '.\\base.vhdx'],
    ]);
    expect(b.length).toBe(0xc4);
    expect(Buffer.from(b.subarray(0, 0x2c)).toString('hex')).toBe(
      'b7ef4ab09ed1814ab78925b8e9445913' + '00000200' + '2c000000480000001c004c00' + '94000000ae0000001a001600',
    );
    const m = decodeParentLocator('t', b);
    expect(m.get('relative_path')).toBe('.\\base.vhdx');
    expect(linkageMatches(m, guidFromText('0210F60D-597D-6A48-9604-27166ACC867A'))).toBe(true);
    expect(linkageMatches(m, ZERO_GUID)).toBe(false);
    const bad = new Uint8Array(b);
    bad[0x14] = 0xf0; // key offset far outside the item
    expect(() => decodeParentLocator('t', bad)).toThrow(/outside the item/);
  });

  it('BAT geometry matches [MS-VHDX] 2.5, and entries round-trip', () => {
    const rows: [number, number, number, number, number][] = [
      [64 * MiB, 8 * MiB, 512, 8, 513],
      [5 * 1024 * MiB, MiB, 4096, 5121, 8194],
      [127 * 1024 * MiB, 32 * MiB, 128, 4095, 4128],
      [2 * 1024 * 1024 * MiB, 32 * MiB, 128, 66047, 66048],
      [64 * 1024 * 1024 * MiB, 64 * MiB, 64, 1064959, 1064960],
    ];
    for (const [size, bs, ratio, dyn, diff] of rows) {
      const g = new BatGeometry(size, bs, 512);
      expect([g.chunkRatio, g.dynamicEntries, g.differencingEntries]).toEqual([ratio, dyn, diff]);
    }
    const g = new BatGeometry(5 * 1024 * MiB, MiB, 512);
    expect(g.payloadIndex(4096)).toBe(4097);
    expect(g.bitmapIndex(0)).toBe(4096);
    const e = encodeEntry(6, 0xb00000);
    expect(Buffer.from(e).toString('hex')).toBe('0600b00000000000');
    const big = new DataView(encodeEntry(6, 5000 * 4096 * MiB).buffer);
    expect([entryState(big, 0), entryOffset(big, 0)]).toEqual([6, 5000 * 4096 * MiB]);
  });
});
