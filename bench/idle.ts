// What idle VMs cost the host: N VMs whose guests do nothing (halted for good, or halted between
// the ticks of a periodic synthetic timer) run for a few seconds under a real VMMS with real
// worker processes; per worker, the CPU time of all its threads (/proc/<pid>/stat utime+stime)
// and its wake-ups (voluntary context switches summed over /proc/<pid>/task/*/status), per
// thread name too. Not a test: run
//   npx tsx bench/idle.ts [--vms N] [--seconds S] [--quick] [--json FILE]
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vmms } from '../root-partition/vmms/vmms.ts';
import { createProcessLogger } from '../root-partition/host/log.ts';
import { buildGuests, guestImagePath } from '../scripts/build-guests.ts';

export interface IdleBenchOptions {
  /** VMs of each kind (default 4; quick 2). */
  vms?: number;
  /** Measured window (default 5 s; quick 2 s). */
  seconds?: number;
  /** Periodic timer of the ticking guests, µs (default 10000: Linux's HZ=100). */
  tickUs?: number;
  quick?: boolean;
}

export interface IdleVmRow {
  name: string;
  kind: 'halted' | 'timer';
  pid: number;
  /** CPU time of the worker (all threads) per second of wall time, ms/s (10 = 1% of a core). */
  cpuMsPerSecond: number;
  /** Voluntary context switches of all its threads per second: how often it was woken. */
  wakeupsPerSecond: number;
  /** The same, per thread name (comm): where the wake-ups are. */
  wakeupsPerSecondByThread: Record<string, number>;
}

export interface IdleBenchReport {
  node: string;
  cpu: string;
  cpus: number;
  loadAverageStart: number;
  quick: boolean;
  seconds: number;
  tickUs: number;
  clockTicksPerSecond: number;
  vms: IdleVmRow[];
  totals: Record<
    'halted' | 'timer' | 'all',
    { vms: number; cpuMsPerSecond: number; wakeupsPerSecond: number; cpuMsPerSecondPerVm: number; wakeupsPerSecondPerVm: number }
  >;
}

/** USER_HZ: what /proc/<pid>/stat counts CPU time in (sysconf(_SC_CLK_TCK), 100 on Linux). */
const CLOCK_TICKS = 100;

interface Sample {
  cpuTicks: number;
  byThread: Map<string, number>;
}

function sample(pid: number): Sample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) count every thread of the process.
  const cpuTicks = Number(f[11]) + Number(f[12]);
  const byThread = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const name = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? tid;
      const switches = Number(/^voluntary_ctxt_switches:\s*(\d+)$/m.exec(status)?.[1] ?? 0);
      byThread.set(name, (byThread.get(name) ?? 0) + switches);
    } catch {
      /* a thread that ended meanwhile */
    }
  }
  return { cpuTicks, byThread };
}

export async function runIdleBench(o: IdleBenchOptions = {}): Promise<IdleBenchReport> {
  const quick = Boolean(o.quick);
  const n = o.vms ?? (quick ? 2 : 4);
  const seconds = o.seconds ?? (quick ? 2 : 5);
  const tickUs = o.tickUs ?? 10_000;
  await buildGuests(['idle']);
  const dataDir = mkdtempSync(join(tmpdir(), 'tsv-idle-'));
  const loadAverageStart = loadavg()[0]!;
  const vmms = await Vmms.open({ dataDir, logger: createProcessLogger({ dataDir, process: 'vmms', terminal: false }), workerStartTimeoutMs: 60_000 });
  try {
    const kinds: IdleVmRow['kind'][] = [];
    for (let i = 0; i < n; i++) kinds.push('halted', 'timer');
    const names = kinds.map((k, i) => `${k}-${i >> 1}`);
    for (const [i, name] of names.entries()) {
      vmms.defineVm({
        name,
        memoryBytes: 16 * 1024 * 1024,
        imagePath: guestImagePath('idle'),
        cmdline: kinds[i] === 'timer' ? `tick=${tickUs}` : '',
        automaticStopAction: 'turn-off',
      });
    }
    for (const name of names) {
      const r = await vmms.start(name);
      if (r.returnValue !== 0) throw new Error(`${name} did not start: ${r.error}`);
    }
    // Booted (the guest said so) and settled: start-up work is not idle cost.
    const deadline = Date.now() + 30_000;
    while (!names.every((v) => vmms.console(v).includes('idle\n'))) {
      if (Date.now() > deadline) throw new Error('the idle guests did not boot');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const pids = names.map((v) => vmms.get(v)!.processId!);
    const before = pids.map(sample);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = pids.map(sample);
    const wall = (performance.now() - t0) / 1000;
    const rows: IdleVmRow[] = names.map((name, i) => {
      const byThread: Record<string, number> = {};
      let wakeups = 0;
      for (const [thread, count] of after[i]!.byThread) {
        const d = count - (before[i]!.byThread.get(thread) ?? 0);
        wakeups += d;
        byThread[thread] = Math.round((d / wall) * 10) / 10;
      }
      return {
        name,
        kind: kinds[i]!,
        pid: pids[i]!,
        cpuMsPerSecond: (((after[i]!.cpuTicks - before[i]!.cpuTicks) / CLOCK_TICKS) * 1000) / wall,
        wakeupsPerSecond: wakeups / wall,
        wakeupsPerSecondByThread: byThread,
      };
    });
    const total = (rs: IdleVmRow[]) => {
      const cpu = rs.reduce((a, r) => a + r.cpuMsPerSecond, 0);
      const wake = rs.reduce((a, r) => a + r.wakeupsPerSecond, 0);
      return {
        vms: rs.length,
        cpuMsPerSecond: cpu,
        wakeupsPerSecond: wake,
        cpuMsPerSecondPerVm: rs.length ? cpu / rs.length : 0,
        wakeupsPerSecondPerVm: rs.length ? wake / rs.length : 0,
      };
    };
    return {
      node: process.versions.node,
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      loadAverageStart,
      quick,
      seconds: wall,
      tickUs,
      clockTicksPerSecond: CLOCK_TICKS,
      vms: rows,
      totals: { halted: total(rows.filter((r) => r.kind === 'halted')), timer: total(rows.filter((r) => r.kind === 'timer')), all: total(rows) },
    };
  } finally {
    await vmms.close({ stopVms: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function formatIdleBench(r: IdleBenchReport): string {
  const lines = [
    `idle VMs: ${r.totals.halted.vms} halted guests and ${r.totals.timer.vms} guests with a ${r.tickUs} µs periodic timer, 16 MiB, 1 VP each; ${r.seconds.toFixed(1)} s measured; ${r.cpus} × ${r.cpu}, Node ${r.node}, load average ${r.loadAverageStart.toFixed(2)} at start${r.quick ? ' (quick)' : ''}`,
    'CPU = utime+stime of every thread of the worker (ms per s; 10 = 1% of a core); wake-ups = voluntary context switches of every thread per s',
    'VM          pid      CPU ms/s  wake-ups/s  busiest threads (wake-ups/s)',
  ];
  for (const v of r.vms) {
    const top = Object.entries(v.wakeupsPerSecondByThread)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .filter(([, w]) => w > 0)
      .map(([t, w]) => `${t} ${w}`)
      .join(', ');
    lines.push(
      `${v.name.padEnd(10)}  ${String(v.pid).padEnd(7)}  ${v.cpuMsPerSecond.toFixed(2).padStart(8)}  ${v.wakeupsPerSecond.toFixed(1).padStart(10)}  ${top || '-'}`,
    );
  }
  for (const k of ['halted', 'timer', 'all'] as const) {
    const t = r.totals[k];
    lines.push(
      `total ${k.padEnd(7)} ${String(t.vms).padStart(2)} VMs: ${t.cpuMsPerSecond.toFixed(2)} ms/s CPU, ${t.wakeupsPerSecond.toFixed(1)} wake-ups/s; per VM ${t.cpuMsPerSecondPerVm.toFixed(2)} ms/s, ${t.wakeupsPerSecondPerVm.toFixed(1)} wake-ups/s`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const at = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const report = await runIdleBench({
    quick: args.includes('--quick'),
    ...(at('--vms') ? { vms: Number(at('--vms')) } : {}),
    ...(at('--seconds') ? { seconds: Number(at('--seconds')) } : {}),
  });
  console.log(formatIdleBench(report));
  if (at('--json')) writeFileSync(at('--json')!, JSON.stringify(report, null, 2) + '\n');
}
