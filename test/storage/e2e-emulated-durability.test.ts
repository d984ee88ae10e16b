import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { guestPattern, readSectors, runStorageGuest, tempDisk } from './e2e-emulated-harness.ts';

/**
 * FLUSH CACHE: once the drive completes it, what the guest wrote must be in the file and the
 * file's data on stable storage (RawDisk.flush is fdatasync). Checked twice: the device's flush
 * reaches the backend after the writes it covers, with the bytes already in the file; and after
 * the guest has seen its flush complete, SIGKILL of the process hosting the VM loses nothing.
 */
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('emulated IDE durability', () => {
  it.each(['string', 'dma'])('%s: FLUSH CACHE reaches the backend after the writes, with the bytes in the file', async (mode) => {
    const { dir, file } = tempDisk(8192);
    dirs.push(dir);
    const log: string[] = [];
    let bytesAtFlush: Buffer | undefined;
    const wrap = (d: BlockBackend): BlockBackend => ({
      get sectorSize() {
        return d.sectorSize;
      },
      get sectorCount() {
        return d.sectorCount;
      },
      get readOnly() {
        return d.readOnly;
      },
      read: (lba, dst) => d.read(lba, dst),
      write: (lba, src) => {
        log.push(`write ${lba}+${src.length / 512}`);
        d.write(lba, src);
      },
      flush: () => {
        d.flush();
        log.push('flush');
        bytesAtFlush ??= readSectors(file, 64, 64); // through another descriptor, at the first flush
      },
      close: () => d.close(),
    });
    const run = await runStorageGuest(`mode=${mode} seed=31 wlba=64 wsectors=64`, [file], { wrap });
    expect(run.values.flush_status, run.console).toBe(0);
    const firstFlush = log.indexOf('flush');
    expect(firstFlush).toBeGreaterThan(0);
    // Every write of the guest's 64-sector pattern came before the flush that covers it.
    const before = log
      .slice(0, firstFlush)
      .filter((l) => l.startsWith('write'))
      .map((l) => l.slice(6));
    const covered = before.reduce((n, w) => n + Number(w.split('+')[1]), 0);
    expect(covered).toBe(64);
    expect(bytesAtFlush!.equals(guestPattern(31, 64, 64))).toBe(true);
  });

  it("after the guest saw its flush complete, kill -9 of the VM's process loses nothing", async () => {
    await buildGuests(['storage-emulated']);
    const { dir, file } = tempDisk(8192);
    dirs.push(dir);
    const child = spawn(
      process.execPath,
      [BIN, 'run', guestImagePath('storage-emulated'), '--memory', '16M', '--disk', file, '--cmdline', 'mode=dma hold seed=43 wlba=200 wsectors=128'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no flushed=1 within 60 s; output:\n${out}`)), 60_000);
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString('latin1');
          if (out.includes('flushed=1\n')) {
            clearTimeout(t);
            resolve();
          }
        });
      });
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');
    expect(out).toContain('write_status=0\nflush_status=0\n');
    expect(readSectors(file, 200, 128).equals(guestPattern(43, 200, 128))).toBe(true);
  }, 90_000);
});
