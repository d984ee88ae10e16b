/**
 * The main job's Linux section: Debian's unmodified i686 kernel (the x86 VP kind, v86) reads and
 * writes the same content with `dd` through ata_piix on our emulated PIIX4 IDE and through
 * hv_storvsc on our storvsp, in ONE boot with both disks (two files of identical content). MB/s
 * is timed on the host between markers the guest prints around each dd; exits and interrupts
 * come from our counters (the VP's status) taken before and after each dd.
 */
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadLinuxGuest } from '../../root-partition/x86/linux-guest-files.ts';
import { startLinuxGuest } from '../../root-partition/x86/linux-guest-vm.ts';
import type { X86VpStatus } from '../../root-partition/x86/x86-vm-messages.ts';

export const LINUX_DISK_BYTES = 16 << 20;
/** dd's block size: one "I/O" of the per-I/O figures. */
export const LINUX_DD_BLOCK = 64 << 10;
const READ_BLOCKS = 128; // 8 MiB from offset 0
const WRITE_BLOCKS = 64; // 4 MiB at offset 8 MiB
const WRITE_SEEK_BLOCKS = 128;

export type LinuxPath = 'ata_piix' | 'hv_storvsc';

/** One dd through one path, with the counters it moved. */
export interface LinuxRow {
  path: LinuxPath;
  op: 'read' | 'write';
  device: string;
  bytes: number;
  seconds: number;
  mbPerS: number;
  /** Per dd block of LINUX_DD_BLOCK bytes. */
  perIo: { exits: number; interrupts: number; clockReads: number };
}

export type LinuxSection =
  | { status: 'measured'; note: string; bootSeconds: number; rows: LinuxRow[]; integrity: { ok: boolean; detail: string } }
  | { status: 'skipped' | 'failed'; note: string };

/** The counters one dd moved: exits are port accesses served by host devices plus hypercalls (each one an exit on Hyper-V). */
export function linuxRow(
  p: { path: LinuxPath; op: 'read' | 'write'; device: string; bytes: number; seconds: number },
  before: X86VpStatus,
  after: X86VpStatus,
): LinuxRow {
  const ios = p.bytes / LINUX_DD_BLOCK;
  const exits = after.hostPortAccesses - before.hostPortAccesses + (after.hypercalls - before.hypercalls);
  const interrupts =
    p.path === 'ata_piix'
      ? (after.ide?.interrupts ?? 0) - (before.ide?.interrupts ?? 0)
      : (after.vmbus?.vectorsRaised ?? 0) - (before.vmbus?.vectorsRaised ?? 0);
  return {
    ...p,
    mbPerS: p.bytes / 1e6 / p.seconds,
    perIo: { exits: exits / ios, interrupts: interrupts / ios, clockReads: (after.rdmsr - before.rdmsr) / ios },
  };
}

/** Which /dev/sdX each path's disk became, from `ls -l /sys/block` in the guest. */
export function devicesFromSysBlock(listing: string): Partial<Record<LinuxPath, string>> {
  const out: Partial<Record<LinuxPath, string>> = {};
  for (const m of listing.matchAll(/\b(sd[a-z]+) -> \S+/g)) {
    if (m[0].includes('/ata')) out.ata_piix = m[1]!;
    else if (m[0].includes('VMBUS')) out.hv_storvsc = m[1]!;
  }
  return out;
}

/** The section as terminal lines, side by side per operation. */
export function formatLinuxSection(s: LinuxSection): string {
  if (s.status !== 'measured') return `Linux: ${s.note}`;
  const f = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const header = ['dd', 'path', 'device', 'MiB', 'MB/s', 'exits/IO', 'irq/IO', 'clock reads/IO'];
  const rows = s.rows.map((r) => [
    r.op,
    r.path,
    `/dev/${r.device}`,
    String(r.bytes / 2 ** 20),
    f(r.mbPerS),
    f(r.perIo.exits),
    f(r.perIo.interrupts),
    f(r.perIo.clockReads),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const ratio = (op: 'read' | 'write') => {
    const a = s.rows.find((r) => r.op === op && r.path === 'ata_piix');
    const b = s.rows.find((r) => r.op === op && r.path === 'hv_storvsc');
    return a && b ? `${op} ${f(b.mbPerS / a.mbPerS)}×` : '';
  };
  return [
    `Linux: ${s.note}`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    `hv_storvsc over ata_piix: ${[ratio('read'), ratio('write')].filter(Boolean).join(', ')}; data: ${s.integrity.ok ? 'OK' : 'FAILED'} (${s.integrity.detail})`,
  ].join('\n');
}

/** Console text with the time each byte arrived, to time the guest's markers on the host. */
class Console {
  text = '';
  private readonly arrivals: { end: number; t: number }[] = [];
  private waiter: (() => void) | undefined;

  add(bytes: Uint8Array): void {
    this.text += Buffer.from(bytes).toString('latin1');
    this.arrivals.push({ end: this.text.length, t: performance.now() });
    this.waiter?.();
  }

  /** Resolves with where `marker` ends and when it arrived. */
  wait(marker: string, from: number, ms: number, failed: () => Error | undefined): Promise<{ at: number; t: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no "${marker}" on the Linux console after ${ms} ms; tail:\n${this.text.slice(-1500)}`)), ms);
      const done = (e?: Error, r?: { at: number; t: number }) => {
        clearTimeout(timer);
        this.waiter = undefined;
        if (e) reject(e);
        else resolve(r!);
      };
      this.waiter = () => {
        const err = failed();
        if (err) return done(err);
        const i = this.text.indexOf(marker, from);
        if (i < 0) return;
        const end = i + marker.length;
        done(undefined, { at: end, t: this.arrivals.find((a) => a.end >= end)!.t });
      };
      this.waiter();
    });
  }
}

/** Boots the Linux guest with both disks and times dd on each path; a failure is reported in the section, not thrown. */
export async function measureLinux(opts: { bootTimeoutMs?: number } = {}): Promise<LinuxSection> {
  const g = loadLinuxGuest();
  if ('unavailable' in g) return { status: 'skipped', note: `not measured: the Linux guest is not built here (${g.unavailable})` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-bench-linux-'));
  const content = randomFillSync(new Uint8Array(LINUX_DISK_BYTES));
  const files = { ata_piix: path.join(dir, 'ide.raw'), hv_storvsc: path.join(dir, 'scsi.raw') };
  for (const f of Object.values(files)) fs.writeFileSync(f, content);
  const t0 = performance.now();
  const vm = startLinuxGuest({ ide: [files.ata_piix], scsi: [files.hv_storvsc] });
  const con = new Console();
  vm.on('console', (b) => con.add(b));
  vm.on('error', () => con.add(new Uint8Array(0)));
  const failed = () => vm.error;
  let n = 0;
  // The marker is printed by `echo "@@"X`: the echoed command line has quotes in it, so it never matches.
  const run = async (cmd: string, ms = 120_000) => {
    const id = `M${++n}`;
    const start = con.text.length;
    vm.input(new TextEncoder().encode(`echo "@@"S${id}; ${cmd}; echo "@@"E${id}\n`));
    const s = await con.wait(`@@S${id}`, start, ms, failed);
    const e = await con.wait(`@@E${id}`, s.at, ms, failed);
    return { output: con.text.slice(s.at, e.at - `@@E${id}`.length), seconds: (e.t - s.t) / 1000 };
  };
  try {
    await con.wait('tsvisor-linux: init done', 0, opts.bootTimeoutMs ?? 400_000, failed);
    await con.wait('~ # ', 0, 30_000, failed);
    const bootSeconds = (performance.now() - t0) / 1000;
    const devices = devicesFromSysBlock((await run('ls -l /sys/block')).output);
    const rows: LinuxRow[] = [];
    for (const op of ['read', 'write'] as const) {
      for (const p of ['ata_piix', 'hv_storvsc'] as const) {
        const device = devices[p];
        if (!device) throw new Error(`the guest shows no disk for ${p} in /sys/block`);
        const dd =
          op === 'read'
            ? `dd if=/dev/${device} of=/dev/null bs=64k count=${READ_BLOCKS} 2>/dev/null`
            : `dd if=/dev/zero of=/dev/${device} bs=64k count=${WRITE_BLOCKS} seek=${WRITE_SEEK_BLOCKS} conv=fsync 2>/dev/null`;
        const before = await vm.status();
        const r = await run(dd);
        const after = await vm.status();
        rows.push(linuxRow({ path: p, op, device, bytes: (op === 'read' ? READ_BLOCKS : WRITE_BLOCKS) * LINUX_DD_BLOCK, seconds: r.seconds }, before, after));
      }
    }
    await vm.stop();
    const expected = content.slice();
    expected.fill(0, WRITE_SEEK_BLOCKS * LINUX_DD_BLOCK, (WRITE_SEEK_BLOCKS + WRITE_BLOCKS) * LINUX_DD_BLOCK);
    const bad = Object.entries(files).filter(([, f]) => !Buffer.from(fs.readFileSync(f)).equals(Buffer.from(expected)));
    return {
      status: 'measured',
      note: `Debian's unmodified i686 kernel on the x86 VP kind (v86), one boot with both disks (${(bootSeconds).toFixed(0)} s to the shell); dd of ${(READ_BLOCKS * LINUX_DD_BLOCK) >> 20} MiB read and ${(WRITE_BLOCKS * LINUX_DD_BLOCK) >> 20} MiB written (conv=fsync) in ${LINUX_DD_BLOCK >> 10} KiB blocks per path`,
      bootSeconds,
      rows,
      integrity: {
        ok: bad.length === 0,
        detail:
          bad.length === 0
            ? 'both host files hold the original bytes with the written range zeroed'
            : `${bad.map(([p]) => p).join(', ')} differ from what was written`,
      },
    };
  } catch (e) {
    return { status: 'failed', note: `the Linux run failed: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    await vm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
