/**
 * CPU benchmark: what the load-time rewrite (hypervisor/rewrite/) costs and what it buys.
 * The cpu-kernels guest runs five compute kernels that never exit (hashing, a heap sort, a
 * matrix multiply, recursive Fibonacci, a tight memory loop) as the unmodified image, the
 * preemptible one and the preemptible + capturable one (Asyncify), interleaved round by round; then a VP computing without exits and a halting
 * one take a 1 ms periodic SynIC timer (interrupt lateness p50/p99), and a computing VP is
 * paused and resumed (time until pause() reports every VP parked).
 * Usage: npx tsx bench/cpu.ts [--quick] [--budget N] [--json FILE]   (or tsvisor bench cpu)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Hypervisor } from '../hypervisor/hypervisor.ts';
import type { Partition } from '../hypervisor/partition.ts';
import { VpRunState } from '../hypervisor/partition-control.ts';
import { DEFAULT_PREEMPT_BUDGET, preemptBudget } from '../hypervisor/rewrite/preempt-budget.ts';
import { CAPTURABLE_REWRITE, DEFAULT_REWRITE, NO_REWRITE, PREEMPTIBLE_REWRITE, type RewriteOptions } from '../hypervisor/rewrite/rewrite-abi.ts';
import { buildGuests, guestImagePath } from '../scripts/build-guests.ts';

const RESULT_GPA = 0x3000;
const KERNELS = [
  { id: 1, name: 'hash (FNV-1a, 256 KiB)', n: 40 },
  { id: 2, name: 'heap sort (64 Ki u32)', n: 6 },
  { id: 3, name: 'matrix multiply (64×64 f64)', n: 60 },
  { id: 4, name: 'recursive (fib 24)', n: 300 },
  { id: 5, name: 'memory loop (1 MiB)', n: 60 },
];
const VARIANTS: { name: string; rewrite: RewriteOptions }[] = [
  { name: 'plain', rewrite: NO_REWRITE },
  { name: 'preemptible', rewrite: PREEMPTIBLE_REWRITE },
  { name: 'capturable', rewrite: CAPTURABLE_REWRITE },
];

export interface KernelRow {
  kernel: string;
  /** Median guest time per variant, ms (the guest's reference counter). */
  ms: Record<string, number>;
  /** preemptible ÷ plain. */
  overhead: number;
  /** capturable (preemptible + Asyncify) ÷ plain. */
  capturableOverhead: number;
  /** Preemption points that ran out of fuel, and the mean compute between two, µs. */
  preemptions: number;
  usPerPreemption: number;
  checksumsAgree: boolean;
}

export interface LatencyRow {
  guest: string;
  interrupts: number;
  p50us: number | null;
  p99us: number | null;
  maxus: number | null;
}

export interface CpuBenchReport {
  budget: number;
  rounds: number;
  kernels: KernelRow[];
  latency: LatencyRow[];
  park: { variant: string; parks: number; p50ms: number | null; p99ms: number | null; timeouts: number }[];
  capture: CaptureRow[];
}

/** Capturing a paused VP's whole state and continuing it (whole-VM saved state, hypervisor/vp/vp-capture.ts). */
export interface CaptureRow {
  guest: string;
  captures: number;
  captureP50ms: number | null;
  captureP99ms: number | null;
  continueP50ms: number | null;
  continueP99ms: number | null;
  /** Asyncify's unwound stack, bytes (largest seen). */
  stackBytes: number;
  /** The guest computed on after every capture and continue. */
  progressed: boolean;
}

interface Booted {
  hv: Hypervisor;
  p: Partition;
  out: () => string;
  done: () => Promise<void>;
}

async function boot(cmdline: string, rewrite: RewriteOptions, budget: number): Promise<Booted> {
  const hv = new Hypervisor();
  const p = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 }, rewrite, preemptBudget: budget });
  p.initialize();
  p.loadImage(readFileSync(guestImagePath('cpu-kernels')), cmdline);
  let out = '';
  p.inbox.handler = {
    ioRead: (_vp, port) => (port === 0x3fd ? 0x60 : 0xff),
    ioWrite: (_vp, port, _size, v) => {
      if (port === 0x3f8) out += String.fromCharCode(v & 0xff);
    },
    ioReadString: (_vp, _port, _size, dst) => {
      dst.fill(0xff);
    },
    ioWriteString: (_vp, port, _size, src) => {
      if (port === 0x3f8) out += Buffer.from(src).toString('latin1');
    },
  };
  const ac = new AbortController();
  const serving = p.inbox.serveAsync(ac.signal);
  p.start();
  return {
    hv,
    p,
    out: () => out,
    done: async () => {
      await p.stop();
      ac.abort();
      await serving;
      await hv.shutdown();
    },
  };
}

const value = (out: string, key: string) => Number(new RegExp(`(?:^|\\n)${key}=(\\d+)`).exec(out)?.[1] ?? NaN);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function percentile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function runKernel(k: (typeof KERNELS)[number], rewrite: RewriteOptions, budget: number, scale: number) {
  const b = await boot(`kernel=${k.id} n=${Math.max(1, Math.round(k.n * scale))}`, rewrite, budget);
  await b.p.whenIdle();
  const r = { ms: value(b.out(), 't') / 1e4, sum: value(b.out(), 'sum'), preemptions: b.p.counters(0).PreemptionExits };
  await b.done();
  if (!Number.isFinite(r.ms)) throw new Error(`kernel ${k.name} did not finish: ${b.out()}`);
  return r;
}

async function latency(guest: string, cmdline: string, rewrite: RewriteOptions, budget: number, ticks: number): Promise<LatencyRow> {
  const b = await boot(cmdline, rewrite, budget);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // A VP thread can take seconds to start on a loaded machine: the clock starts when it runs.
  while (b.p.runState(0) === VpRunState.NotStarted) await sleep(5);
  const deadline = Date.now() + (rewrite.preemption || cmdline.startsWith('wait') ? 30_000 + ticks * 10 : 1000);
  while (!b.out().includes('ticks=') && Date.now() < deadline) await sleep(10);
  const n = Atomics.load(b.p.mem.u32, (RESULT_GPA + 8) >> 2);
  const samples = Array.from({ length: n }, (_, i) => b.p.mem.readU32(RESULT_GPA + 64 + 4 * i) / 10);
  await b.done();
  return { guest, interrupts: n, p50us: percentile(samples, 0.5), p99us: percentile(samples, 0.99), maxus: samples.length ? Math.max(...samples) : null };
}

async function parkTimes(variant: string, rewrite: RewriteOptions, budget: number, parks: number) {
  const b = await boot('spin ticks=0', rewrite, budget);
  while (Atomics.load(b.p.mem.u32, RESULT_GPA >> 2) < 10) await new Promise((r) => setTimeout(r, 5));
  const times: number[] = [];
  let timeouts = 0;
  for (let i = 0; i < parks; i++) {
    const t = performance.now();
    if ((await b.p.pause(rewrite.preemption ? 5000 : 200)).paused) times.push(performance.now() - t);
    else timeouts++;
    b.p.resume();
    if (timeouts > 0) break; // an unmodified computing VP never parks: once is enough to show it
    await new Promise((r) => setTimeout(r, 5));
  }
  await b.done();
  return { variant, parks: times.length + timeouts, p50ms: percentile(times, 0.5), p99ms: percentile(times, 0.99), timeouts };
}

export async function captureTimes(guest: string, cmdline: string, budget: number, n: number): Promise<CaptureRow> {
  const b = await boot(cmdline, DEFAULT_REWRITE, budget);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  while (b.p.counters(0).PreemptionExits < 5) await sleep(5);
  const cap: number[] = [],
    cont: number[] = [];
  let stackBytes = 0;
  let progressed = true;
  for (let i = 0; i < n; i++) {
    if (!(await b.p.pause(5000)).paused) throw new Error(`${guest}: the pause before a capture timed out`);
    const t0 = performance.now();
    const vps = await b.p.captureVps();
    const t1 = performance.now();
    await b.p.continueVps(vps);
    const t2 = performance.now();
    b.p.resume();
    cap.push(t1 - t0);
    cont.push(t2 - t1);
    for (const v of vps) if (v.state === 'captured') stackBytes = Math.max(stackBytes, v.capture.stack.length);
    // The continued VP computes on: its preemption count grows again.
    const before = b.p.counters(0).PreemptionExits;
    const deadline = Date.now() + 5000;
    while (b.p.counters(0).PreemptionExits <= before && Date.now() < deadline) await sleep(1);
    if (b.p.counters(0).PreemptionExits <= before) progressed = false;
  }
  await b.done();
  return {
    guest,
    captures: n,
    captureP50ms: percentile(cap, 0.5),
    captureP99ms: percentile(cap, 0.99),
    continueP50ms: percentile(cont, 0.5),
    continueP99ms: percentile(cont, 0.99),
    stackBytes,
    progressed,
  };
}

export async function runCpuBench(opts: { quick?: boolean; budget?: number } = {}): Promise<CpuBenchReport> {
  await buildGuests(['cpu-kernels']);
  const budget = preemptBudget(opts.budget);
  const rounds = opts.quick ? 1 : 3;
  const scale = opts.quick ? 0.25 : 1;
  const kernels: KernelRow[] = [];
  for (const k of KERNELS) {
    const ms: Record<string, number[]> = {};
    const sums = new Set<number>();
    let preemptions = 0;
    for (let r = 0; r < rounds; r++) {
      for (const v of VARIANTS) {
        const res = await runKernel(k, v.rewrite, budget, scale);
        (ms[v.name] ??= []).push(res.ms);
        sums.add(res.sum);
        if (v.name === 'preemptible') preemptions = res.preemptions;
      }
    }
    const med = Object.fromEntries(Object.entries(ms).map(([n, xs]) => [n, median(xs)]));
    kernels.push({
      kernel: k.name,
      ms: med,
      overhead: med.preemptible / med.plain,
      capturableOverhead: med.capturable / med.plain,
      preemptions,
      usPerPreemption: preemptions > 0 ? (med.preemptible * 1000) / preemptions : NaN,
      checksumsAgree: sums.size === 1,
    });
  }
  const ticks = opts.quick ? 100 : 500;
  const latencyRows = [
    await latency('rewritten, computing', `spin ticks=${ticks} period=10000`, DEFAULT_REWRITE, budget, ticks),
    await latency('rewritten, halting', `wait ticks=${ticks} period=10000`, DEFAULT_REWRITE, budget, ticks),
    await latency('plain, halting', `wait ticks=${ticks} period=10000`, NO_REWRITE, budget, ticks),
    await latency('plain, computing (1 s)', `spin ticks=${ticks} period=10000`, NO_REWRITE, budget, ticks),
  ];
  const park = [await parkTimes('rewritten', DEFAULT_REWRITE, budget, opts.quick ? 10 : 50), await parkTimes('plain', NO_REWRITE, budget, 1)];
  const captures = opts.quick ? 5 : 20;
  const capture = [
    await captureTimes('spinning (shallow stack)', 'spin ticks=0', budget, captures),
    await captureTimes('recursive fib (deep stack)', 'kernel=4 n=1000000', budget, captures),
  ];
  return { budget, rounds, kernels, latency: latencyRows, park, capture };
}

const f = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? '—' : x.toFixed(d));

export function formatCpuBench(r: CpuBenchReport): string {
  const lines = [
    `compute kernels, guest time (median of ${r.rounds}), preemption budget ${r.budget}${r.budget === DEFAULT_PREEMPT_BUDGET ? ' (default)' : ''}`,
    'kernel                          plain ms  preemptible ms  overhead  capturable ms  overhead  preemptions  µs/preemption  same result',
  ];
  for (const k of r.kernels) {
    lines.push(
      `${k.kernel.padEnd(30)} ${f(k.ms.plain).padStart(9)} ${f(k.ms.preemptible).padStart(15)} ${(f(k.overhead, 3) + '×').padStart(9)} ${f(k.ms.capturable).padStart(14)} ${(f(k.capturableOverhead, 3) + '×').padStart(9)} ${String(k.preemptions).padStart(12)} ${f(k.usPerPreemption).padStart(14)}  ${k.checksumsAgree ? 'yes' : 'NO'}`,
    );
  }
  lines.push(
    '',
    'interrupt lateness, 1 ms periodic SynIC timer (handler time − expiration, 100 ns clock)',
    'guest                       interrupts    p50 µs    p99 µs    max µs',
  );
  for (const l of r.latency)
    lines.push(`${l.guest.padEnd(26)} ${String(l.interrupts).padStart(11)} ${f(l.p50us).padStart(9)} ${f(l.p99us).padStart(9)} ${f(l.maxus).padStart(9)}`);
  lines.push('', 'pause of a computing VP: time until every VP is parked', 'image          parks  timeouts   p50 ms   p99 ms');
  for (const p of r.park)
    lines.push(
      `${p.variant.padEnd(13)} ${String(p.parks).padStart(6)} ${String(p.timeouts).padStart(9)} ${f(p.p50ms, 2).padStart(8)} ${f(p.p99ms, 2).padStart(8)}`,
    );
  lines.push(
    '',
    'capture of a paused VP (its whole stack) and continuing it in a new thread',
    'guest                        captures  capture p50/p99 ms  continue p50/p99 ms  stack bytes  computes on',
  );
  for (const c of r.capture) {
    lines.push(
      `${c.guest.padEnd(28)} ${String(c.captures).padStart(9)} ${`${f(c.captureP50ms, 2)} / ${f(c.captureP99ms, 2)}`.padStart(19)} ${`${f(c.continueP50ms, 2)} / ${f(c.continueP99ms, 2)}`.padStart(20)} ${String(c.stackBytes).padStart(12)}  ${c.progressed ? 'yes' : 'NO'}`,
    );
  }
  return lines.join('\n');
}

export async function cpuBenchMain(opts: { quick?: boolean; budget?: number; json?: string }): Promise<void> {
  const report = await runCpuBench(opts);
  console.log(formatCpuBench(report));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = (k: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : undefined);
  await cpuBenchMain({ quick: args.includes('--quick'), budget: at('--budget') ? Number(at('--budget')) : undefined, json: at('--json') });
}
