/** The I/O benchmark report as terminal text: the main table, the limits, why each path stops where it does, targets. */
import type { IoBenchReport } from '../io.ts';
import type { IoRow } from './report.ts';
import { formatNetBench } from '../net/format.ts';
import { formatLinuxSection } from './linux-section.ts';
import { formatQueues } from './queues.ts';

const SHORT: Record<string, string> = {
  'pio-word': 'PIO word',
  'pio-string': 'PIO string',
  'pio-multiple': 'PIO MULTIPLE',
  dma: 'DMA',
  storvsc: 'storvsc',
  'storvsc-vhdx': 'storvsc VHDX',
};

export function fmt(v: number, digits = 2): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 100_000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(digits);
}

function table(header: string[], rows: string[][], rightFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function exitsCell(r: IoRow): string {
  const e = r.perIo.exitsExpected;
  return e === null ? fmt(r.perIo.exits) : `${fmt(r.perIo.exits)} (${e})`;
}

export function formatMainTable(rows: IoRow[]): string {
  const header = [
    'workload',
    'path',
    'QD',
    'MB/s',
    'rounds min–max',
    'IOPS',
    'p50 µs',
    'p99 µs',
    'exits/IO (protocol)',
    'irq/IO',
    'sig→host',
    'sig→guest',
    'CPU µs/IO',
    'storvsc ×',
    'of backend',
    'data',
  ];
  const body = rows.map((r) => [
    r.workloadLabel,
    SHORT[r.path] ?? r.path,
    String(r.depth),
    fmt(r.mbPerS),
    `${fmt(Math.min(...r.mbPerSRounds))}–${fmt(Math.max(...r.mbPerSRounds))}`,
    fmt(r.iops),
    fmt(r.latencyUs.p50),
    fmt(r.latencyUs.p99),
    exitsCell(r),
    fmt(r.perIo.interrupts),
    fmt(r.perIo.signalsToHost, 3),
    fmt(r.perIo.signalsToGuest, 3),
    fmt(r.perIo.hostCpuUs),
    r.syntheticSpeedup === null ? '' : `${fmt(r.syntheticSpeedup)}×`,
    `${(100 * r.limit.fraction).toFixed(1)}%`,
    r.checksum.ok ? 'ok' : 'BAD',
  ]);
  return table(header, body, 2);
}

export function formatLimits(report: IoBenchReport): string {
  const { copy, backend, exit } = report.limits;
  const lines = ['Limits measured in this run'];
  lines.push(
    `  plain copy, one thread, TypedArray.set into a SharedArrayBuffer: ${copy.map((c) => `${c.bytes >= 1 << 20 ? c.bytes / (1 << 20) + ' MiB' : c.bytes / 1024 + ' KiB'} ${fmt(c.gbPerS)} GB/s`).join(', ')}`,
  );
  lines.push('  backend alone (fs.readSync / fs.writeSync of the same ranges into a SAB view, no VM):');
  lines.push(
    table(
      ['  workload', 'MB/s', 'IOPS', 'µs/IO', 'CPU µs/IO'],
      backend.map((b) => [`  ${b.workload}`, fmt(b.mbPerS), fmt(b.iops), fmt(b.usPerIo), fmt(b.cpuUsPerIo)]),
    ),
  );
  const mem = report.limits.memory;
  if (mem) {
    const ft = mem.firstTouch;
    lines.push(
      `  guest memory backed before the first phase: ${mem.prefault.bytes >> 20} MiB in ${fmt(mem.prefault.ms)} ms (${fmt(mem.prefault.bytes / 4096 / mem.prefault.ms / 1000, 3)} M pages/s; a VMWP does this behind the running guest)`,
    );
    lines.push(
      `  first touch: a 4 KiB pread into never-touched memory ${fmt(ft.coldUsPerPage)} µs, into the same memory once backed ${fmt(ft.warmUsPerPage)} µs (${ft.pages} pages): ${fmt(ft.coldUsPerPage - ft.warmUsPerPage)} µs per page a cold run would add`,
    );
  }
  lines.push(
    `  exit round trip (bench/exit.ts, median of ${exit.rounds.length} round(s)): adaptive wait ${fmt(exit.adaptiveUsPerExit, 3)} µs (string 512 B ${fmt(exit.adaptiveStringUsPerExit, 3)} µs), blocking wait ${fmt(exit.blockingUsPerExit, 3)} µs`,
  );
  return lines.join('\n');
}

/** Why each path stops where it does, from this run's own figures. */
export function formatExplanation(report: IoBenchReport): string {
  const exitUs = report.limits.exit.adaptiveUsPerExit;
  const lines = ['Why each path stops where it does'];
  lines.push(
    `  emulated: time per I/O ≈ exits/IO × ${fmt(exitUs, 3)} µs per adaptive exit + backend µs/IO (model from this run's limits; measured mean beside it)`,
  );
  const emu = report.rows.filter((r) => r.kind === 'emulated');
  lines.push("  µs/exit here = the phase's time per I/O over its exits: what an exit cost with the device model, the interrupt and the backend behind it");
  lines.push(
    table(
      ['  path', 'workload', 'exits/IO', 'model µs/IO', 'mean µs/IO', 'model/mean', 'µs/exit here', 'dev sleeps/IO'],
      emu.map((r) => [
        `  ${SHORT[r.path]}`,
        r.workloadLabel,
        fmt(r.perIo.exits),
        fmt(r.exitBoundUs ?? 0),
        fmt(r.latencyUs.mean),
        `${((100 * (r.exitBoundUs ?? 0)) / r.latencyUs.mean).toFixed(0)}%`,
        fmt(r.usPerExitInPhase ?? 0, 3),
        fmt(r.perIo.deviceThreadSleeps, 3),
      ]),
      2,
    ),
  );
  lines.push(
    '  synthetic: no exit per byte; per I/O it pays signals (each a hypercall exit and a wake-up), the request/completion packets, and the backend call; data lands in guest memory by one pread/pwrite',
  );
  const syn = report.rows.filter((r) => r.kind === 'synthetic');
  lines.push(
    '  halts/IO: the guest ran out of work and halted (a wake-up on its side); dev sleeps/IO: the device thread ran out of its spin and slept (a wake-up on the host side)',
  );
  lines.push(
    table(
      [
        '  workload',
        'MB/s',
        'backend MB/s',
        'of backend',
        'p50 µs',
        'backend µs/IO',
        'sig→host/IO',
        'halts/IO',
        'dev sleeps/IO',
        'requests/IO',
        'CPU µs/IO',
        'backend CPU µs/IO',
      ],
      syn.map((r) => {
        const b = report.limits.backend.find((x) => x.workload === r.workload);
        return [
          `  ${r.workloadLabel}${r.path === 'storvsc' ? '' : ` (${SHORT[r.path] ?? r.path})`}`,
          fmt(r.mbPerS),
          fmt(b?.mbPerS ?? 0),
          `${(100 * r.limit.fraction).toFixed(1)}%`,
          fmt(r.latencyUs.p50),
          fmt(b?.usPerIo ?? 0),
          fmt(r.perIo.signalsToHost, 3),
          fmt(r.perIo.halts, 3),
          fmt(r.perIo.deviceThreadSleeps, 3),
          fmt(r.perIo.storvspRequests),
          fmt(r.perIo.hostCpuUs),
          fmt(b?.cpuUsPerIo ?? 0),
        ];
      }),
    ),
  );
  // Where a synthetic I/O's time goes: the guest's latency against storvsp's own host time.
  lines.push(
    "  split per I/O (µs) on the device thread: storvsp = its request batches, first packet to last completion; ring = taking the request off the ring (a private copy); GPA = checking the guest's pages and making the views; SCSI = the target without the backend; backend = pread/pwrite into guest memory (beside it the backend alone into a private buffer); compl = writing the completion; signal = the signal to the guest after a batch; dev asleep = the device thread asleep on its doorbell (wake-up included); queued = requests per I/O that ran in the thread pool (their pread/pwrite is off the device thread: not in backend, and their completion is written from a later batch). The rest of p50 is the guest, its signals and the VP's halt",
  );
  lines.push(
    table(
      ['  workload', 'p50 µs', 'storvsp', 'ring', 'GPA', 'SCSI', 'backend', 'backend alone', 'compl', 'signal', 'dev asleep', 'queued'],
      syn.map((r) => {
        const b = report.limits.backend.find((x) => x.workload === r.workload);
        const io = r.perIo;
        return [
          `  ${r.workloadLabel}${r.path === 'storvsc' ? '' : ` (${SHORT[r.path] ?? r.path})`}`,
          fmt(r.latencyUs.p50),
          fmt(io.storvspBatchUs ?? 0),
          fmt(io.storvspReadUs ?? 0, 3),
          fmt(io.storvspValidateUs ?? 0, 3),
          fmt((io.storvspExecuteUs ?? 0) - (io.storvspBackendUs ?? 0), 3),
          fmt(io.storvspBackendUs ?? 0),
          fmt(b?.usPerIo ?? 0),
          fmt(io.storvspCompleteUs ?? 0, 3),
          fmt(io.storvspSignalUs ?? 0, 3),
          fmt(io.deviceThreadSleptUs ?? 0),
          fmt(io.storvspQueued ?? 0, 2),
        ];
      }),
    ),
  );
  return lines.join('\n');
}

export function formatReport(report: IoBenchReport): string {
  const m = report.machine;
  const out: string[] = [];
  out.push(`tsvisor bench io — emulated IDE vs synthetic SCSI on one VM (${report.quick ? 'quick run' : 'full run'}, ${report.startedAt})`);
  out.push(
    `machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${m.node}; load average ${m.loadAverageStart.map((x) => x.toFixed(2)).join('/')} → ${m.loadAverageEnd.map((x) => x.toFixed(2)).join('/')}; idle cores before/after ${m.idleCoresStart?.toFixed(2) ?? '–'}/${m.idleCoresEnd?.toFixed(2) ?? '–'}`,
  );
  out.push(
    `VM: 1 VP, ${report.config.vmMemoryBytes >> 20} MiB; disks: two raw files of ${report.config.diskBytes >> 20} MiB with the same random content (IDE primary master, SCSI LUN 0); wait spin ${report.config.spinIterations}${report.config.maxSpinIterations > report.config.spinIterations ? `, adaptive up to ${report.config.maxSpinIterations} (KVM-style halt polling)` : ' (fixed)'}`,
  );
  out.push('');
  out.push(formatMainTable(report.rows));
  out.push(
    "  exits/IO: every exit except the guest's clock reads; (protocol) = what ATA with 8259 EOIs implies. storvsc × = storvsc MB/s over the row's. of backend = MB/s over the backend alone.",
  );
  out.push('');
  out.push(formatLimits(report));
  out.push('');
  out.push(formatExplanation(report));
  out.push('');
  out.push('Targets (reported, not asserted)');
  for (const t of report.targets) out.push(`  [${t.met ? 'met' : 'NOT met'}] ${t.name}: ${t.measured} (goal ${t.goal})`);
  out.push('');
  const i = report.integrity;
  out.push(
    `Data integrity: ${i.phasesOk}/${i.phases} phase checksums (and ${i.warmupsOk}/${i.warmups} warm-ups) match the host files; whole disks: ${i.disks.map((d) => `${d.file.split('/').pop()} ${d.mismatched} of ${d.sectors} sectors differ (${d.written} written)`).join(', ')} → ${i.ok ? 'OK' : 'FAILED'}`,
  );
  out.push('');
  if (report.queues) {
    out.push(formatQueues(report.queues));
    out.push('');
  }
  out.push(`Network: ${report.network.note}`);
  if (report.network.status === 'measured') out.push(formatNetBench(report.network.report));
  out.push('');
  if (report.linux) {
    out.push(formatLinuxSection(report.linux));
    out.push('');
  }
  out.push('Notes');
  for (const n of report.notes) out.push(`  - ${n}`);
  return out.join('\n');
}
