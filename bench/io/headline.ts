/**
 * The report's answer at a glance: how much faster synthetic I/O was than each emulated mode in
 * this run, and why, in two sentences built from the run's own figures (never from expectations:
 * where an emulated mode won, the headline says so).
 */
import type { IoBenchReport } from '../io.ts';
import { fmt } from './format.ts';
import type { IoRow } from './report.ts';

export interface PathSpeedup {
  path: string;
  pathLabel: string;
  /** storvsc MB/s over this path's, on every workload both ran: the lowest, geometric mean and highest. */
  min: number;
  geomean: number;
  max: number;
  /** Workloads where this emulated path was faster than storvsc. */
  lostOn: string[];
}

export interface Headline {
  speedups: PathSpeedup[];
  sentences: [string, string];
}

const range = (s: PathSpeedup) => (Math.abs(s.max - s.min) / s.max < 0.05 ? `${fmt(s.geomean)}×` : `${fmt(s.min)}–${fmt(s.max)}×`);

export function headline(report: IoBenchReport): Headline | null {
  const rows = report.rows.filter((r) => r.path !== 'storvsc-vhdx');
  const emulated = rows.filter((r) => r.kind === 'emulated' && r.syntheticSpeedup !== null && r.syntheticSpeedup > 0);
  if (emulated.length === 0) return null;
  const byPath = new Map<string, IoRow[]>();
  for (const r of emulated) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
  const speedups: PathSpeedup[] = [...byPath.values()].map((rs) => {
    const x = rs.map((r) => r.syntheticSpeedup!);
    return {
      path: rs[0]!.path,
      pathLabel: rs[0]!.pathLabel,
      min: Math.min(...x),
      max: Math.max(...x),
      geomean: Math.exp(x.reduce((a, v) => a + Math.log(v), 0) / x.length),
      lostOn: rs.filter((r) => r.syntheticSpeedup! < 1).map((r) => r.workloadLabel),
    };
  });
  const syn = (w: string) => rows.find((r) => r.workload === w && r.path === 'storvsc');
  const seq = syn('seq-read-1m');
  const first =
    `Synthetic SCSI over VMBus (storvsc) was ${speedups.map((s) => `${range(s)} as fast as ${s.pathLabel}`).join(', ')} on the same VM and disk` +
    (seq ? `; it read 1 MiB blocks at ${fmt(seq.mbPerS)} MB/s, ${(100 * seq.limit.fraction).toFixed(0)}% of the backend alone.` : '.');

  const small = (p: string) =>
    rows.find((r) => r.workload === 'rand-read-4k-qd1' && r.path === p) ?? rows.find((r) => r.workload === 'seq-read-4k' && r.path === p);
  const synSmall = small('storvsc');
  const exitUs = report.limits.exit.adaptiveUsPerExit;
  const costs = speedups
    .map((s) => small(s.path))
    .filter((r): r is IoRow => Boolean(r))
    .map((r) => `${fmt(r.perIo.exits)} with ${r.pathLabel}`);
  let second = `An emulated 4 KiB read traps once per register access (${costs.join(', ')}; ≈ ${fmt(exitUs, 3)} µs per exit round trip here)`;
  second += synSmall
    ? `, while storvsc's costs ${fmt(synSmall.perIo.exits)} exits and ${fmt(synSmall.perIo.signalsToHost, 2)} signals and its data lands in guest memory by one pread`
    : ', while storvsc moves its data into guest memory by one pread per request';
  const losses = emulated
    .filter((r) => r.syntheticSpeedup! < 1)
    .map((r) => {
      const mine = syn(r.workload);
      return `${r.pathLabel} on ${r.workloadLabel}: mean ${fmt(r.latencyUs.mean)} µs per I/O against ${fmt(mine?.latencyUs.mean ?? 0)} µs, with storvsc's ${fmt(mine?.perIo.halts ?? 0, 2)} halts and ${fmt(mine?.perIo.deviceThreadSleeps ?? 0, 2)} device-thread sleeps per I/O`;
    });
  second += losses.length
    ? `. Where an emulated mode won, its few exits cost less than storvsc's signal and the wake-ups behind it (${losses.join('; ')}).`
    : '.';
  return { speedups, sentences: [first, second] };
}
