/**
 * The I/O benchmark report as one self-contained HTML file: charts are inline SVG drawn here (no
 * script, no network), so it opens offline in any browser. Log scales, because the paths differ
 * by up to five orders of magnitude.
 */
import { formatLinuxSection } from './linux-section.ts';
import type { IoBenchReport } from '../io.ts';
import { fmt } from './format.ts';
import type { IoRow } from './report.ts';
import { headline } from './headline.ts';
import { renderNetSection } from '../net/html.ts';

const COLORS: Record<string, string> = {
  'pio-word': '#b2182b',
  'pio-string': '#ef8a62',
  'pio-multiple': '#f4a582',
  dma: '#92c5de',
  storvsc: '#2166ac',
  'storvsc-vhdx': '#5aae61',
  backend: '#555',
  protocol: '#999',
};
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Bar {
  label: string;
  value: number;
  color: string;
}
interface Group {
  label: string;
  bars: Bar[];
}

/** Horizontal grouped bars on a log10 axis. */
function barChart(title: string, unit: string, groups: Group[]): string {
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  if (values.length === 0) return '';
  const lo = Math.floor(Math.log10(Math.min(...values))),
    hi = Math.ceil(Math.log10(Math.max(...values)));
  const left = 190,
    width = 560,
    barH = 11,
    gap = 8;
  const x = (v: number) => left + (width * (Math.log10(Math.max(v, 10 ** lo)) - lo)) / Math.max(1, hi - lo);
  let y = 34;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="${left - 6}" y="${y + 9}" text-anchor="end" class="g">${esc(g.label)}</text>`);
    for (const b of g.bars) {
      parts.push(
        `<rect x="${left}" y="${y}" width="${Math.max(1, x(b.value) - left).toFixed(1)}" height="${barH - 1}" fill="${b.color}"><title>${esc(`${b.label}: ${fmt(b.value)} ${unit}`)}</title></rect>`,
      );
      parts.push(`<text x="${(x(b.value) + 4).toFixed(1)}" y="${y + 9}" class="v">${esc(`${fmt(b.value)} ${b.label}`)}</text>`);
      y += barH;
    }
    y += gap;
  }
  const ticks: string[] = [];
  for (let e = lo; e <= hi; e++)
    ticks.push(
      `<line x1="${x(10 ** e)}" y1="26" x2="${x(10 ** e)}" y2="${y}" class="t"/><text x="${x(10 ** e)}" y="22" text-anchor="middle" class="v">${fmt(10 ** e)}</text>`,
    );
  return `<figure><figcaption>${esc(title)} (${esc(unit)}, log scale)</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 340}" height="${y + 6}">${ticks.join('')}${parts.join('')}</svg></figure>`;
}

function byWorkload(rows: IoRow[], pick: (r: IoRow) => Bar[]): Group[] {
  const out: Group[] = [];
  for (const r of rows) {
    let g = out.find((x) => x.label === r.workloadLabel);
    if (!g) out.push((g = { label: r.workloadLabel, bars: [] }));
    g.bars.push(...pick(r));
  }
  return out;
}

function htmlTable(header: string[], rows: string[][]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function renderHtml(report: IoBenchReport): string {
  const rows = report.rows;
  const m = report.machine;
  const throughput = byWorkload(rows, (r) => {
    const bars: Bar[] = [{ label: r.pathLabel, value: r.mbPerS, color: COLORS[r.path]! }];
    if (r.kind === 'synthetic') bars.push({ label: 'backend alone', value: r.limit.mbPerS, color: COLORS.backend! });
    return bars;
  });
  const latency = byWorkload(rows, (r) => [
    { label: `${r.pathLabel} p50`, value: r.latencyUs.p50, color: COLORS[r.path]! },
    { label: `p99`, value: r.latencyUs.p99, color: '#ccc' },
  ]);
  const exits = byWorkload(rows, (r) => [
    { label: `${r.pathLabel} measured`, value: r.perIo.exits, color: COLORS[r.path]! },
    ...(r.perIo.exitsExpected === null ? [] : [{ label: 'protocol', value: r.perIo.exitsExpected, color: COLORS.protocol! }]),
  ]);
  const speedup = byWorkload(
    rows.filter((r) => r.syntheticSpeedup !== null),
    (r) => [{ label: `over ${r.pathLabel}`, value: r.syntheticSpeedup!, color: COLORS[r.path]! }],
  );
  const cpu = byWorkload(rows, (r) => [{ label: r.pathLabel, value: r.perIo.hostCpuUs, color: COLORS[r.path]! }]);
  const main = htmlTable(
    [
      'workload',
      'path',
      'QD',
      'I/Os',
      'MB/s',
      'MB/s of each round',
      'IOPS',
      'p50 µs',
      'p99 µs',
      'exits/IO',
      'protocol',
      'irq/IO',
      'sig→host/IO',
      'sig→guest/IO',
      'halts/IO',
      'clock reads/IO',
      'CPU µs/IO',
      'storvsc ×',
      'of backend',
      'checksum',
    ],
    rows.map((r) => [
      r.workloadLabel,
      r.pathLabel,
      String(r.depth),
      String(r.ios),
      fmt(r.mbPerS),
      r.mbPerSRounds.map((v) => fmt(v)).join(' / '),
      fmt(r.iops),
      fmt(r.latencyUs.p50),
      fmt(r.latencyUs.p99),
      fmt(r.perIo.exits),
      r.perIo.exitsExpected === null ? '' : String(r.perIo.exitsExpected),
      fmt(r.perIo.interrupts),
      fmt(r.perIo.signalsToHost, 3),
      fmt(r.perIo.signalsToGuest, 3),
      fmt(r.perIo.halts, 3),
      fmt(r.perIo.clockReads),
      fmt(r.perIo.hostCpuUs),
      r.syntheticSpeedup === null ? '' : `${fmt(r.syntheticSpeedup)}×`,
      `${(100 * r.limit.fraction).toFixed(1)}%`,
      r.checksum.ok ? 'ok' : `BAD ${r.checksum.guest} ≠ ${r.checksum.host}`,
    ]),
  );
  const { copy, backend, exit } = report.limits;
  const limits = htmlTable(
    ['limit', 'figure'],
    [
      ...copy.map((c) => [`plain copy ${c.bytes} B (TypedArray.set into a SAB, one thread)`, `${fmt(c.gbPerS)} GB/s`]),
      ...backend.map((b) => [
        `backend alone: ${b.workload}`,
        `${fmt(b.mbPerS)} MB/s, ${fmt(b.iops)} IOPS, ${fmt(b.usPerIo)} µs/IO, CPU ${fmt(b.cpuUsPerIo)} µs/IO`,
      ]),
      ['exit round trip, adaptive wait (port read)', `${fmt(exit.adaptiveUsPerExit, 3)} µs`],
      ['exit round trip, adaptive wait (string 512 B)', `${fmt(exit.adaptiveStringUsPerExit, 3)} µs`],
      ['exit round trip, blocking wait', `${fmt(exit.blockingUsPerExit, 3)} µs`],
      ...(report.limits.memory
        ? [
            ['guest memory backed before the first phase', `${report.limits.memory.prefault.bytes >> 20} MiB in ${fmt(report.limits.memory.prefault.ms)} ms`],
            [
              'first touch: 4 KiB pread into never-touched / backed memory',
              `${fmt(report.limits.memory.firstTouch.coldUsPerPage)} / ${fmt(report.limits.memory.firstTouch.warmUsPerPage)} µs`,
            ],
          ]
        : []),
    ],
  );
  const explain = htmlTable(
    ['path', 'workload', 'exits/IO', 'model: exits × µs/exit + backend (µs)', 'measured mean (µs)', 'µs per exit here', 'device-thread sleeps/IO'],
    rows
      .filter((r) => r.kind === 'emulated')
      .map((r) => [
        r.pathLabel,
        r.workloadLabel,
        fmt(r.perIo.exits),
        fmt(r.exitBoundUs ?? 0),
        fmt(r.latencyUs.mean),
        fmt(r.usPerExitInPhase ?? 0, 3),
        fmt(r.perIo.deviceThreadSleeps, 3),
      ]),
  );
  const targets = htmlTable(
    ['target', 'goal', 'measured', ''],
    report.targets.map((t) => [t.name, t.goal, t.measured, t.met ? 'met' : 'NOT met']),
  );
  const syn = rows.filter((r) => r.kind === 'synthetic');
  const backendOf = (r: IoRow) => report.limits.backend.find((b) => b.workload === r.workload);
  const synLabel = (r: IoRow) => `${r.workloadLabel}${r.path === 'storvsc' ? '' : ` (${r.pathLabel})`}`;
  const synCost = htmlTable(
    [
      'workload',
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
      const b = backendOf(r);
      return [
        synLabel(r),
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
  );
  const synSplit = htmlTable(
    ['workload', 'p50 µs', 'storvsp µs', 'SCSI+backend µs', 'backend alone µs', 'device thread asleep µs'],
    syn.map((r) => [
      synLabel(r),
      fmt(r.latencyUs.p50),
      fmt(r.perIo.storvspBatchUs ?? 0),
      fmt(r.perIo.storvspExecuteUs ?? 0),
      fmt(backendOf(r)?.usPerIo ?? 0),
      fmt(r.perIo.deviceThreadSleptUs ?? 0),
    ]),
  );
  const queues = report.queues
    ? htmlTable(
        [
          'queues',
          'IOPS',
          'p50 µs',
          'sig→host/IO',
          'sig→guest/IO',
          'irq/IO',
          'irq on VP 1/IO',
          'exits/IO',
          'halts/IO',
          'CPU µs/IO',
          'dev sleeps/IO',
          'on the queue thread',
          'data',
        ],
        report.queues.rows.map((r) => [
          r.label,
          fmt(r.iops),
          fmt(r.p50Us),
          fmt(r.perIo.signalsToHost, 3),
          fmt(r.perIo.signalsToGuest, 3),
          fmt(r.perIo.interrupts, 3),
          fmt(r.perIo.interruptsVp1, 3),
          fmt(r.perIo.exits, 3),
          fmt(r.perIo.halts, 3),
          fmt(r.perIo.hostCpuUs),
          fmt(r.perIo.deviceThreadSleeps, 3),
          `${(r.perIo.queueThreadRequests * 100).toFixed(0)}%`,
          r.ok ? 'ok' : 'MISMATCH',
        ]),
      )
    : '';
  const head = headline(report);
  const met = report.targets.filter((t) => t.met).length;
  const made = report.build
    ? `tsvisor ${esc(report.build.version)}${report.build.commit ? `, commit ${esc(report.build.commit)}` : ''}`
    : 'tsvisor (version not recorded in this report)';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tsvisor bench io — ${esc(report.startedAt)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}td:first-child,td:nth-child(2),th{text-align:left}th{background:#f3f3f3}
figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}svg .g{font-size:11px}svg .v{font-size:10px;fill:#333}svg .t{stroke:#e5e5e5}.note{color:#555}.lead{font-size:16px;max-width:1100px}section{margin-top:28px}</style></head><body>
<h1>Emulated IDE vs synthetic SCSI on one VM</h1>
${head ? `<p class="lead">${esc(head.sentences[0])}</p><p class="lead">${esc(head.sentences[1])}</p>` : '<p class="lead">No emulated row was measured in this run, so there is no speedup to state.</p>'}
<section><h2>Targets: ${met} of ${report.targets.length} met</h2>${targets}</section>
<p>${made}. ${report.quick ? 'Quick run' : 'Full run'}, ${esc(report.startedAt)} → ${esc(report.finishedAt)}. Machine: ${esc(m.cpuModel)}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${esc(m.node)} (${esc(m.platform)} ${esc(m.release)}); load average ${m.loadAverageStart.map((x) => x.toFixed(2)).join('/')} at start, ${m.loadAverageEnd.map((x) => x.toFixed(2)).join('/')} at end; idle cores just before the run ${m.idleCoresStart?.toFixed(2) ?? 'not measured'}, just after ${m.idleCoresEnd?.toFixed(2) ?? 'not measured'}.</p>
<p>VM: 1 VP, ${report.config.vmMemoryBytes >> 20} MiB. Disks: two raw files of ${report.config.diskBytes >> 20} MiB with the same content — IDE primary master, SCSI LUN 0. Device thread and VP wait: spin ${report.config.spinIterations}, then sleep. ${esc(report.config.eoi)}. ATA MULTIPLE block ${report.config.ataMultiple} sectors; storvsc request ≤ ${report.config.storvscMaxSectors} sectors.</p>
<p>Data integrity: ${report.integrity.phasesOk}/${report.integrity.phases} phase checksums match; whole disks ${report.integrity.disks.map((d) => `${esc(d.file.split('/').pop()!)}: ${d.mismatched} of ${d.sectors} sectors differ`).join(', ')} — <b>${report.integrity.ok ? 'OK' : 'FAILED'}</b>.</p>
<section><h2>Throughput</h2>${barChart('Throughput per workload, each path and the backend alone', 'MB/s', throughput)}</section>
<section><h2>Speedup of synthetic over each emulated mode</h2>${barChart("storvsc MB/s over the emulated mode's (below 1: the emulated mode was faster in this run)", '×', speedup)}</section>
<section><h2>Exits per I/O — measured beside the protocol's count</h2>${barChart('Exits per I/O (clock reads excluded)', 'exits', exits)}</section>
<section><h2>Latency</h2>${barChart('Latency per I/O, p50 and p99', 'µs', latency)}</section>
<section><h2>Host CPU per I/O</h2>${barChart('Host CPU time per I/O, every thread (spinning included)', 'µs', cpu)}</section>
<section><h2>All figures</h2>${main}<p class="note">exits/IO excludes the guest's reference-time MSR reads (clock reads/IO) and the closing POST marker. sig→host: HvCallSignalEvent; sig→guest: SIEF events set by the host. storvsc ×: the storvsc row's MB/s over this row's (at QD32 against ATA at QD1: it cannot queue).</p></section>
<section><h2>Limits in this run</h2>${limits}<h3>Emulated: exit-bound model against measurement</h3>${explain}</section>
<section><h2>Synthetic: what each I/O costs</h2><p class="note">halts/IO: the guest ran out of work and halted (a wake-up on its side); dev sleeps/IO: the device thread ran out of its spin and slept (a wake-up on the host side).</p>${synCost}
<h3>Where a synthetic I/O's time goes</h3><p class="note">storvsp = its request batches on the device thread, of which SCSI+backend = the SCSI target and the pread/pwrite into guest memory; device thread asleep = on its doorbell, wake-up included; the rest of p50 is the guest, the signals and the VP's halt.</p>${synSplit}</section>
${report.queues ? `<section><h2>Several queues: 4 KiB random read QD32</h2><p class="note">The same reads on one storvsc queue (VP 0), on two queues from two VPs with the sub-channel served by the device thread, and with it served by a queue thread of its own (subChannelThreads=${esc(report.queues.setting)}); every count per I/O, CPU for the whole worker.</p>${queues}</section>` : ''}
${report.network.status === 'measured' ? renderNetSection(report.network.report) : `<section><h2>Network</h2><p><b>${esc(report.network.note)}</b></p></section>`}
${report.linux ? `<section><h2>Linux: ata_piix and hv_storvsc</h2><pre>${esc(formatLinuxSection(report.linux))}</pre></section>` : ''}
<section><h2>Notes</h2><ul>${report.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></section>
</body></html>
`;
}
