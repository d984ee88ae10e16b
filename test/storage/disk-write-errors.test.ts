import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { DiskIoError } from '../../root-partition/storage/disk-io-error.ts';
import { ScsiDataBuffer } from '../../root-partition/storage/scsi/scsi-data-buffer.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { FaultyIo } from '../helpers/faulty-io.ts';

const cdb = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('hex');
const DISK_ID = new Uint8Array(16).fill(7);
const SYNC_CACHE = '35 00 00000000 00 0000 00';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-diskerr-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('raw disk: flush errors are sticky', () => {
  it('after one fdatasync EIO every later flush fails with it, though fdatasync would now succeed; reopening clears it', () => {
    const io = new FaultyIo();
    const logged: string[] = [];
    const p = path.join(dir, 'd.raw');
    const d = RawDisk.create(p, { sizeBytes: 64 * 512, io, log: (m) => logged.push(m) });
    d.write(9, new Uint8Array(512).fill(1));
    d.write(3, new Uint8Array(512).fill(2));
    io.fail('fdatasync', 'EIO');
    let first: DiskIoError | undefined;
    try {
      d.flush();
    } catch (e) {
      first = e as DiskIoError;
    }
    expect(first).toBeInstanceOf(DiskIoError);
    expect({ op: first!.operation, errno: first!.errno, lba: first!.lba, path: first!.path }).toEqual({ op: 'flush', errno: 'EIO', lba: 3, path: p });
    for (let i = 0; i < 3; i++) expect(() => d.flush()).toThrow(first!.message);
    expect(io.calls.fdatasync).toBe(0); // the repeat comes from the disk, not from a new fdatasync
    expect(logged).toEqual([first!.message]); // logged once per failure, not per repeat
    d.close();
    const again = RawDisk.open(p, { io });
    again.flush();
    expect(io.calls.fdatasync).toBe(1);
    again.close();
  });

  it('rate-limits the host log of a disk that keeps failing, and says how many lines it left out', () => {
    const io = new FaultyIo();
    const logged: string[] = [];
    const d = RawDisk.create(path.join(dir, 'e.raw'), { sizeBytes: 8 * 512, io, log: (m) => logged.push(m) });
    io.fail('pread', 'EIO', 1000);
    for (let i = 0; i < 1000; i++) expect(() => d.read(1, new Uint8Array(512))).toThrow(DiskIoError);
    expect(logged.length).toBe(5);
    expect(d.stats.errors).toBe(1000);
    d.close();
  });
});

describe('SCSI disk over a failing image', () => {
  it('SYNCHRONIZE CACHE keeps answering MEDIUM ERROR / WRITE ERROR with the first unflushed LBA', () => {
    const io = new FaultyIo();
    const raw = RawDisk.create(path.join(dir, 's.raw'), { sizeBytes: 256 * 512, io });
    const disk = new ScsiDisk(raw, { diskId: DISK_ID });
    const w = disk.execute(cdb('2a 00 00000042 00 0002 00'), new ScsiDataBuffer([new Uint8Array(1024).fill(9)]), 'out');
    expect(w.status).toBe(0);
    io.fail('fdatasync', 'EIO');
    const expected = 'f00003000000420a000000000c0000000000';
    expect(hex(disk.execute(cdb(SYNC_CACHE), ScsiDataBuffer.empty(), 'none').sense)).toBe(expected);
    expect(hex(disk.execute(cdb(SYNC_CACHE), ScsiDataBuffer.empty(), 'none').sense)).toBe(expected);
    // A FUA write cannot be acknowledged either: its flush reports the earlier lost data.
    const fua = disk.execute(cdb('2a 08 00000001 00 0001 00'), new ScsiDataBuffer([new Uint8Array(512)]), 'out');
    expect(hex(fua.sense)).toBe(expected);
    raw.close();
  });

  it('a write the host has no space for is DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT at its LBA', () => {
    const io = new FaultyIo();
    const raw = RawDisk.create(path.join(dir, 't.raw'), { sizeBytes: 256 * 512, io });
    const disk = new ScsiDisk(raw, { diskId: DISK_ID });
    io.fail('pwrite', 'ENOSPC');
    const r = disk.execute(cdb('2a 00 00000080 00 0004 00'), new ScsiDataBuffer([new Uint8Array(2048)]), 'out');
    expect(r.status).toBe(2);
    expect(hex(r.sense)).toBe('f00007000000800a00000000270700000000');
    raw.close();
  });

  // A real full file system: a 1 MiB tmpfs holding a 4 MiB sparse image (mounting needs root).
  it('a real ENOSPC from a full tmpfs reaches the guest as DATA PROTECT and the host log names the file', (ctx) => {
    const mnt = path.join(dir, 'small');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) ctx.skip();
    try {
      const logged: string[] = [];
      const file = path.join(mnt, 'full.raw');
      const raw = RawDisk.create(file, { sizeBytes: 4 * 1024 * 1024, log: (msg) => logged.push(msg) });
      const disk = new ScsiDisk(raw, { diskId: DISK_ID });
      const chunk = new Uint8Array(256 * 1024).fill(0x5a);
      let failed: ReturnType<ScsiDisk['execute']> | undefined;
      let lba = 0;
      for (; lba < 8192 && !failed; lba += 512) {
        const r = disk.execute(cdb(`2a 00 ${lba.toString(16).padStart(8, '0')} 00 0200 00`), new ScsiDataBuffer([chunk]), 'out');
        if (r.status !== 0) failed = r;
      }
      expect(failed).toBeDefined();
      expect(failed!.sense![2]).toBe(0x07);
      expect([failed!.sense![12], failed!.sense![13]]).toEqual([0x27, 0x07]);
      expect(logged[0]).toMatch(new RegExp(`^disk image ${file}: write failed at sector \\d+ \\(ENOSPC\\)`));
      raw.close();
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});
