/**
 * The operations behind `tsvisor disk`: new, info, convert (raw ↔ VHDX, chains flattened),
 * resize (grow), merge and compact, each checked by content (and by qemu-img where it can open
 * the result); plus the CLI wiring of one command with --json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compactDisk, convertDisk, mergeDisk, newDisk, resizeDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import type { VhdxDisk } from '../../root-partition/storage/vhdx/vhdx-disk.ts';

const MiB = 1024 * 1024;
const qemu = spawnSync('sh', ['-c', 'command -v qemu-img']).status === 0;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-disk-tools-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (name: string) => path.join(dir, name);
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = ((i >> 9) * 5 + i * 3 + seed) & 0xff;
  return b;
}
function content(p: string): Buffer {
  const d = openDisk(p, { readOnly: true });
  const b = new Uint8Array(d.sectorCount * 512);
  d.read(0, b);
  d.close();
  return Buffer.from(b);
}
function write(p: string, lba: number, data: Uint8Array): void {
  const d = openDisk(p);
  d.write(lba, data);
  d.flush();
  d.close();
}
function qemuCheck(p: string): void {
  if (!qemu) return;
  const r = spawnSync('qemu-img', ['check', p], { encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

describe('disk tools', () => {
  it("new and info: raw, fixed, dynamic and differencing, with Get-VHD's fields", () => {
    expect(newDisk(at('r.raw'), { kind: 'raw', sizeBytes: 4 * MiB })).toMatchObject({ format: 'raw', type: 'raw', sizeBytes: 4 * MiB });
    expect(newDisk(at('f.vhdx'), { kind: 'fixed', sizeBytes: 4 * MiB, blockSizeBytes: MiB })).toMatchObject({
      format: 'vhdx',
      type: 'fixed',
      blocks: 4,
      allocatedBlocks: 4,
    });
    const base = newDisk(at('d.vhdx'), { kind: 'dynamic', sizeBytes: 16 * MiB, physicalSectorSize: 512 });
    expect(base).toMatchObject({ type: 'dynamic', blockSizeBytes: 8 * MiB, blocks: 2, allocatedBlocks: 0, physicalSectorSize: 512, parentPath: null });
    const kid = newDisk(at('k.avhdx'), { kind: 'differencing', parentPath: at('d.vhdx') });
    expect(kid).toMatchObject({
      type: 'differencing',
      sizeBytes: 16 * MiB,
      parentPath: at('d.vhdx'),
      parentIdentifier: base.identifier,
      diskIdentifier: base.diskIdentifier,
    });
    expect(() => newDisk(at('x.raw'), { kind: 'dynamic', sizeBytes: MiB })).toThrow(/name the file .vhdx/);
    expect(() => newDisk(at('d.vhdx'), { kind: 'dynamic', sizeBytes: MiB })).toThrow(/already exists/);
  });

  it('convert: raw → dynamic VHDX → fixed VHDX → raw keeps every byte; a chain is flattened', () => {
    newDisk(at('a.raw'), { kind: 'raw', sizeBytes: 24 * MiB });
    write(at('a.raw'), 1000, pattern(3 * MiB, 1));
    const before = content(at('a.raw'));
    const dyn = convertDisk(at('a.raw'), at('b.vhdx'), { blockSizeBytes: MiB });
    expect(dyn).toMatchObject({ type: 'dynamic', sizeBytes: 24 * MiB, allocatedBlocks: 4 }); // zero blocks are not copied
    qemuCheck(at('b.vhdx'));
    convertDisk(at('b.vhdx'), at('c.vhdx'), { kind: 'fixed' });
    qemuCheck(at('c.vhdx'));
    convertDisk(at('c.vhdx'), at('d.raw'));
    expect(content(at('d.raw')).equals(before)).toBe(true);
    newDisk(at('k.vhdx'), { kind: 'differencing', parentPath: at('b.vhdx') });
    write(at('k.vhdx'), 5, pattern(4096, 9));
    const chain = content(at('k.vhdx'));
    expect(convertDisk(at('k.vhdx'), at('flat.vhdx')).type).toBe('dynamic');
    expect(content(at('flat.vhdx')).equals(chain)).toBe(true);
    expect(() => convertDisk(at('a.raw'), at('b.vhdx'))).toThrow(/already exists/);
  });

  it('resize grows dynamic, fixed and raw disks and keeps their data; shrinking and resizing a child are refused', () => {
    for (const [name, kind] of [
      ['g.vhdx', 'dynamic'],
      ['h.vhdx', 'fixed'],
      ['g.raw', 'raw'],
    ] as const) {
      newDisk(at(name), { kind, sizeBytes: 8 * MiB, blockSizeBytes: kind === 'raw' ? undefined : MiB });
      write(at(name), 100, pattern(4096, 2));
      const info = resizeDisk(at(name), 20 * MiB);
      expect(info.sizeBytes).toBe(20 * MiB);
      if (kind === 'fixed') expect(info.allocatedBlocks).toBe(20);
      write(at(name), 19 * 2048, pattern(4096, 3));
      const c = content(at(name));
      expect(c.subarray(100 * 512, 100 * 512 + 4096).equals(pattern(4096, 2))).toBe(true);
      expect(c.subarray(19 * MiB, 19 * MiB + 4096).equals(pattern(4096, 3))).toBe(true);
      if (kind !== 'raw') qemuCheck(at(name));
      expect(() => resizeDisk(at(name), 4 * MiB)).toThrow(/shrinking is not supported/);
    }
    newDisk(at('k.vhdx'), { kind: 'differencing', parentPath: at('g.vhdx') });
    expect(() => resizeDisk(at('k.vhdx'), 40 * MiB)).toThrow(/has its parent's size/);
  });

  it("merge writes the child's own sectors (bitmap runs, whole blocks, zeroed blocks) into the parent and deletes the child", () => {
    newDisk(at('p.vhdx'), { kind: 'dynamic', sizeBytes: 16 * MiB, blockSizeBytes: MiB });
    write(at('p.vhdx'), 0, pattern(16 * MiB, 4));
    newDisk(at('c.vhdx'), { kind: 'differencing', parentPath: at('p.vhdx'), blockSizeBytes: MiB });
    write(at('c.vhdx'), 7, pattern(1024, 5)); // partial: bitmap
    write(at('c.vhdx'), 4 * 2048, pattern(MiB, 6)); // whole block
    write(at('c.vhdx'), 2047, pattern(2048, 7)); // across blocks 0 and 1
    const chain = content(at('c.vhdx'));
    const merged = mergeDisk(at('c.vhdx'));
    expect(merged.path).toBe(at('p.vhdx'));
    expect(fs.existsSync(at('c.vhdx'))).toBe(false);
    expect(content(at('p.vhdx')).equals(chain)).toBe(true);
    qemuCheck(at('p.vhdx'));
    expect(() => mergeDisk(at('p.vhdx'))).toThrow(/not a differencing disk/);
  });

  it('compact drops blocks the guest zeroed, keeps the content, and children stay linked', () => {
    newDisk(at('z.vhdx'), { kind: 'dynamic', sizeBytes: 16 * MiB, blockSizeBytes: MiB });
    write(at('z.vhdx'), 0, pattern(8 * MiB, 8));
    write(at('z.vhdx'), 2048, new Uint8Array(4 * MiB)); // blocks 1–4 zeroed by the "guest"
    const kid = at('kid.vhdx');
    newDisk(kid, { kind: 'differencing', parentPath: at('z.vhdx') });
    const before = content(at('z.vhdx'));
    const { before: b, after: a } = compactDisk(at('z.vhdx'));
    expect([b.allocatedBlocks, a.allocatedBlocks]).toEqual([8, 4]);
    expect(a.fileSizeBytes).toBeLessThan(b.fileSizeBytes);
    expect([a.identifier, a.diskIdentifier]).toEqual([b.identifier, b.diskIdentifier]);
    expect(content(at('z.vhdx')).equals(before)).toBe(true);
    expect(content(kid).equals(before)).toBe(true);
    qemuCheck(at('z.vhdx'));
    expect(fs.readdirSync(dir).filter((f) => f.includes('compact'))).toEqual([]);
  });

  it('refuses to change an image another process has open', () => {
    newDisk(at('busy.vhdx'), { kind: 'dynamic', sizeBytes: 8 * MiB });
    const held = openDisk(at('busy.vhdx')) as VhdxDisk;
    try {
      expect(() => resizeDisk(at('busy.vhdx'), 16 * MiB)).toThrow(/is in use/);
      expect(() => compactDisk(at('busy.vhdx'))).toThrow(/is in use/);
    } finally {
      held.close();
    }
  });

  it('tsvisor disk new / info --json through the CLI', () => {
    // The bin script runs the prebuilt CLI bundle (npm test builds it first).
    const bin = path.resolve(import.meta.dirname, '../../bin/tsvisor.mjs');
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'disk', ...args], { encoding: 'utf8', timeout: 60_000 });
    const made = run('new', at('cli.vhdx'), '--size', '32M', '--block-size', '1M', '--json');
    expect(made.status, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ format: 'vhdx', type: 'dynamic', sizeBytes: 32 * MiB, blockSizeBytes: MiB });
    const bad = run('new', at('cli2.vhdx'), '--differencing');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/needs --parent/);
  }, 150_000);
});
