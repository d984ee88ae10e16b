/**
 * Boots the storage-emulated guest on the emulated Gen1 platform over real raw disk files, and
 * records the VP's exit counters when the guest writes the POST port 0x80 (its markers around
 * the measured 4 KiB read and write).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import type { VpCounterName } from '../../hypervisor/partition-control.ts';
import type { VpExitReason } from '../../hypervisor/vp/vp-events.ts';
import { EmulatedPlatform } from '../../root-partition/vmwp/emulated-platform.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';

export const POST_PORT = 0x80;

export interface StorageRun {
  console: string;
  /** key=value lines (signed integers). */
  values: Record<string, number>;
  /** VP 0 counters at each POST marker value. */
  markers: Map<number, Record<VpCounterName, number>>;
  /** performance.now() on the device thread at each POST marker. */
  markerTimes: Map<number, number>;
  exit: VpExitReason | undefined;
  platform: EmulatedPlatform;
}

/** A sparse raw image of `sectors` sectors in a fresh temporary directory. */
export function tempDisk(sectors: number): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-e2e-ide-'));
  const file = path.join(dir, 'disk.raw');
  RawDisk.create(file, { sizeBytes: sectors * 512 }).close();
  return { dir, file };
}

export function parseValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(-?\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The guest's pattern word at 32-bit word index `w` (murmur3 fmix32 of seed ^ w). */
export function patternWord(seed: number, w: number): number {
  let h = (seed ^ w) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function guestPattern(seed: number, lba: number, sectors: number): Buffer {
  const b = Buffer.alloc(sectors * 512);
  for (let i = 0; i < b.length / 4; i++) b.writeUInt32LE(patternWord(seed, (lba * 128 + i) >>> 0), i * 4);
  return b;
}

/** FNV-1a over little-endian 32-bit words, as the guest computes it. */
export function fnvWords(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let h = 2166136261;
  for (let i = 0; i < b.length; i += 4) h = Math.imul((h ^ dv.getUint32(i, true)) >>> 0, 16777619) >>> 0;
  return h;
}

export function readSectors(file: string, lba: number, sectors: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(sectors * 512);
    fs.readSync(fd, b, 0, b.length, lba * 512);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

export function writeSectors(file: string, lba: number, data: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, data, 0, data.length, lba * 512);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Runs the guest to its end (it halts with interrupts off) with `files` as IDE disks in the order
 * primary master, primary slave, secondary master, secondary slave.
 */
export async function runStorageGuest(
  cmdline: string,
  files: readonly string[],
  opts: { timeoutMs?: number; spin?: number; wrap?: (disk: RawDisk, index: number) => BlockBackend } = {},
): Promise<StorageRun> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  await buildGuests(['storage-emulated']);
  const hv = new Hypervisor();
  const disks = files.map((f) => RawDisk.open(f));
  let partition: Partition | undefined;
  try {
    partition = hv.createPartition({ memoryBytes: 16 << 20, vpCount: 1, waitPolicy: { spinIterations: opts.spin ?? 0 } });
    const p = partition;
    p.initialize();
    p.loadImage(fs.readFileSync(guestImagePath('storage-emulated')), cmdline);
    let out = '';
    const platform = new EmulatedPlatform(p, {
      console: (bytes) => {
        out += Buffer.from(bytes).toString('latin1');
      },
      ide: disks.map((d, i) => ({ backend: opts.wrap ? opts.wrap(d, i) : d })),
    });
    const markers = new Map<number, Record<VpCounterName, number>>();
    const markerTimes = new Map<number, number>();
    p.inbox.handler = {
      ioRead: (vp, port, size) => platform.ioRead(vp, port, size),
      ioWrite: (vp, port, size, value) => {
        if (port === POST_PORT) {
          markers.set(value & 0xff, p.counters(0));
          markerTimes.set(value & 0xff, performance.now());
        } else platform.ioWrite(vp, port, size, value);
      },
      ioReadString: (vp, port, size, dst, count) => platform.ioReadString(vp, port, size, dst, count),
      ioWriteString: (vp, port, size, src, count) => platform.ioWriteString(vp, port, size, src, count),
    };
    const ac = new AbortController();
    const serving = p.inbox.serveAsync(ac.signal);
    p.start();
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    const ended = await Promise.race([p.whenIdle().then(() => 'idle' as const), timer]);
    if (ended === 'timeout') await p.stop();
    ac.abort();
    await serving;
    if (ended === 'timeout') throw new Error(`storage-emulated guest did not finish; console:\n${out}`);
    return { console: out, values: parseValues(out), markers, markerTimes, exit: p.vpExit(0), platform };
  } finally {
    for (const d of disks) d.close();
    await hv.shutdown();
  }
}

/** I/O exits (IN/OUT and string I/O) between two markers, without the closing marker's own exit. */
export function ioExitsBetween(run: StorageRun, from: number, to: number): { io: number; interrupts: number; halts: number } {
  const a = run.markers.get(from),
    b = run.markers.get(to);
  if (!a || !b) throw new Error(`markers ${from}/${to} not seen; console:\n${run.console}`);
  return {
    io: b.IoExits + b.StringIoExits - (a.IoExits + a.StringIoExits) - 1,
    interrupts: b.InterruptsDelivered - a.InterruptsDelivered,
    halts: b.HaltExits - a.HaltExits,
  };
}
