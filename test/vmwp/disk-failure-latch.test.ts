/**
 * A drive's failures reach VMMS once, whatever the guest does: a guest retrying against a dead
 * disk makes thousands of failing requests, and each still fails to the guest, but only the first
 * is reported. A request the device refuses (not a medium failure) reports nothing.
 */
import { describe, expect, it } from 'vitest';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import { DiskIoError } from '../../root-partition/storage/disk-io-error.ts';
import { SwitchableDisk } from '../../root-partition/vmwp/disk-switch.ts';

function failingDisk(error: () => Error): BlockBackend {
  return {
    sectorSize: 512,
    sectorCount: 2048,
    readOnly: false,
    read: () => {
      throw error();
    },
    write: () => {
      throw error();
    },
    flush: () => {
      throw error();
    },
    close: () => {},
  };
}

describe('SwitchableDisk failure report', () => {
  it('reports the first of 10,000 failing requests only, and every one still fails', () => {
    let n = 0;
    const reported: Error[] = [];
    const disk = new SwitchableDisk(
      failingDisk(() => new DiskIoError('/d.raw', 'write', 'EIO', n, 'EIO')),
      '/d.raw',
      (e) => reported.push(e),
    );
    const buf = new Uint8Array(512);
    let thrown = 0;
    for (n = 0; n < 10_000; n++) {
      const op = n % 3 === 0 ? () => disk.read(n, buf) : n % 3 === 1 ? () => disk.write(n, buf) : () => disk.flush();
      try {
        op();
      } catch (e) {
        if (e instanceof DiskIoError) thrown++;
      }
    }
    expect(thrown).toBe(10_000);
    expect(reported).toHaveLength(1);
    expect(reported[0]!.message).toBe('disk image /d.raw: write failed at sector 0 (EIO): EIO');
    expect(disk.failure).toBe(reported[0]);
  });

  it('a request error that is not the medium failing reports nothing', () => {
    const reported: Error[] = [];
    const disk = new SwitchableDisk(
      failingDisk(() => new RangeError('LBA 4096 is past the end')),
      '/d.raw',
      (e) => reported.push(e),
    );
    expect(() => disk.read(4096, new Uint8Array(512))).toThrow(RangeError);
    expect(reported).toEqual([]);
    expect(disk.failure).toBeNull();
  });
});
