/**
 * The migration stream's frames and the host trust list, without processes: exact bytes, and a
 * hostile or broken peer's frames refused before anything is allocated or written.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodePages,
  decodeZeroPages,
  encodeFrame,
  encodePages,
  encodeZeroPages,
  FrameReader,
  MAX_MIGRATION_FRAME,
  MAX_PAGES_PER_FRAME,
  MigrationFrame,
  PAGE_BYTES,
} from '../../root-partition/migration/migration-wire.ts';
import { loadTrustedHosts, normalizeFingerprint, trustHost, untrustHost } from '../../root-partition/migration/host-trust.ts';
import { PageHashTracker, ShadowPageTracker } from '../../root-partition/migration/page-tracker.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsv-wire-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('migration frames', () => {
  it('a frame is u32 length, type byte, body', () => {
    expect(encodeFrame(MigrationFrame.Go).toString('hex')).toBe('0100000007');
    expect(encodeFrame(MigrationFrame.Abort, Buffer.from('no')).toString('hex')).toBe('03000000096e6f');
    const z = encodeZeroPages(Uint32Array.of(5, 0x10002), 2);
    expect(z.toString('hex')).toBe('0d00000003' + '02000000' + '05000000' + '02000100');
  });

  it('reassembles frames split anywhere and keeps what follows', () => {
    const bytes = Buffer.concat([encodeFrame(MigrationFrame.Ready), encodeFrame(MigrationFrame.Hello, Buffer.from('{}')), encodeFrame(MigrationFrame.Go)]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = new FrameReader();
      const frames = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
      expect(frames.map((f) => f.type)).toEqual([MigrationFrame.Ready, MigrationFrame.Hello, MigrationFrame.Go]);
      expect(frames[1].body.toString()).toBe('{}');
    }
  });

  it('refuses a length over the limit, a zero length and an unknown type, before buffering the body', () => {
    const big = Buffer.alloc(5);
    big.writeUInt32LE(MAX_MIGRATION_FRAME + 1, 0);
    expect(() => new FrameReader().push(big)).toThrow(/bad migration frame length/);
    expect(() => new FrameReader().push(Buffer.from('0000000001', 'hex'))).toThrow(/bad migration frame length/);
    expect(() => new FrameReader().push(Buffer.from('01000000ff', 'hex'))).toThrow(/unknown migration frame type 255/);
  });

  it('PAGES: every page number is checked before any page is written', () => {
    const data = Buffer.alloc(2 * PAGE_BYTES, 0xab);
    const frame = encodePages(Uint32Array.of(1, 99), 2, data);
    const body = new FrameReader().push(frame)[0].body;
    const written: number[] = [];
    expect(() => decodePages(body, 64, (pfn) => written.push(pfn))).toThrow(/page 99 is outside guest memory/);
    expect(written).toEqual([]);
    expect(
      decodePages(body, 100, (pfn, bytes) => {
        written.push(pfn);
        expect(bytes.every((b) => b === 0xab)).toBe(true);
      }),
    ).toBe(2);
    expect(written).toEqual([1, 99]);
  });

  it('PAGES and ZERO_PAGES with a count that does not match their length, or too many pages, are refused', () => {
    const body = Buffer.alloc(4 + 4 + PAGE_BYTES);
    body.writeUInt32LE(2, 0);
    expect(() => decodePages(body, 10, () => {})).toThrow(/does not hold whole pages/);
    const many = Buffer.alloc(4);
    many.writeUInt32LE(MAX_PAGES_PER_FRAME + 1, 0);
    expect(() => decodePages(many, 10, () => {})).toThrow(/does not hold whole pages/);
    expect(() => decodeZeroPages(Buffer.from('0200000001000000', 'hex'), 10, () => {})).toThrow(/malformed/);
    expect(() => decodeZeroPages(Buffer.from('0000000001000000', 'hex'), 10, () => {})).toThrow(/malformed/);
  });
});

describe('dirty-page detection', () => {
  it('both detectors send non-zero pages first, then exactly the changed ones, zero pages as zero', () => {
    for (const make of [(m: Uint8Array) => new ShadowPageTracker(m), (m: Uint8Array) => new PageHashTracker(m)]) {
      const mem = new Uint8Array(new SharedArrayBuffer(16 * PAGE_BYTES));
      mem[3 * PAGE_BYTES] = 1;
      mem[7 * PAGE_BYTES + 4095] = 2;
      const t = make(mem);
      const seen = () => {
        const out: string[] = [];
        t.scan(0, t.pageCount, (pfn, bytes, zero) => out.push(`${pfn}${zero ? 'z' : `:${bytes[0] + bytes[4095]}`}`));
        return out;
      };
      expect(seen()).toEqual(['3:1', '7:2']);
      expect(seen()).toEqual([]);
      mem[3 * PAGE_BYTES] = 0;
      mem[9 * PAGE_BYTES + 100] = 5;
      expect(seen()).toEqual(['3z', '9:0']);
    }
  });
});

describe('host trust', () => {
  const fp = 'ab'.repeat(32);
  it('normalizes fingerprints and refuses what is not one', () => {
    expect(normalizeFingerprint(`sha256:${fp}`)).toBe('AB:'.repeat(31) + 'AB');
    expect(() => normalizeFingerprint('AB:CD')).toThrow(/not a SHA-256 certificate fingerprint/);
  });

  it('pins, lists and removes hosts in the trust file; a damaged file is an error, not an empty list', () => {
    const file = join(dir, 'trust.json');
    expect(loadTrustedHosts(file)).toEqual([]);
    trustHost(file, fp, 'b');
    trustHost(file, fp, 'b again');
    expect(loadTrustedHosts(file).map((h) => h.name)).toEqual(['b again']);
    expect(untrustHost(file, fp)).toBe(true);
    expect(untrustHost(file, fp)).toBe(false);
    writeFileSync(file, '{"hosts": [{"fingerprint256": "nonsense"}]}');
    expect(() => loadTrustedHosts(file)).toThrow(/damaged/);
  });
});
