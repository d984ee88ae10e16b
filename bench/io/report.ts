/**
 * Turns the measurements into the report: one row per (workload, path) with throughput, latency
 * percentiles and the per-I/O counters that explain them, the same-run limits, the data checks
 * and the targets. Every figure here is computed from a measurement of this run; expected
 * protocol counts are computed from the protocol and shown beside the measured ones.
 */
import * as fs from 'node:fs';
import type { PostCodeSnapshot } from '../../root-partition/vmwp/device-thread.ts';
import type { BackendLimit, ExitLimit } from './limits.ts';
import { ataExpected, phaseLbas, sampledChecksum, writtenSector, type Phase } from './plan.ts';
import type { PhaseMeasurement, VmRunResult } from './vm-run.ts';

export interface PerIo {
  /** Every exit but the guest's clock reads (MSR) and the closing POST marker. */
  exits: number;
  /** What the protocol implies (ATA); null where it is a bound, not a count (storvsc). */
  exitsExpected: number | null;
  portExits: number;
  interrupts: number;
  interruptsExpected: number | null;
  /** HvCallSignalEvent calls, guest → host. */
  signalsToHost: number;
  /** SIEF events set by the host, host → guest. */
  signalsToGuest: number;
  halts: number;
  /** Reference-time MSR reads the guest made to time itself (the benchmark's own cost). */
  clockReads: number;
  /** Host CPU time, every thread of the process, µs. */
  hostCpuUs: number;
  // The VP's own wait counters (WaitSpinHits, WaitSleeps) are published only when the VP ends,
  // so they cannot be split by phase; the device thread's are live.
  /** How often the device thread gave up spinning and slept: each one costs a wake-up. */
  deviceThreadSleeps: number;
  /** Time the device thread spent asleep on its doorbell (wake-ups included), µs per I/O. */
  deviceThreadSleptUs: number;
  storvspRequests: number;
  /** storvsp's host time per I/O (µs): its batches, and within them the SCSI target + backend. */
  storvspBatchUs: number;
  storvspExecuteUs: number;
  /** The request path stage by stage (µs per I/O; StorVspStats): ring read, GPA check, backend I/O inside execute, completion write, signal. */
  storvspReadUs?: number;
  storvspValidateUs?: number;
  storvspBackendUs?: number;
  storvspCompleteUs?: number;
  storvspSignalUs?: number;
  /** Requests per I/O that ran queued in the thread pool (their backend time is not on the device thread, so not in storvspBackendUs). */
  storvspQueued?: number;
}

export interface IoRow {
  workload: string;
  workloadLabel: string;
  path: string;
  pathLabel: string;
  kind: 'emulated' | 'synthetic';
  bytesPerIo: number;
  depth: number;
  ios: number;
  errors: number;
  seconds: number;
  /** The row is its median round (by MB/s); every figure and counter below comes from that one phase. */
  round: number;
  /** MB/s of every round, in run order (the spread says how noisy the machine was). */
  mbPerSRounds: number[];
  mbPerS: number;
  iops: number;
  latencyUs: { p50: number; p99: number; mean: number; max: number };
  perIo: PerIo;
  checksum: { guest: number; host: number; ok: boolean };
  /** Synthetic MB/s over this row's (emulated rows only). */
  syntheticSpeedup: number | null;
  limit: { name: string; mbPerS: number; fraction: number };
  /** Emulated: exits × µs per adaptive exit (same run) + backend time, µs per I/O. */
  exitBoundUs: number | null;
  /** Emulated: the phase's mean latency over its exits — what one exit really cost here, µs. */
  usPerExitInPhase: number | null;
}

const percentile = (sorted: Float64Array, q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

function delta(m: PhaseMeasurement, name: string): number {
  return (m.end.vps[0]![name] ?? 0) - (m.begin.vps[0]![name] ?? 0);
}

function deviceDelta(a: PostCodeSnapshot, b: PostCodeSnapshot, pick: (s: PostCodeSnapshot) => number): number {
  return pick(b) - pick(a);
}

export function buildRows(
  vm: VmRunResult,
  content: Uint8Array,
  scsiFinal: Uint8Array,
  ideFinal: Uint8Array,
  backends: BackendLimit[],
  exits: ExitLimit,
): IoRow[] {
  const capacity = content.length / 512;
  const multiple = vm.values.ata_multiple ?? 1;
  const measured = vm.phases.filter((m) => !m.phase.warmup);
  const mbPerSOf = (m: PhaseMeasurement) => (m.done * m.phase.workload.bytes) / ((m.t1 - m.t0) / 1e7) / 1e6;
  const groups = new Map<string, PhaseMeasurement[]>();
  for (const m of measured) {
    const key = `${m.phase.workload.id}/${m.phase.path.id}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const rows: IoRow[] = [...groups.values()].map((all) => {
    const byRate = [...all].sort((a, b) => mbPerSOf(a) - mbPerSOf(b));
    const m = byRate[Math.floor((byRate.length - 1) / 2)]!;
    const { phase } = m;
    const checks = all.map((x) => checkPhase(x, phase.workload.write ? (phase.path.kind === 'synthetic' ? scsiFinal : ideFinal) : content, capacity));
    const n = Math.max(1, m.done);
    const sectors = phase.workload.bytes / 512;
    const seconds = (m.t1 - m.t0) / 1e7;
    const lat = Float64Array.from(m.latencies, (v) => v / 10).sort();
    const cpu = m.end.cpu.user + m.end.cpu.system - (m.begin.cpu.user + m.begin.cpu.system);
    const expected = phase.path.kind === 'emulated' ? ataExpected(phase.path.id, phase.workload.write, sectors, multiple) : null;
    const backend = backends.find((b) => b.workload === phase.workload.id);
    const mbPerS = (m.done * phase.workload.bytes) / seconds / 1e6;
    const perIo: PerIo = {
      exits: (delta(m, 'Exits') - delta(m, 'MsrExits') - 1) / n,
      exitsExpected: expected?.exits ?? null,
      portExits: (delta(m, 'IoExits') + delta(m, 'StringIoExits') - 1) / n,
      interrupts: delta(m, 'InterruptsDelivered') / n,
      interruptsExpected: expected?.interrupts ?? null,
      signalsToHost: delta(m, 'SignalEventCalls') / n,
      signalsToGuest: delta(m, 'EventsSignalled') / n,
      halts: delta(m, 'HaltExits') / n,
      clockReads: delta(m, 'MsrExits') / n,
      hostCpuUs: cpu / n,
      deviceThreadSleeps: deviceDelta(m.begin, m.end, (s) => s.device.rootWaitSleeps) / n,
      deviceThreadSleptUs: deviceDelta(m.begin, m.end, (s) => s.device.rootWaitSleptUs ?? 0) / n,
      storvspRequests: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.requests ?? 0) / n,
      storvspBatchUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.batchUs ?? 0) / n,
      storvspExecuteUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.executeUs ?? 0) / n,
      storvspReadUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.readUs ?? 0) / n,
      storvspValidateUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.validateUs ?? 0) / n,
      storvspBackendUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.backendUs ?? 0) / n,
      storvspCompleteUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.completeUs ?? 0) / n,
      storvspSignalUs: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.signalUs ?? 0) / n,
      storvspQueued: deviceDelta(m.begin, m.end, (s) => s.device.storvsp[0]?.queued ?? 0) / n,
    };
    return {
      workload: phase.workload.id,
      workloadLabel: phase.workload.label,
      path: phase.path.id,
      pathLabel: phase.path.label,
      kind: phase.path.kind,
      bytesPerIo: phase.workload.bytes,
      depth: phase.depth,
      ios: m.done,
      errors: m.errors,
      seconds,
      round: phase.round,
      mbPerSRounds: all.map(mbPerSOf),
      mbPerS,
      iops: m.done / seconds,
      latencyUs: {
        p50: percentile(lat, 0.5),
        p99: percentile(lat, 0.99),
        mean: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
        max: lat[lat.length - 1] ?? 0,
      },
      perIo,
      // Every round's data is checked, not only the reported one.
      checksum: {
        guest: checks.map((c) => c.guest).reduce((a, b) => (a + b) >>> 0, 0),
        host: checks.map((c) => c.host).reduce((a, b) => (a + b) >>> 0, 0),
        ok: checks.every((c) => c.ok),
      },
      syntheticSpeedup: null,
      limit: { name: 'backend alone', mbPerS: backend?.mbPerS ?? 0, fraction: backend ? mbPerS / backend.mbPerS : 0 },
      exitBoundUs: expected ? expected.exits * exits.adaptiveUsPerExit + (backend?.usPerIo ?? 0) : null,
      usPerExitInPhase: expected ? (seconds * 1e6) / n / expected.exits : null,
    };
  });
  // The synthetic row of a workload against each emulated row (QD32 emulated = its QD1 phase).
  for (const r of rows) {
    if (r.kind !== 'emulated') continue;
    const s = rows.find((x) => x.kind === 'synthetic' && x.workload === r.workload);
    r.syntheticSpeedup = s ? s.mbPerS / r.mbPerS : null;
  }
  return rows;
}

/**
 * Reads: the guest's checksum against the same checksum of the original content at the
 * replayed LBAs. Writes: against the file as the run left it (every written sector holds its LBA
 * and the template, whichever phase wrote it last, so the order of phases does not matter).
 */
export function checkPhase(m: PhaseMeasurement, data: Uint8Array, capacity: number): IoRow['checksum'] {
  const sectors = m.phase.workload.bytes / 512;
  let sum = 0;
  for (const lba of phaseLbas(m.phase, capacity).slice(0, m.done)) sum = (sum + sampledChecksum(data, lba * 512, sectors)) >>> 0;
  return { guest: m.checksum, host: sum, ok: sum === m.checksum && m.errors === 0 };
}

/** The whole file against what it must hold: the original content with every written sector replaced. */
export function checkWholeDisk(
  file: string,
  content: Uint8Array,
  writes: readonly Phase[],
): { file: string; sectors: number; written: number; mismatched: number } {
  const expected = content.slice();
  const written = new Set<number>();
  for (const p of writes) {
    const sectors = p.workload.bytes / 512;
    for (const lba of phaseLbas(p, content.length / 512)) for (let s = 0; s < sectors; s++) written.add(lba + s);
  }
  for (const lba of written) expected.set(writtenSector(lba), lba * 512);
  const actual = fs.readFileSync(file);
  let mismatched = 0;
  for (let s = 0; s < expected.length / 512; s++) {
    if (Buffer.compare(actual.subarray(s * 512, s * 512 + 512), expected.subarray(s * 512, s * 512 + 512)) !== 0) mismatched++;
  }
  return { file, sectors: expected.length / 512, written: written.size, mismatched };
}

export interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean;
}

export function evaluateTargets(rows: IoRow[], backends: BackendLimit[], exits: ExitLimit, coreFree: boolean): Target[] {
  const row = (w: string, p: string) => rows.find((r) => r.workload === w && r.path === p);
  const out: Target[] = [];
  const cpu = (r: IoRow, b: BackendLimit | undefined) =>
    `CPU ${r.perIo.hostCpuUs.toFixed(1)} µs/IO${b ? ` against ${b.cpuUsPerIo.toFixed(1)} for the backend alone` : ''}`;
  // Synthetic storage against the machine (the backend alone: the same preads/pwrites with no VM).
  const ofBackend = (workload: string, label: string, fraction: number) => {
    const r = row(workload, 'storvsc');
    const b = backends.find((x) => x.workload === workload);
    if (!r || !b) return;
    out.push({
      name: `synthetic ${label} vs backend alone`,
      goal: `≥ ${Math.round(100 * fraction)}%`,
      measured: `${((100 * r.mbPerS) / b.mbPerS).toFixed(0)}% (${r.mbPerS.toFixed(0)} of ${b.mbPerS.toFixed(0)} MB/s; ${cpu(r, b)})`,
      met: r.mbPerS >= fraction * b.mbPerS,
    });
  };
  ofBackend('rand-read-4k-qd1', '4 KiB random read QD1', 0.4);
  ofBackend('seq-read-1m', '1 MiB sequential read', 0.75);
  const q32 = row('rand-read-4k-qd32', 'storvsc');
  if (q32) {
    out.push({
      name: 'synthetic 4 KiB random read QD32, IOPS',
      goal: '≥ 250 000',
      measured: `${Math.round(q32.iops).toLocaleString('en-US')} (${cpu(
        q32,
        backends.find((x) => x.workload === 'rand-read-4k-qd32'),
      )})`,
      met: q32.iops >= 250_000,
    });
    out.push({
      name: 'synthetic 4 KiB random read QD32, guest→host signals per I/O',
      goal: '≤ 0.1',
      measured: q32.perIo.signalsToHost.toFixed(3),
      met: q32.perIo.signalsToHost <= 0.1,
    });
  }
  out.push({
    name: 'emulated exit round trip, adaptive wait (median of rounds)',
    goal: '≤ 2 µs when a core is free',
    measured: `${exits.adaptiveUsPerExit.toFixed(2)} µs${coreFree ? ' (a core was free)' : ' (no core was free before the run: see machine.idleCoresStart)'}`,
    met: exits.adaptiveUsPerExit <= 2,
  });
  // Exact, not within a tolerance: the counters are deltas between the two POST markers that
  // bracket a phase, the closing marker's own exit is subtracted (buildRows), and nothing else
  // exits in between, so a protocol count either matches or something is wrong. No ATA row at all
  // is a failure too: a target that nothing measured is not met.
  const emulated = rows.filter((x) => x.kind === 'emulated');
  const off = emulated.filter((r) => r.perIo.exits !== r.perIo.exitsExpected || r.perIo.interrupts !== r.perIo.interruptsExpected);
  const show = (r: IoRow) =>
    `${r.path} ${r.workload} ${r.perIo.exits} exits vs ${r.perIo.exitsExpected}, ${r.perIo.interrupts} irq vs ${r.perIo.interruptsExpected}`;
  out.push({
    name: 'emulated exits and interrupts per I/O equal what the protocol implies (every ATA row)',
    goal: 'measured = protocol count, exactly',
    measured:
      emulated.length === 0
        ? 'no ATA rows measured'
        : off.length === 0
          ? `${emulated.length}/${emulated.length} rows equal`
          : `${emulated.length - off.length}/${emulated.length} rows equal; differ: ${off.map(show).join('; ')}`,
    met: emulated.length > 0 && off.length === 0,
  });
  return out;
}
