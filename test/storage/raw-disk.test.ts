import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RawDisk, RawDiskError } from '../../root-partition/storage/raw-disk.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-raw-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('RawDisk', () => {
  it('creates a sparse image of the requested size', () => {
    const p = path.join(dir, 'a.raw');
    const d = RawDisk.create(p, { sizeBytes: 64 * 1024 * 1024 });
    expect(d.sectorCount).toBe(131072);
    expect(d.sectorSize).toBe(512);
    expect(d.readOnly).toBe(false);
    const st = fs.statSync(p);
    expect(st.size).toBe(64 * 1024 * 1024);
    // Sparse: (almost) no blocks allocated for 64 MiB of zeros.
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    d.close();
  });

  it('writes and reads back at sector offsets, and the bytes are at lba*512 in the file', () => {
    const p = path.join(dir, 'b.raw');
    const d = RawDisk.create(p, { sizeBytes: 1024 * 512 });
    const data = pattern(3 * 512, 7);
    d.write(100, data);
    const afterWrite = d.ioUs;
    const back = new Uint8Array(3 * 512);
    d.read(100, back);
    expect(back).toEqual(data);
    d.flush();
    // The time inside the system calls is counted (storvsp's split table reads it): each call adds.
    expect(afterWrite).toBeGreaterThan(0);
    expect(d.ioUs).toBeGreaterThan(afterWrite);
    d.close();
    const raw = fs.readFileSync(p);
    expect(new Uint8Array(raw.subarray(100 * 512, 103 * 512))).toEqual(data);
    expect(raw[100 * 512 - 1]).toBe(0);
  });

  it('reads straight into a view of shared guest memory', () => {
    const p = path.join(dir, 'c.raw');
    const d = RawDisk.create(p, { sizeBytes: 16 * 512 });
    d.write(2, pattern(1024, 3));
    const mem = new GuestMemory(65536);
    d.read(2, mem.view(0x1000, 1024));
    expect(mem.read(0x1000, 1024)).toEqual(pattern(1024, 3));
    d.write(5, mem.view(0x1000, 512));
    const back = new Uint8Array(512);
    d.read(5, back);
    expect(back).toEqual(pattern(512, 3));
    d.close();
  });

  it('reopens an image with its contents, read-only or read-write', () => {
    const p = path.join(dir, 'd.raw');
    const d = RawDisk.create(p, { sizeBytes: 8 * 512 });
    d.write(7, pattern(512, 9));
    d.close();
    const ro = RawDisk.open(p, { readOnly: true });
    expect(ro.readOnly).toBe(true);
    expect(ro.sectorCount).toBe(8);
    const back = new Uint8Array(512);
    ro.read(7, back);
    expect(back).toEqual(pattern(512, 9));
    expect(() => ro.write(0, back)).toThrow(expect.objectContaining({ code: RawDiskError.ReadOnly }));
    ro.flush(); // a no-op on a read-only image, not an error
    ro.close();
    const rw = RawDisk.open(p);
    rw.write(0, back);
    rw.close();
  });

  it('refuses out-of-range and partial-sector I/O', () => {
    const d = RawDisk.create(path.join(dir, 'e.raw'), { sizeBytes: 8 * 512 });
    expect(() => d.read(8, new Uint8Array(512))).toThrow(expect.objectContaining({ code: RawDiskError.OutOfRange }));
    expect(() => d.read(7, new Uint8Array(1024))).toThrow(expect.objectContaining({ code: RawDiskError.OutOfRange }));
    expect(() => d.read(0, new Uint8Array(100))).toThrow(expect.objectContaining({ code: RawDiskError.OutOfRange }));
    expect(() => d.write(-1, new Uint8Array(512))).toThrow(expect.objectContaining({ code: RawDiskError.OutOfRange }));
    d.close();
    expect(() => d.read(0, new Uint8Array(512))).toThrow(expect.objectContaining({ code: RawDiskError.Closed }));
  });

  it('reports clear errors at open time', () => {
    expect(() => RawDisk.open(path.join(dir, 'missing.raw'))).toThrow(expect.objectContaining({ code: RawDiskError.NotFound }));
    const odd = path.join(dir, 'odd.raw');
    fs.writeFileSync(odd, new Uint8Array(1000));
    expect(() => RawDisk.open(odd)).toThrow(expect.objectContaining({ code: RawDiskError.BadSize }));
    const empty = path.join(dir, 'empty.raw');
    fs.writeFileSync(empty, new Uint8Array(0));
    expect(() => RawDisk.open(empty)).toThrow(expect.objectContaining({ code: RawDiskError.BadSize }));
    expect(() => RawDisk.open(dir)).toThrow(expect.objectContaining({ code: expect.stringMatching(/NOT_A_FILE|DISK_IO/) }));
    expect(() => RawDisk.create(path.join(dir, 'x.raw'), { sizeBytes: 513 })).toThrow(expect.objectContaining({ code: RawDiskError.BadSize }));
    const exists = path.join(dir, 'exists.raw');
    fs.writeFileSync(exists, new Uint8Array(512));
    expect(() => RawDisk.create(exists, { sizeBytes: 1024 })).toThrow(expect.objectContaining({ code: RawDiskError.Exists }));
    const replaced = RawDisk.create(exists, { sizeBytes: 1024, overwrite: true });
    expect(replaced.sectorCount).toBe(2);
    replaced.close();
  });

  // Root bypasses file modes: as root, the check runs in a child process dropped to `nobody`.
  it('reports permission denied for an image it may not write', () => {
    const p = path.join(dir, 'ro.raw');
    fs.writeFileSync(p, new Uint8Array(1024));
    fs.chmodSync(p, 0o444);
    if (process.getuid?.() !== 0) {
      expect(() => RawDisk.open(p)).toThrow(expect.objectContaining({ code: RawDiskError.AccessDenied }));
      const ro = RawDisk.open(p, { readOnly: true });
      expect(ro.sectorCount).toBe(2);
      ro.close();
      return;
    }
    // The child runs a bundle of the backend placed beside the image: the repository itself may sit
    // in a directory `nobody` cannot enter (a private temporary clone).
    fs.chmodSync(dir, 0o755);
    const bundle = path.join(dir, 'raw-disk.mjs');
    buildSync({
      entryPoints: [fileURLToPath(new URL('../../root-partition/storage/raw-disk.ts', import.meta.url))],
      outfile: bundle,
      bundle: true,
      format: 'esm',
      platform: 'node',
      logLevel: 'silent',
    });
    const script = `
      import { RawDisk } from ${JSON.stringify(pathToFileURL(bundle).href)};
      let code = 'opened';
      try { RawDisk.open(${JSON.stringify(p)}).close(); } catch (e) { code = e.code; }
      const ro = RawDisk.open(${JSON.stringify(p)}, { readOnly: true });
      console.log(JSON.stringify({ code, sectors: ro.sectorCount, uid: process.getuid() }));
      ro.close();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      cwd: dir,
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, HOME: '/tmp' },
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ code: RawDiskError.AccessDenied, sectors: 2, uid: 65534 });
  });
});
