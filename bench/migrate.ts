/**
 * `tsvisor bench migrate`: live migration of a 256 MiB VM between two real daemons (separate
 * process trees, own data directories, mutual TLS on their migration ports) over loopback TCP,
 * for an idle guest, a computing guest and a guest rewriting memory at several rates. Per
 * scenario: total time, bytes sent, pre-copy rounds and pages per round, downtime as the source
 * host saw it (pause to the destination's RUNNING) and as the guest saw it (the longest gap
 * between two reads of its reference time: memory-writer only), and the pre-copy throughput
 * against the same run's plain TCP limit between two processes. Also the cost of one dirty-page
 * scan of 256 MiB by the two detectors (page-tracker.ts). Last, an idle VM with a 64 MiB drive
 * moved with its storage (shared-nothing). `--quick`: idle, 10 MiB/s and the storage move.
 *
 *   npx tsx bench/migrate.ts [--quick] [--json FILE]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuests, guestImagePath } from '../scripts/build-guests.ts';
import { VmmsClient } from '../root-partition/vmms/vmms-client.ts';
import type { VmView } from '../root-partition/vmms/vm-entry.ts';
import { PageHashTracker, ShadowPageTracker, type DirtyScan } from '../root-partition/migration/page-tracker.ts';

const DAEMON = fileURLToPath(new URL('../root-partition/vmms/daemon-main.ts', import.meta.url));
const MiB = 1 << 20;
const VM_BYTES = 256 * MiB;

/** `drive`: the VM has a raw drive of that many bytes (half of its 64 KiB blocks holding data) and moves it (--storage). */
interface Scenario {
  name: string;
  image: string;
  cmdline: string;
  writesMiBs: number;
  drive?: number;
}

export interface MigrateRow {
  scenario: string;
  totalMs: number;
  bytesSent: number;
  rounds: number;
  pagesPerRound: number[];
  stopReason: string;
  downtimeHostMs: number;
  downtimeGuestMs: number | null;
  captureMs: number;
  finalSendMs: number;
  restoreMs: number;
  commitMs: number;
  /**
   * captureMs split: parking the VPs, saving the devices, capturing the VPs (the last memory round
   * runs alongside), the rest of that round (and a storage move's last blocks), stopping the
   * device thread (outside the pause for a VM without drives: it overlaps the final send).
   */
  capture: { pauseMs: number; saveDevicesMs: number; captureVpsMs: number; finalDisksMs?: number; stopDevicesMs: number } | null;
  /** restoreMs as the destination split it: waiting for its prestarted VP threads, rewinding the VPs, starting the devices; the rest is the stream's tail and READY's trip. */
  destination: {
    prestartWaitMs: number;
    continueVpsMs: number;
    startDevicesMs: number;
    vpThreadsStartedInPause: number;
    deviceThreadLoadedInPause: boolean;
  } | null;
  preCopyMBs: number;
  ofTcpLimit: number;
  /** A storage move: drive blocks (64 KiB) per round, the paused one last, and their bytes. */
  diskBlocksPerRound?: number[];
  diskBytesSent?: number;
}

export interface MigrateReport {
  date: string;
  /** os.loadavg() when the run ended: the machine may be shared. */
  loadAverage: number[];
  tcpLimitMBs: number;
  scan: { detector: string; cleanRoundMs: number; tenPercentDirtyMs: number; hostBytes: number }[];
  rows: MigrateRow[];
}

interface Host {
  dir: string;
  port: number;
  fingerprint: string;
  client: VmmsClient;
  proc: ChildProcess;
}

async function startHost(): Promise<Host> {
  const dir = mkdtempSync(join(tmpdir(), 'tsv-bm-'));
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      DAEMON,
      '--data-dir',
      dir,
      '--migration-port',
      '0',
      '--migration-host',
      '127.0.0.1',
      '--cim-port',
      'none',
      '--cim-https-port',
      'none',
      '--web-port',
      'none',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (c) => {
    out += c;
  });
  proc.stderr!.on('data', (c) => {
    out += c;
  });
  for (let i = 0; i < 3000 && !out.includes('tsvisor: serving') && proc.exitCode === null; i++) await delay(20);
  const m = /live migration on port (\d+) .*SHA-256 ([0-9A-F:]{95})/.exec(out);
  if (!m) {
    proc.kill('SIGKILL');
    throw new Error(`the daemon did not start: ${out}`);
  }
  return { dir, port: Number(m[1]), fingerprint: m[2], client: await VmmsClient.connect(dir), proc };
}

async function stopHost(h: Host): Promise<void> {
  h.client.close();
  h.proc.kill('SIGTERM');
  for (let i = 0; i < 500 && h.proc.exitCode === null; i++) await delay(20);
  if (h.proc.exitCode === null) h.proc.kill('SIGKILL');
  rmSync(h.dir, { recursive: true, force: true });
}

/** Bytes a second one TCP connection carries between two processes on this machine, now. */
async function tcpLimit(bytes: number): Promise<number> {
  const sink = spawn(
    process.execPath,
    [
      '-e',
      `
    const s = require('node:net').createServer((c) => { let n = 0; c.on('data', (d) => { n += d.length; if (n >= ${bytes}) { c.end('k'); s.close(); } }); });
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((r) => sink.stdout!.once('data', (d) => r(Number(String(d).trim()))));
  const chunk = Buffer.alloc(MiB, 0x5a);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const c = createConnection(port, '127.0.0.1');
    c.on('error', reject);
    c.on('data', () => {
      c.destroy();
      resolve();
    });
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!c.write(chunk)) return void c.once('drain', pump);
      }
    };
    c.on('connect', pump);
  });
  return bytes / ((performance.now() - t0) / 1000);
}

/** One scan of `memory` by a detector: all clean, then with every tenth page changed. */
function scanCost(make: (m: Uint8Array) => DirtyScan, memory: Uint8Array): { cleanRoundMs: number; tenPercentDirtyMs: number } {
  const t = make(memory);
  t.scan(0, t.pageCount, () => {});
  const t0 = performance.now();
  t.scan(0, t.pageCount, () => {});
  const clean = performance.now() - t0;
  for (let p = 0; p < t.pageCount; p += 10) memory[p * 4096 + 8]++;
  const t1 = performance.now();
  t.scan(0, t.pageCount, () => {});
  return { cleanRoundMs: clean, tenPercentDirtyMs: performance.now() - t1 };
}

async function migrateOnce(a: Host, b: Host, s: Scenario): Promise<MigrateRow> {
  const vm = `bench-${s.name.replace(/[^a-z0-9]+/gi, '-')}`;
  let devices: unknown[] = [];
  if (s.drive) {
    // In each host's own storage (its data directory's disks/, a storage root by default).
    mkdirSync(join(a.dir, 'disks'), { recursive: true });
    mkdirSync(join(b.dir, 'disks'), { recursive: true });
    const path = join(a.dir, 'disks', `${vm}.raw`);
    const bytes = Buffer.alloc(s.drive);
    for (let at = 0; at < s.drive; at += 2 * 65536) bytes.fill(at / 65536 + 1, at, at + 65536);
    writeFileSync(path, bytes);
    devices = [{ kind: 'ide-disk', controller: 0, position: 0, path }];
  }
  await a.client.call<VmView>('new', {
    name: vm,
    imagePath: s.image,
    memoryBytes: VM_BYTES,
    vpCount: 1,
    cmdline: s.cmdline,
    automaticStopAction: 'turn-off',
    devices,
  });
  try {
    const r = await a.client.call<{ returnValue: number; error?: string }>('start', { vm });
    if (r.returnValue !== 0) throw new Error(`${vm} did not start: ${r.error}`);
    // Let the guest settle into its steady state (memory-writer: a first generation done).
    for (let i = 0; i < 1500; i++) {
      const text = await a.client.call<string>('console', { vm });
      if (s.image.endsWith('memory-writer.wasm') ? /gen=1 ok/.test(text) : text.length > 0 || i > 50) break;
      await delay(20);
    }
    await delay(500);
    const m = await a.client.call<Record<string, number | number[] | string>>('move', {
      vm,
      to: `127.0.0.1:${b.port}`,
      ...(s.drive ? { storage: join(b.dir, 'disks') } : {}),
    });
    await delay(300);
    const text = await b.client.call<string>('console', { vm });
    const gaps = [...text.matchAll(/maxgap-us=(\d+)/g)].map((x) => Number(x[1]) / 1000);
    await b.client.call('stop', { vm, turnOff: true });
    await b.client.call('rm', { vm });
    return {
      scenario: s.name,
      totalMs: m.totalMs as number,
      bytesSent: m.bytesSent as number,
      rounds: m.rounds as number,
      pagesPerRound: m.pagesPerRound as number[],
      stopReason: m.stopReason as string,
      downtimeHostMs: m.downtimeMs as number,
      downtimeGuestMs: gaps.length ? Math.max(...gaps) : null,
      captureMs: m.captureMs as number,
      finalSendMs: m.finalSendMs as number,
      restoreMs: m.restoreMs as number,
      commitMs: m.commitMs as number,
      capture: (m.capture as unknown as MigrateRow['capture']) ?? null,
      destination: (m.destination as unknown as MigrateRow['destination']) ?? null,
      preCopyMBs: (m.preCopyBytesPerSecond as number) / 1e6,
      ofTcpLimit: 0,
      ...(s.drive ? { diskBlocksPerRound: m.diskBlocksPerRound as number[], diskBytesSent: m.diskBytesSent as number } : {}),
    };
  } finally {
    for (const h of [a, b]) {
      await h.client.call('stop', { vm, turnOff: true }).catch(() => {});
      await h.client.call('rm', { vm }).catch(() => {});
    }
  }
}

export async function runMigrateBench(o: { quick?: boolean } = {}): Promise<MigrateReport> {
  await buildGuests(['idle', 'checksum', 'memory-writer']);
  const writer = guestImagePath('memory-writer');
  const rates = o.quick ? [10] : [1, 10, 50];
  const scenarios: Scenario[] = [
    { name: 'idle', image: guestImagePath('idle'), cmdline: '', writesMiBs: 0 },
    ...(o.quick ? [] : [{ name: 'computing', image: guestImagePath('checksum'), cmdline: 'rounds=100000000 work=20000', writesMiBs: 0 }]),
    ...rates.map((r) => ({ name: `writing ${r} MiB/s`, image: writer, cmdline: `mib=64 rate=${Math.round((r * MiB) / 1000 / 1024)}`, writesMiBs: r })),
    { name: 'idle, 64 MiB drive', image: guestImagePath('idle'), cmdline: '', writesMiBs: 0, drive: 64 * MiB },
  ];
  const memory = new Uint8Array(new SharedArrayBuffer(VM_BYTES));
  for (let i = 0; i < VM_BYTES / 2; i += 4096) memory[i] = 1;
  const scan = [
    { detector: 'shadow copy (memcmp)', ...scanCost((m) => new ShadowPageTracker(m), memory), hostBytes: VM_BYTES },
    { detector: '64-bit page hash', ...scanCost((m) => new PageHashTracker(m), memory), hostBytes: (VM_BYTES / 4096) * 8 },
  ];
  const [a, b] = await Promise.all([startHost(), startHost()]);
  try {
    await a.client.call('host-trust', { fingerprint: b.fingerprint, name: 'bench-b' });
    await b.client.call('host-trust', { fingerprint: a.fingerprint, name: 'bench-a' });
    const tcp = await tcpLimit(o.quick ? 256 * MiB : 1024 * MiB);
    const rows: MigrateRow[] = [];
    for (const s of scenarios) {
      const row = await migrateOnce(a, b, s);
      row.ofTcpLimit = (row.preCopyMBs * 1e6) / tcp;
      rows.push(row);
    }
    return { date: new Date().toISOString(), loadAverage: loadavg(), tcpLimitMBs: tcp / 1e6, scan, rows };
  } finally {
    await Promise.all([stopHost(a), stopHost(b)]);
  }
}

export function formatMigrateBench(r: MigrateReport): string {
  const f = (n: number, d = 1) => n.toFixed(d);
  const lines = [
    `live migration of a ${VM_BYTES / MiB} MiB VM between two daemons over loopback TCP (TLS 1.3); same-run TCP limit ${f(r.tcpLimitMBs)} MB/s; load average ${(r.loadAverage ?? []).map((l) => f(l, 2)).join(' ')}`,
    '',
    'scenario              total ms   MB sent  rounds  pages per round (last: paused)      stop            downtime host ms  guest ms  pre-copy MB/s  of TCP',
  ];
  for (const x of r.rows) {
    lines.push(
      [
        x.scenario.padEnd(20),
        f(x.totalMs, 0).padStart(9),
        f(x.bytesSent / 1e6).padStart(9),
        String(x.rounds).padStart(7),
        `  ${x.pagesPerRound.join(' ')}`.slice(0, 36).padEnd(36),
        x.stopReason.padEnd(15),
        f(x.downtimeHostMs).padStart(17),
        (x.downtimeGuestMs === null ? '-' : f(x.downtimeGuestMs)).padStart(9),
        f(x.preCopyMBs).padStart(14),
        `${f(100 * x.ofTcpLimit, 0)}%`.padStart(7),
      ].join(' '),
    );
  }
  lines.push('', 'downtime parts (ms): capture (pause, devices, VPs) · final pages and state · destination restore to READY · GO to RUNNING');
  for (const x of r.rows) lines.push(`  ${x.scenario.padEnd(20)} ${f(x.captureMs)} · ${f(x.finalSendMs)} · ${f(x.restoreMs)} · ${f(x.commitMs)}`);
  lines.push(
    '',
    'capture (ms): pause VPs · save devices · capture VPs (with the last memory round alongside) · rest of the last round · stop device thread (after the pause when the VM has no drives);  destination restore (ms): wait for prestarted VP and device threads · rewind VPs · build and restore devices',
  );
  for (const x of r.rows) {
    const c = x.capture;
    const d = x.destination;
    lines.push(
      `  ${x.scenario.padEnd(20)} ${c ? `${f(c.pauseMs)} · ${f(c.saveDevicesMs)} · ${f(c.captureVpsMs)} · ${f(c.finalDisksMs ?? 0)} · ${f(c.stopDevicesMs)}` : '-'};  ${d ? `${f(d.prestartWaitMs)} · ${f(d.continueVpsMs)} · ${f(d.startDevicesMs)}` : '-'}`,
    );
  }
  const moves = r.rows.filter((x) => x.diskBlocksPerRound);
  if (moves.length) {
    lines.push('', 'storage moved (--storage): drive MB sent · 64 KiB blocks per round (last: paused)');
    for (const x of moves) lines.push(`  ${x.scenario.padEnd(20)} ${f((x.diskBytesSent ?? 0) / 1e6)} · ${x.diskBlocksPerRound!.join(' ')}`);
  }
  lines.push('', `dirty-page detection, one scan of ${VM_BYTES / MiB} MiB (half its pages non-zero):`);
  for (const s of r.scan)
    lines.push(`  ${s.detector.padEnd(22)} clean ${f(s.cleanRoundMs)} ms, 10% changed ${f(s.tenPercentDirtyMs)} ms, host memory ${f(s.hostBytes / MiB)} MiB`);
  return lines.join('\n');
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const report = await runMigrateBench({ quick: args.includes('--quick') });
  console.log(formatMigrateBench(report));
  const i = args.indexOf('--json');
  if (i >= 0 && args[i + 1]) writeFileSync(args[i + 1]!, JSON.stringify(report, null, 2) + '\n');
}
