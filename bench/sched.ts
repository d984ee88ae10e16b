// `tsvisor bench sched`: the CPU scheduler (docs/scheduling.md) on real VMs — an embedded VMMS
// with real worker processes, the CPUs given to guests set to 1, each VM's CPU as the kernel
// counts its VP threads (Measure-VM) against its entitlement. Scenarios: weights 1:2:3 sharing
// one CPU; a VM capped at 25%; a VM reserving 50% against four competitors; ten idle VMs; an
// interactive VM (a 10 ms timer, 200 µs of work per tick) alone and beside two hogs, with its
// wake-to-run latency as the guest measures it (timer expiration to its handler running). The
// anchor, in the same run: the same three-way split of compute loops as plain processes pinned to
// one core under the kernel's own weights (cgroup v1 cpu.shares 1024:2048:3072), where the
// machine allows it. Not a test: run
//   npx tsx bench/sched.ts [--quick] [--json FILE]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vmms } from '../root-partition/vmms/vmms.ts';
import { createProcessLogger } from '../root-partition/host/log.ts';
import { buildGuests, guestImagePath } from '../scripts/build-guests.ts';
import type { NewVmRequest } from '../root-partition/vmms/vm-definition.ts';

export interface SchedVmRow {
  scenario: string;
  name: string;
  /** Percent of one CPU the VM used over the window (the kernel's count for its VP threads). */
  usedPercent: number;
  /** What the allocation entitles it to, percent of one CPU (null: idle VMs, no entitlement to check). */
  entitledPercent: number | null;
}

export interface SchedBenchReport {
  node: string;
  cpu: string;
  cpus: number;
  loadAverageStart: number;
  quick: boolean;
  seconds: number;
  hostCpusForGuests: number;
  vms: SchedVmRow[];
  /** Ten idle VMs together, percent of one core: their VP threads, and their whole worker processes (main and device threads too). */
  idleTotalPercent: number;
  /** Whole worker processes once settled: from IDLE_SETTLE_S after the last start, past V8's one-time heap reduction. */
  idleWorkersTotalPercent: number;
  /** The same right after start (the window the other scenarios use): start-up work, not idle cost. */
  idleWorkersAfterStartPercent: number;
  idleSettleSeconds: number;
  /** The VMMS side per period (decision + sends). */
  scheduler: { periods: number; meanPeriodUs: number; maxPeriodUs: number; grantsSent: number; grantsSkipped: number };
  /** The interactive VM's wake-to-run latency (µs, from the timer's expiration to its handler), alone and beside two hogs. */
  interactive: { alone: LatencySummary; besideHogs: LatencySummary };
  /** Plain processes under cpu.shares 1024:2048:3072 on one core: percent of that core each; null with the reason where the machine does not allow it. */
  cgroupAnchor: { percent: number[]; entitledPercent: number[] } | { skipped: string };
}

export interface LatencySummary {
  samples: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  usedPercent: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The guest's "lat …" lines (100 ns units) as a summary in µs. */
export function latencySummary(consoleText: string, usedPercent: number): LatencySummary {
  const us = consoleText
    .split('\n')
    .filter((l) => l.startsWith('lat '))
    .flatMap((l) =>
      l
        .slice(4)
        .trim()
        .split(/\s+/)
        .map((v) => Number(v) / 10),
    )
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  const q = (f: number) => (us.length ? us[Math.min(us.length - 1, Math.floor(f * us.length))]! : 0);
  return { samples: us.length, p50Us: round(q(0.5)), p99Us: round(q(0.99)), maxUs: round(us.at(-1) ?? 0), usedPercent };
}

/** The interactive guest, alone or beside `hogs` compute-bound VMs: its latency samples over the window. */
async function interactiveScenario(v: Vmms, image: string, hog: string, hogs: number, seconds: number): Promise<LatencySummary> {
  const vms: NewVmRequest[] = [
    { name: 'interactive', memoryBytes: 16 << 20, imagePath: image, cmdline: 'tick=10000 burst=200 samples=1000000', automaticStopAction: 'turn-off' },
    ...Array.from({ length: hogs }, (_, i) => ({
      name: `hog${i}`,
      memoryBytes: 16 << 20,
      imagePath: hog,
      cmdline: 'rounds=100000000',
      automaticStopAction: 'turn-off' as const,
    })),
  ];
  for (const d of vms) v.defineVm(d);
  try {
    for (const d of vms) {
      const r = await v.start(d.name);
      if (r.returnValue !== 0) throw new Error(`${d.name} did not start: ${r.error}`);
    }
    await sleep(800);
    v.measureCpu('interactive', true);
    const from = v.console('interactive').length;
    await sleep(seconds * 1000);
    const text = v.console('interactive').slice(from);
    // Only whole lines written inside the window.
    return latencySummary(text.slice(text.indexOf('\n') + 1, text.lastIndexOf('\n') + 1), round(v.measureCpu('interactive').averagePercent));
  } finally {
    for (const d of vms) await v.turnOff(d.name);
    for (const d of vms) v.removeVm(d.name);
  }
}

/**
 * Idle cost is measured this long after the last idle VM started: a worker's three V8 isolates
 * (main, device and VP threads) each run the memory reducer's full collections 15–25 s after
 * start-up work ends — about a second of CPU per worker, once — which is start-up, not idle, cost.
 */
export const IDLE_SETTLE_S = 30;

/** CPU time of a whole process (all its threads), ns, from each thread's schedstat (exact, unlike the 10 ms ticks of stat). */
function processCpuNs(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* the thread ended */
    }
  }
  return ns;
}

/** Percent of one core the processes used over `seconds` from now. */
async function processesPercent(pids: number[], seconds: number): Promise<number> {
  const before = pids.map(processCpuNs);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const used = pids.reduce((n, pid, i) => n + processCpuNs(pid) - before[i]!, 0);
  return round((used / 1e9 / ((performance.now() - t0) / 1000)) * 100);
}

async function scenario(
  v: Vmms,
  name: string,
  vms: (NewVmRequest & { entitled: number | null })[],
  seconds: number,
  workers?: { afterStart: number; settled: number; settleS: number },
): Promise<SchedVmRow[]> {
  for (const d of vms) v.defineVm(d);
  try {
    for (const d of vms) {
      const r = await v.start(d.name);
      if (r.returnValue !== 0) throw new Error(`${d.name} did not start: ${r.error}`);
    }
    await sleep(800); // past every VP thread's start and the first grants
    for (const d of vms) v.measureCpu(d.name, true);
    const started = performance.now() - 800;
    const pids = vms.map((d) => v.get(d.name)!.processId!);
    if (!workers) await sleep(seconds * 1000);
    else {
      workers.afterStart = await processesPercent(pids, seconds);
      await sleep(Math.max(0, workers.settleS * 1000 - (performance.now() - started)));
      workers.settled = await processesPercent(pids, seconds);
    }
    return vms.map((d) => ({ scenario: name, name: d.name, usedPercent: round(v.measureCpu(d.name).averagePercent), entitledPercent: d.entitled }));
  } finally {
    for (const d of vms) await v.turnOff(d.name);
    for (const d of vms) v.removeVm(d.name);
  }
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Three compute loops pinned to CPU 0 in cgroups with cpu.shares 1024, 2048, 3072. */
async function cgroupAnchor(seconds: number): Promise<SchedBenchReport['cgroupAnchor']> {
  const root = '/sys/fs/cgroup/cpu';
  if (!existsSync(join(root, 'cpu.shares'))) return { skipped: 'no cgroup v1 cpu controller at /sys/fs/cgroup/cpu' };
  const groups = [1024, 2048, 3072].map((shares, i) => ({ shares, dir: join(root, `tsvisor-bench-${process.pid}-${i}`) }));
  const children: ChildProcess[] = [];
  try {
    for (const g of groups) {
      mkdirSync(g.dir);
      writeFileSync(join(g.dir, 'cpu.shares'), String(g.shares));
    }
    for (const g of groups) {
      const c = spawn('taskset', ['-c', '0', process.execPath, '-e', 'let x=0;for(;;)x=(x+Math.sqrt(x+1))%1e9'], { stdio: 'ignore' });
      children.push(c);
      await new Promise((r) => c.once('spawn', r));
      writeFileSync(join(g.dir, 'cgroup.procs'), String(c.pid));
    }
    await sleep(500);
    const cpu = () =>
      children.map((c) => {
        const f = readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return Number(f[11]) + Number(f[12]);
      });
    const a = cpu();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const b = cpu();
    const wall = (performance.now() - t0) / 1000;
    return { percent: b.map((x, i) => round(((x - a[i]!) / 100 / wall) * 100)), entitledPercent: [16.7, 33.3, 50] };
  } catch (e) {
    return { skipped: `cgroup v1 cpu.shares not usable here: ${(e as Error).message}` };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await sleep(200);
    for (const g of groups)
      try {
        rmdirSync(g.dir);
      } catch {
        /* not made, or still busy */
      }
  }
}

export async function runSchedBench(opts: { quick?: boolean } = {}): Promise<SchedBenchReport> {
  const quick = Boolean(opts.quick);
  const seconds = quick ? 1.5 : 5;
  await buildGuests(['checksum', 'idle', 'interactive']);
  const hog = guestImagePath('checksum');
  const idle = guestImagePath('idle');
  const dataDir = mkdtempSync(join(tmpdir(), 'tsv-sched-'));
  const logger = createProcessLogger({ dataDir, process: 'vmms', terminal: false });
  const loadAverageStart = loadavg()[0]!;
  const v = await Vmms.open({ dataDir, logger, hostCpus: 1, workerStartTimeoutMs: 60_000 });
  const vm = (name: string, extra: Partial<NewVmRequest> & { entitled: number | null }, image = hog) => ({
    name,
    memoryBytes: 16 << 20,
    imagePath: image,
    cmdline: 'rounds=100000000',
    automaticStopAction: 'turn-off' as const,
    ...extra,
  });
  const rows: SchedVmRow[] = [];
  let idleTotal = 0;
  const idleWorkers = { afterStart: 0, settled: 0, settleS: IDLE_SETTLE_S };
  let interactive: SchedBenchReport['interactive'] | undefined;
  try {
    rows.push(
      ...(await scenario(
        v,
        'weights 1:2:3',
        [vm('w100', { cpuWeight: 100, entitled: 16.7 }), vm('w200', { cpuWeight: 200, entitled: 33.3 }), vm('w300', { cpuWeight: 300, entitled: 50 })],
        seconds,
      )),
    );
    rows.push(...(await scenario(v, 'cap 25%', [vm('capped', { cpuMaximum: 25, entitled: 25 })], seconds)));
    rows.push(
      ...(await scenario(
        v,
        'reserve 50% vs four',
        [vm('reserved', { cpuReserve: 50, entitled: 50 }), ...[1, 2, 3, 4].map((i) => vm(`rival${i}`, { entitled: 12.5 }))],
        seconds,
      )),
    );
    const idleRows = await scenario(
      v,
      'ten idle VMs',
      Array.from({ length: 10 }, (_, i) => vm(`idle${i}`, { entitled: null, cmdline: '' }, idle)),
      seconds,
      idleWorkers,
    );
    rows.push(...idleRows);
    idleTotal = round(idleRows.reduce((n, r) => n + r.usedPercent, 0));
    const inter = guestImagePath('interactive');
    interactive = { alone: await interactiveScenario(v, inter, hog, 0, seconds), besideHogs: await interactiveScenario(v, inter, hog, 2, seconds) };
  } finally {
    await v.close({ stopVms: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
  const s = v.schedulerStats();
  return {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: availableParallelism(),
    loadAverageStart,
    quick,
    seconds,
    hostCpusForGuests: 1,
    vms: rows,
    idleTotalPercent: idleTotal,
    idleWorkersTotalPercent: idleWorkers.settled,
    idleWorkersAfterStartPercent: idleWorkers.afterStart,
    idleSettleSeconds: idleWorkers.settleS,
    interactive: interactive!,
    scheduler: {
      periods: s.periods,
      meanPeriodUs: round(s.meanPeriodUs),
      maxPeriodUs: round(s.maxPeriodUs),
      grantsSent: s.grantsSent,
      grantsSkipped: s.grantsSkipped,
    },
    cgroupAnchor: await cgroupAnchor(seconds),
  };
}

export function formatSchedBench(r: SchedBenchReport): string {
  const lines = [
    `tsvisor bench sched: ${r.cpus} CPUs (${r.cpu}), 1 given to guests, load average ${r.loadAverageStart.toFixed(1)} at start, ${r.seconds} s per scenario${r.quick ? ' (quick)' : ''}`,
    '',
  ];
  lines.push(['SCENARIO'.padEnd(22), 'VM'.padEnd(10), 'USED %'.padStart(7), 'ENTITLED %'.padStart(11), 'DIFF'.padStart(7)].join(' '));
  for (const v of r.vms) {
    lines.push(
      [
        v.scenario.padEnd(22),
        v.name.padEnd(10),
        v.usedPercent.toFixed(1).padStart(7),
        (v.entitledPercent === null ? '-' : v.entitledPercent.toFixed(1)).padStart(11),
        (v.entitledPercent === null ? '' : (v.usedPercent - v.entitledPercent >= 0 ? '+' : '') + (v.usedPercent - v.entitledPercent).toFixed(1)).padStart(7),
      ].join(' '),
    );
  }
  lines.push(
    '',
    `ten idle VMs together: ${r.idleTotalPercent.toFixed(1)}% of one core in their VP threads; whole worker processes ${r.idleWorkersTotalPercent.toFixed(1)}% settled (from ${r.idleSettleSeconds} s after start), ${r.idleWorkersAfterStartPercent.toFixed(1)}% right after start`,
  );
  const lat = (name: string, l: LatencySummary) =>
    `${name}: p50 ${l.p50Us} µs, p99 ${l.p99Us} µs, max ${l.maxUs} µs over ${l.samples} ticks (the VM used ${l.usedPercent.toFixed(1)}%)`;
  lines.push(
    `interactive VM wake-to-run (10 ms timer, 200 µs per tick) — ${lat('alone', r.interactive.alone)}; ${lat('beside two hogs', r.interactive.besideHogs)}`,
  );
  lines.push(
    `VMMS per period: ${r.scheduler.meanPeriodUs} µs mean, ${r.scheduler.maxPeriodUs} µs max over ${r.scheduler.periods} periods; ${r.scheduler.grantsSent} grants sent, ${r.scheduler.grantsSkipped} skipped`,
  );
  const a = r.cgroupAnchor;
  lines.push(
    'skipped' in a
      ? `cgroup anchor: skipped (${a.skipped})`
      : `cgroup anchor (plain processes on one core, cpu.shares 1024:2048:3072): ${a.percent.map((p, i) => `${p.toFixed(1)}% (entitled ${a.entitledPercent[i]})`).join(', ')}`,
  );
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const report = await runSchedBench({ quick: args.includes('--quick') });
  console.log(formatSchedBench(report));
  if (json) writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
}
