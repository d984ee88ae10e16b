import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import { Pic8259 } from '../../root-partition/devices/pic/pic8259.ts';
import { AtaDrive } from '../../root-partition/devices/ide/ata-drive.ts';
import { Piix4Ide } from '../../root-partition/devices/ide/piix4-ide.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import type { RawDiskIo } from '../../root-partition/storage/raw-disk.ts';

export const BM = 0xc000;
export const P = { data: 0x1f0, err: 0x1f1, count: 0x1f2, lbaLow: 0x1f3, lbaMid: 0x1f4, lbaHigh: 0x1f5, dev: 0x1f6, cmd: 0x1f7, ctl: 0x3f6 } as const;

/** A VM's worth of IDE: guest memory, I/O bus, PIC, PIIX4 IDE with one raw disk as primary master. */
export class IdeRig {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-ide-'));
  readonly memory = new GuestMemory(1024 * 1024);
  readonly bus = new IoBus();
  readonly pic = new Pic8259();
  readonly disk: RawDisk;
  readonly drive: AtaDrive;
  readonly ide: Piix4Ide;
  /** IRQ 14 level changes, in order. */
  readonly irq14: boolean[] = [];

  constructor(opts: { sectors?: number; readOnly?: boolean; backend?: BlockBackend; slave?: BlockBackend; io?: RawDiskIo; log?: (m: string) => void } = {}) {
    const file = path.join(this.dir, 'disk.raw');
    const created = RawDisk.create(file, {
      sizeBytes: (opts.sectors ?? 2048) * 512,
      ...(opts.io ? { io: opts.io } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    if (opts.readOnly) {
      created.close();
      this.disk = RawDisk.open(file, { readOnly: true });
    } else {
      this.disk = created;
    }
    this.drive = new AtaDrive(opts.backend ?? this.disk);
    this.bus.register(this.pic);
    const line14 = this.pic.line(14);
    this.ide = new Piix4Ide({
      memory: this.memory,
      bus: this.bus,
      primaryIrq: {
        set: (l) => {
          this.irq14.push(l);
          line14.set(l);
        },
      },
      secondaryIrq: this.pic.line(15),
      primary: [this.drive, opts.slave ? new AtaDrive(opts.slave) : undefined],
      firmwareBmideBase: BM,
    });
  }

  get channel() {
    return this.ide.channels[0];
  }

  /** Fills the image file directly (bypassing the device) with a deterministic pattern. */
  fillDisk(lba: number, sectors: number, seed: number): Uint8Array {
    const b = pattern(sectors * 512, seed);
    this.disk.write(lba, b);
    return b;
  }

  readDisk(lba: number, sectors: number): Uint8Array {
    const b = new Uint8Array(sectors * 512);
    this.disk.read(lba, b);
    return b;
  }

  out8(port: number, v: number): void {
    this.bus.write(port, 1, v);
  }
  in8(port: number): number {
    return this.bus.read(port, 1);
  }

  /** Task file for an LBA28 command (ATA/ATAPI-6 READ SECTORS, PIO). */
  setup28(lba: number, count: number, dev = 0): void {
    this.out8(P.dev, 0xe0 | (dev << 4) | ((lba >>> 24) & 0x0f));
    this.out8(P.err, 0);
    this.out8(P.count, count & 0xff);
    this.out8(P.lbaLow, lba & 0xff);
    this.out8(P.lbaMid, (lba >>> 8) & 0xff);
    this.out8(P.lbaHigh, (lba >>> 16) & 0xff);
  }

  /** Task file for an LBA48 command: high bytes first, then low bytes. */
  setup48(lba: number, count: number): void {
    const hi = Math.floor(lba / 0x1000000);
    this.out8(P.count, (count >> 8) & 0xff);
    this.out8(P.lbaLow, hi & 0xff);
    this.out8(P.lbaMid, (hi >> 8) & 0xff);
    this.out8(P.lbaHigh, (hi >> 16) & 0xff);
    this.out8(P.count, count & 0xff);
    this.out8(P.lbaLow, lba & 0xff);
    this.out8(P.lbaMid, (lba >>> 8) & 0xff);
    this.out8(P.lbaHigh, (lba >>> 16) & 0xff);
    this.out8(P.dev, 0x40);
  }

  /** Writes a PRD table at `table` from [gpa, bytes] entries; EOT on the last unless `eot` is false. */
  writePrd(table: number, entries: readonly (readonly [number, number])[], eot = true): void {
    entries.forEach(([gpa, bytes], i) => {
      this.memory.writeU32(table + i * 8, gpa);
      this.memory.dv.setUint16(table + i * 8 + 4, bytes & 0xffff, true);
      this.memory.u8[table + i * 8 + 6] = 0;
      this.memory.u8[table + i * 8 + 7] = eot && i === entries.length - 1 ? 0x80 : 0;
    });
  }

  close(): void {
    this.disk.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Byte-array equality without vitest's element-wise deep diff (slow on kilobytes); reports the first difference. */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (
    actual.length === expected.length &&
    Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length))
  )
    return;
  let i = 0;
  while (i < Math.min(actual.length, expected.length) && actual[i] === expected[i]) i++;
  throw new Error(`bytes differ at offset ${i} (lengths ${actual.length} / ${expected.length}): got ${actual[i]}, expected ${expected[i]}`);
}
