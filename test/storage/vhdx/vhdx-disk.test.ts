/**
 * VhdxDisk against files this code creates: read/write per block state, growth, differencing
 * reads through the sector bitmap, locks along a chain, and hostile images refused with clear
 * errors (each patched into an otherwise valid file, so only the named fault is wrong).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLockedError } from '../../../root-partition/storage/file-lock.ts';
import { createVhdx } from '../../../root-partition/storage/vhdx/vhdx-create.ts';
import type { VhdxDisk } from '../../../root-partition/storage/vhdx/vhdx-disk.ts';
import {
  encodeHeader,
  decodeHeader,
  encodeRegionTable,
  HEADER_OFFSETS,
  putU32,
  putU64,
  RegionGuid,
  REGION_TABLE_OFFSETS,
} from '../../../root-partition/storage/vhdx/vhdx-format.ts';
import { randomGuid } from '../../../root-partition/storage/vhdx/vhdx-guid.ts';
import { openVhdx } from '../../../root-partition/storage/vhdx/vhdx-open.ts';
import { openDisk } from '../../../root-partition/storage/open-disk.ts';
import { StorageRoots } from '../../../root-partition/host/storage-roots.ts';

const MiB = 1024 * 1024;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-vhdx-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}
/** Offset of the first differing byte, -1 when equal (vitest's deep equality is far too slow for MiBs). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))) return -1;
  let i = 0;
  while (a[i] === b[i]) i++;
  return i;
}
function readAll(d: VhdxDisk): Uint8Array {
  const b = new Uint8Array(d.sectorCount * 512);
  d.read(0, b);
  return b;
}
/** Patches bytes of a file in place. */
function patch(file: string, at: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, at);
  fs.closeSync(fd);
}
const u64 = (v: number) => {
  const b = new Uint8Array(8);
  putU64(b, 0, v);
  return b;
};

describe('VhdxDisk', () => {
  it('a dynamic disk grows block by block, reads zeros where nothing was written, and keeps data across reopen', () => {
    const p = path.join(dir, 'd.vhdx');
    createVhdx(p, { type: 'dynamic', sizeBytes: 64 * MiB, blockSizeBytes: MiB });
    expect(fs.statSync(p).size).toBe(4 * MiB);
    const expected = new Uint8Array(64 * MiB);
    const d = openVhdx(p);
    expect([d.type, d.sectorCount, d.blockSize]).toEqual(['dynamic', 131072, MiB]);
    const writes: [number, Uint8Array][] = [
      [0, pattern(4096, 1)],
      [MiB / 512 - 2, pattern(2048, 2)],
      [40 * 2048 + 5, pattern(512, 3)],
      [131072 - 8, pattern(4096, 4)],
    ];
    for (const [lba, data] of writes) {
      d.write(lba, data);
      expected.set(data, lba * 512);
    }
    expect(d.stats.allocations).toBe(4); // blocks 0, 1, 40, 63
    expect(fs.statSync(p).size).toBe(8 * MiB);
    expect(firstDiff(readAll(d), expected)).toBe(-1);
    d.flush();
    d.close();
    const again = openVhdx(p, { readOnly: true });
    expect(firstDiff(readAll(again), expected)).toBe(-1);
    again.close();
  });

  it('a fixed disk has every block in the file and writes in place', () => {
    const p = path.join(dir, 'f.vhdx');
    createVhdx(p, { type: 'fixed', sizeBytes: 8 * MiB, blockSizeBytes: MiB });
    const d = openVhdx(p);
    expect(d.type).toBe('fixed');
    const size = fs.statSync(p).size;
    d.write(3000, pattern(1024, 9));
    expect(d.stats.allocations).toBe(0);
    expect(fs.statSync(p).size).toBe(size);
    d.close();
    const r = openVhdx(p, { readOnly: true });
    const b = new Uint8Array(1024);
    r.read(3000, b);
    expect(b).toEqual(pattern(1024, 9));
    r.close();
  });

  it('a differencing disk reads the parent where it has nothing, its own sectors by the bitmap, and whole blocks as FULLY_PRESENT', () => {
    const base = path.join(dir, 'base.vhdx');
    createVhdx(base, { type: 'dynamic', sizeBytes: 16 * MiB, blockSizeBytes: 2 * MiB });
    const b = openVhdx(base);
    const expected = pattern(16 * MiB, 5);
    b.write(0, expected);
    b.close();
    const child = path.join(dir, 'sub', 'child.avhdx');
    fs.mkdirSync(path.dirname(child));
    createVhdx(child, { type: 'differencing', parentPath: base, blockSizeBytes: MiB });
    const c = openVhdx(child);
    expect(c.type).toBe('differencing');
    expect(firstDiff(readAll(c), expected)).toBe(-1);
    c.write(8, fill(4096, 0x11)); // sectors 8–15 of block 0: bitmap
    expected.set(fill(4096, 0x11), 8 * 512);
    c.write(5 * 2048 + 3, fill(1024, 0x22)); // straddles nothing, block 5
    expected.set(fill(1024, 0x22), (5 * 2048 + 3) * 512);
    c.write(2 * 2048, fill(MiB, 0x33)); // block 2 whole
    expected.set(fill(MiB, 0x33), 2 * MiB);
    c.write(2048 - 1, fill(1024, 0x44)); // last sector of block 0, first of block 1
    expected.set(fill(1024, 0x44), (2048 - 1) * 512);
    expect(c.blockEntry(0).state).toBe(7);
    expect(c.blockEntry(2).state).toBe(6);
    expect(c.blockEntry(3).state).toBe(0);
    expect(firstDiff(readAll(c), expected)).toBe(-1);
    c.close();
    // The parent is untouched, the child reopens with the same content.
    const again = openVhdx(child, { readOnly: true });
    expect(firstDiff(readAll(again), expected)).toBe(-1);
    expect(firstDiff(readAll(again.parent!), pattern(16 * MiB, 5))).toBe(-1);
    again.close();
  });

  it('locks the leaf exclusive and its parents shared', () => {
    const base = path.join(dir, 'base.vhdx');
    createVhdx(base, { type: 'dynamic', sizeBytes: 4 * MiB });
    const child = path.join(dir, 'child.vhdx');
    createVhdx(child, { type: 'differencing', parentPath: base });
    const c = openVhdx(child);
    // Another reader of the parent is fine (shared); a writer of the parent, or of the child, is refused.
    openVhdx(base, { readOnly: true }).close();
    expect(() => openVhdx(base)).toThrow(FileLockedError);
    expect(() => openVhdx(child, { readOnly: true })).toThrow(FileLockedError);
    c.close();
    openVhdx(base).close();
  });

  it('refuses a child whose parent was written after it was made', () => {
    const base = path.join(dir, 'base.vhdx');
    createVhdx(base, { type: 'dynamic', sizeBytes: 4 * MiB });
    const child = path.join(dir, 'child.vhdx');
    createVhdx(child, { type: 'differencing', parentPath: base });
    const b = openVhdx(base);
    b.write(0, fill(512, 1));
    b.close();
    expect(() => openVhdx(child)).toThrow(/has changed since this disk was made/);
  });

  it('holds every parent of a chain to the storage roots, as the disk itself', () => {
    const root = path.join(dir, 'root');
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(root);
    fs.mkdirSync(outside);
    createVhdx(path.join(outside, 'base.vhdx'), { type: 'dynamic', sizeBytes: 4 * MiB });
    createVhdx(path.join(root, 'inside.vhdx'), { type: 'dynamic', sizeBytes: 4 * MiB });
    createVhdx(path.join(root, 'child.vhdx'), { type: 'differencing', parentPath: path.join(outside, 'base.vhdx') });
    createVhdx(path.join(root, 'ok.vhdx'), { type: 'differencing', parentPath: path.join(root, 'inside.vhdx') });
    const roots = StorageRoots.of([root]);
    const guard = { checkOpened: (fd: number, p: string) => roots.checkOpened(fd, p, 'disk image'), checkPath: (p: string) => roots.check(p, 'disk image') };
    expect(() => openDisk(path.join(root, 'child.vhdx'), guard)).toThrow(/not in a storage root/);
    openDisk(path.join(root, 'ok.vhdx'), guard).close();
    // A symlink inside the root that leads out is judged by where it leads.
    fs.symlinkSync(path.join(outside, 'base.vhdx'), path.join(root, 'link.vhdx'));
    createVhdx(path.join(root, 'via-link.vhdx'), { type: 'differencing', parentPath: path.join(root, 'link.vhdx') });
    expect(() => openDisk(path.join(root, 'via-link.vhdx'), guard)).toThrow(/not in a storage root/);
  });

  describe('hostile images', () => {
    let made = 0;
    const make = (blocks = 2) => {
      const p = path.join(dir, `h${made++}.vhdx`);
      createVhdx(p, { type: 'dynamic', sizeBytes: 16 * MiB, blockSizeBytes: MiB });
      const d = openVhdx(p);
      for (let i = 0; i < blocks; i++) d.write(i * 2048, fill(512, i + 1));
      d.close();
      return p;
    };
    const BAT = 2 * MiB;
    const batEntry = (state: number, offMiB: number) => {
      const b = u64(offMiB * MiB);
      b[0] |= state;
      return b;
    };

    it('a BAT entry past the end of the file', () => {
      const p = make();
      patch(p, BAT + 8, batEntry(6, 4096));
      expect(() => openVhdx(p)).toThrow(/BAT entry 1 points at .* outside the .*-byte file/);
    });

    it('two BAT entries on one block, and a block inside the metadata region', () => {
      const p = make();
      const first = fs.readFileSync(p).subarray(BAT, BAT + 8);
      patch(p, BAT + 8, first);
      expect(() => openVhdx(p)).toThrow(/two BAT entries share the file range/);
      patch(p, BAT + 8, batEntry(6, 3)); // the metadata region sits at 3 MiB
      expect(() => openVhdx(p)).toThrow(/overlaps a region/);
      patch(p, BAT + 8, batEntry(6, 0));
      expect(() => openVhdx(p)).toThrow(/outside/);
    });

    it('reserved and differencing-only states in a dynamic disk', () => {
      const p = make();
      patch(p, BAT + 16, batEntry(4, 0));
      expect(() => openVhdx(p)).toThrow(/reserved state 4/);
      patch(p, BAT + 16, batEntry(7, 0));
      expect(() => openVhdx(p)).toThrow(/PARTIALLY_PRESENT in a disk without a parent/);
    });

    it('bad CRCs: one torn header falls back to the other, both torn is refused, a torn region table is refused', () => {
      const p = make();
      const buf = fs.readFileSync(p);
      const h = [0, 1].map((i) => decodeHeader(buf.subarray(HEADER_OFFSETS[i], HEADER_OFFSETS[i] + 4096))!);
      const cur = h[0].sequenceNumber > h[1].sequenceNumber ? 0 : 1;
      patch(p, HEADER_OFFSETS[cur] + 200, fill(1, 0xff));
      const d = openVhdx(p, { readOnly: true });
      d.close();
      patch(p, HEADER_OFFSETS[1 - cur] + 200, fill(1, 0xff));
      expect(() => openVhdx(p)).toThrow(/neither header/);
      const q = make();
      patch(q, REGION_TABLE_OFFSETS[0] + 100, fill(1, 1));
      expect(() => openVhdx(q)).toThrow(/region table CRC-32C/);
    });

    it('huge metadata: an item over 1 MiB, an entry count over 2047, a required unknown item', () => {
      const p = make(0);
      const meta = 3 * MiB;
      const orig = fs.readFileSync(p).subarray(meta, meta + 64);
      const len = new Uint8Array(4);
      putU32(len, 0, 2 * MiB);
      patch(p, meta + 32 + 20, len);
      expect(() => openVhdx(p)).toThrow(/metadata item 0 is 2097152 bytes/);
      patch(p, meta, orig);
      patch(p, meta + 10, new Uint8Array([0xff, 0xff]));
      expect(() => openVhdx(p)).toThrow(/claims 65535 entries/);
      patch(p, meta, orig);
      patch(p, meta + 32, randomGuid()); // File Parameters becomes an unknown, required item
      expect(() => openVhdx(p)).toThrow(/required metadata item is unknown/);
    });

    it('absurd sizes: virtual size past 64 TiB, a block size that is no power of two, a BAT too large to hold', () => {
      const p = make(0);
      const items = 3 * MiB + 64 * 1024;
      patch(p, items + 8, u64(65 * 1024 * 1024 * MiB));
      expect(() => openVhdx(p)).toThrow(/virtual size .* up to 64 TiB/);
      patch(p, items + 8, u64(64 * 1024 * 1024 * MiB)); // 64 TiB of 1 MiB blocks: a 512 MiB BAT
      expect(() => openVhdx(p)).toThrow(/BAT region of .* cannot hold|BAT needs/);
      patch(p, items + 8, u64(16 * MiB));
      const bs = new Uint8Array(4);
      putU32(bs, 0, 3 * MiB);
      patch(p, items, bs);
      expect(() => openVhdx(p)).toThrow(/block size 3145728 is not a power of two/);
    });

    it('a parent loop', () => {
      const base = path.join(dir, 'base.vhdx');
      createVhdx(base, { type: 'dynamic', sizeBytes: 4 * MiB });
      const kid1 = path.join(dir, 'kid1.vhdx');
      createVhdx(kid1, { type: 'differencing', parentPath: base });
      const kid2 = path.join(dir, 'kid2.vhdx');
      createVhdx(kid2, { type: 'differencing', parentPath: kid1 });
      // kid1's relative_path ".\base.vhdx" becomes ".\kid2.vhdx": kid2 → kid1 → kid2 → …
      const buf = fs.readFileSync(kid1);
      const at = buf.indexOf(Buffer.from('base.vhdx', 'utf16le'));
      expect(at).toBeGreaterThan(0);
      patch(kid1, at, Buffer.from('kid2.vhdx', 'utf16le'));
      expect(() => openVhdx(kid2, { readOnly: true })).toThrow(/loops back|has changed/);
      // A self-loop is caught by file identity before any GUID check.
      patch(kid1, at, Buffer.from('kid1.vhdx', 'utf16le'));
      expect(() => openVhdx(kid1, { readOnly: true })).toThrow(/loops back to this file/);
    });

    it('a header naming a log that holds no entry is refused, not ignored', () => {
      const p = make();
      const buf = fs.readFileSync(p);
      const h = [0, 1].map((i) => decodeHeader(buf.subarray(HEADER_OFFSETS[i], HEADER_OFFSETS[i] + 4096))!);
      const cur = h[0].sequenceNumber > h[1].sequenceNumber ? h[0] : h[1];
      patch(p, HEADER_OFFSETS[0], encodeHeader({ ...cur, sequenceNumber: cur.sequenceNumber + 1, logGuid: randomGuid() }));
      expect(() => openVhdx(p)).toThrow(/holds no complete entry/);
    });

    it('a region table with a required unknown region', () => {
      const p = make(0);
      const regions = encodeRegionTable([
        { guid: RegionGuid.Bat, fileOffset: 2 * MiB, length: MiB, required: true },
        { guid: RegionGuid.Metadata, fileOffset: 3 * MiB, length: MiB, required: true },
        { guid: randomGuid(), fileOffset: 5 * MiB, length: MiB, required: true },
      ]);
      patch(p, REGION_TABLE_OFFSETS[0], regions);
      expect(() => openVhdx(p)).toThrow(/required but unknown/);
    });
  });
});
