/**
 * The main job: emulated IDE (ATA PIO per word, PIO string, PIO MULTIPLE, DMA) against synthetic
 * SCSI (storvsc over VMBus) on one VM, side by side in one run, with the same-run limits (copy,
 * backend alone, exit round trip) that say how close each path comes and why it stops there.
 * Usage: npx tsx bench/io.ts [--quick] [--paths storvsc,dma] [--queue-min-bytes N|off] [--sub-channel-threads on|off|auto] [--no-queues] [--json FILE] [--html FILE] [--linux|--no-linux]   (or: tsvisor bench io)
 */
import { buildIdentity, type BuildIdentity } from './io/build-identity.ts';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import {
  measureBackends,
  measureCopyRounds,
  measureExits,
  measureFirstTouch,
  type BackendLimit,
  type CopyLimit,
  type ExitLimit,
  type FirstTouchLimit,
} from './io/limits.ts';
import type { PrefaultResult } from '../hypervisor/guest-memory-prefault.ts';
import { defaultWaitPolicy } from '../hypervisor/adaptive-wait.ts';
import { buildPhases, PATHS, WORKLOADS } from './io/plan.ts';
import { buildRows, checkPhase, checkWholeDisk, evaluateTargets, type IoRow, type Target } from './io/report.ts';
import { makeDisks, runVm } from './io/vm-run.ts';
import { measureVhdxRows } from './io/vhdx-row.ts';
import { runNetBench, type NetBenchReport } from './net.ts';
import { measureLinux, type LinuxSection } from './io/linux-section.ts';
import { measureQueues, type QueueSection } from './io/queues.ts';
import type { SubChannelThreadsSetting } from '../root-partition/vsp/storvsp/storvsp-queue-threads.ts';

export const LINUX_NOT_MEASURED =
  'not measured: a full run measures it unless --no-linux; --quick adds it with --linux (one boot of the Linux guest: about 20 s on an idle 2-core machine, minutes on a loaded one)';

export const NETWORK_NOT_MEASURED = 'network: not measured in the smallest (structural) run; `tsvisor bench net` measures it';

/** The main job's network section: a small `bench net` run (bench/net.ts), or why there is none. */
export type NetworkSection = { status: 'measured'; note: string; report: NetBenchReport } | { status: 'not measured' | 'failed'; note: string };

/** Runs the network part of the main job; a failure is reported in the section, not thrown. */
async function measureNetwork(onStep?: (step: string) => void): Promise<NetworkSection> {
  try {
    const report = await runNetBench({ scale: 'main', onStep: (s) => onStep?.(s) });
    return {
      status: 'measured',
      note: `network: two VMs on one switch per NIC kind, a small run of bench net that took ${report.seconds.toFixed(1)} s (tsvisor bench net for the full one)`,
      report,
    };
  } catch (e) {
    return { status: 'failed', note: `network: the run failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  platform: string;
  release: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  /**
   * Idle cores measured from /proc/stat over 0.5 s just before the run and just after it (null
   * off Linux). The load average lags by a minute and counts this run's own threads; this does not.
   */
  idleCoresStart: number | null;
  idleCoresEnd: number | null;
}

/** Cores idle over `ms`, from the aggregate `cpu` line of /proc/stat (idle + iowait over total). */
async function idleCores(ms: number): Promise<number | null> {
  const sample = () => {
    const line = fs
      .readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('cpu '));
    const v = line!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: v[3]! + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = sample();
    await new Promise((r) => setTimeout(r, ms));
    const b = sample();
    return ((b.idle - a.idle) / Math.max(1, b.total - a.total)) * os.cpus().length;
  } catch {
    return null;
  }
}

export interface IoBenchReport {
  schema: 'tsvisor.bench.io/1';
  /** The tsvisor that ran it (absent in reports written before it was recorded). */
  build?: BuildIdentity;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  machine: MachineDescription;
  config: {
    rounds: number;
    diskBytes: number;
    vmMemoryBytes: number;
    vpCount: number;
    spinIterations: number;
    maxSpinIterations: number;
    storvspPollSpinMicros: string;
    ataMultiple: number;
    storvscMaxSectors: number;
    eoi: string;
  };
  rows: IoRow[];
  limits: { copy: CopyLimit[]; backend: BackendLimit[]; exit: ExitLimit; memory?: { prefault: PrefaultResult; firstTouch: FirstTouchLimit } };
  integrity: { phasesOk: number; phases: number; warmupsOk: number; warmups: number; disks: ReturnType<typeof checkWholeDisk>[]; ok: boolean };
  targets: Target[];
  network: NetworkSection;
  /** QD32 on one storvsc queue against two queues from two VPs, on the device thread and on a queue thread (absent: not run). */
  queues?: QueueSection;
  /** The same unmodified Linux kernel through ata_piix and hv_storvsc (absent in reports written before it existed). */
  linux?: LinuxSection;
  notes: string[];
}

export interface IoBenchOptions {
  quick?: boolean;
  /** Show the progress bar (on stderr); default when stderr is a terminal. */
  progress?: boolean;
  /** Smallest possible run (the structural test): a few I/Os per phase. */
  tiny?: boolean;
  /** Told of each step as it completes (the web console's progress bar): steps done, of how many, and the next. */
  onStep?: (done: number, total: number, next: string) => void;
  /** Only these storage paths (ids of PATHS, e.g. ['storvsc']): quicker A/B runs of one path. */
  paths?: readonly string[];
  /** The network section (a small bench net run, two VMs per NIC kind); on unless tiny or paths is given. */
  network?: boolean;
  /** The Linux section (one boot of the Linux guest with both disks): absent, in a full run only (it takes longer than the rest of a quick run); true or false, as told. */
  linux?: boolean;
  /** storvsp's queueMinBytes for the run (null: nothing queued; absent: the default): A/B runs of the queued path. */
  queueMinBytes?: number | null;
  /** The several-queues section (three VMs of two VPs); on unless paths leaves storvsc out. */
  queues?: boolean;
  /** subChannelThreads of that section's queue-thread row (default 'on': measured whatever the host's cores). */
  subChannelThreads?: SubChannelThreadsSetting;
}

export async function runIoBench(opts: IoBenchOptions = {}): Promise<IoBenchReport> {
  const quick = Boolean(opts.quick || opts.tiny);
  const startedAt = new Date().toISOString();
  const loadAverageStart = os.loadavg();
  const idleCoresStart = opts.tiny ? null : await idleCores(500);
  const rounds = quick ? 1 : 3;
  let phases = buildPhases(quick, rounds);
  if (opts.tiny) phases = phases.map((p) => ({ ...p, count: Math.min(p.count, p.path.id === 'pio-word' ? 2 : 8) }));
  if (opts.paths) phases = phases.filter((p) => opts.paths!.includes(p.path.id)).map((p, index) => ({ ...p, index }));
  const diskBytes = (opts.tiny ? 4 : quick ? 16 : 64) << 20;
  const spinIterations = 2000;
  // The adaptive ceiling follows TSVISOR_SPIN_MAX (0 = the fixed spin), so both can be compared.
  const maxSpinIterations = defaultWaitPolicy().maxSpinIterations ?? 0;
  const bar = new cliProgress.SingleBar(
    { format: 'bench io [{bar}] {value}/{total} {step}', stream: process.stderr, noTTYOutput: false, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const showBar = opts.progress ?? Boolean(process.stderr.isTTY);
  const vhdx = phases.some((p) => p.path.kind === 'synthetic');
  const network = !opts.tiny && !opts.paths && opts.network !== false;
  const linux = !opts.tiny && !opts.paths && (opts.linux ?? !quick);
  const queues = (opts.queues ?? true) && (!opts.paths || opts.paths.includes('storvsc'));
  const steps = 3 + phases.length + 1 + (vhdx ? 1 : 0) + (queues ? 1 : 0) + (network ? 1 : 0) + (linux ? 1 : 0);
  if (showBar) bar.start(steps, 0, { step: 'disks' });
  let done = 0;
  const step = (name: string) => {
    opts.onStep?.(++done, steps, name);
    if (showBar) bar.increment({ step: name });
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-bench-io-'));
  try {
    const { ideFile, scsiFile, content } = makeDisks(dir, diskBytes, (b) => randomFillSync(b));
    const scratch = path.join(dir, 'backend-scratch.raw');
    fs.writeFileSync(scratch, content);
    step('copy limit');
    const copy = measureCopyRounds(content, [4096, 65536, 1 << 20], quick ? 60 : 200, rounds);
    step('backend alone');
    const backend = measureBackends(scsiFile, scratch, phases, diskBytes / 512, rounds);
    // Before the VM: a fresh buffer the size of the VM's memory, as its memory is before backing.
    const firstTouch = measureFirstTouch(scsiFile, opts.tiny ? 4 << 20 : 64 << 20);
    step('VM');
    const vm = await runVm({
      ideFile,
      scsiFile,
      phases,
      spinIterations,
      maxSpinIterations,
      queueMinBytes: opts.queueMinBytes,
      timeoutMs: quick ? 120_000 : 900_000,
      onPhaseDone: (i) => step(`${phases[i + 1]?.path.id ?? 'done'} ${phases[i + 1]?.workload.id ?? ''}`),
    });
    const exit = await measureExits(quick);
    step('exit round trip');
    // storvsc again on a dynamic VHDX of the same content (read the IDE file before this VM runs).
    const ideBeforeVhdx = fs.readFileSync(ideFile);
    const vhdxRows = vhdx
      ? await measureVhdxRows(dir, content, phases, ideFile, backend, exit, {
          spinIterations,
          maxSpinIterations,
          queueMinBytes: opts.queueMinBytes,
          timeoutMs: quick ? 120_000 : 900_000,
        })
      : { rows: [], warmups: 0, warmupsOk: 0 };
    if (vhdx) step('storvsc on VHDX');
    let queueSection: QueueSection | undefined;
    if (queues) {
      // A disk of its own with the original content (the main VM wrote into its SCSI file).
      const queueFile = path.join(dir, 'queues.raw');
      fs.writeFileSync(queueFile, content);
      queueSection = await measureQueues({
        scsiFile: queueFile,
        ideFile,
        content,
        quick,
        spinIterations,
        maxSpinIterations,
        setting: opts.subChannelThreads ?? 'on',
        timeoutMs: quick ? 120_000 : 900_000,
        ...(opts.tiny ? { only: ['two-queues-queue-thread' as const], count: 2048 } : {}),
      });
      step('several queues');
    }
    const networkSection: NetworkSection = network
      ? await measureNetwork((s) => {
          if (showBar) bar.update({ step: `network: ${s}` });
        })
      : { status: 'not measured', note: NETWORK_NOT_MEASURED };
    if (network) step('network');
    const linuxSection: LinuxSection = linux ? await measureLinux() : { status: 'skipped', note: LINUX_NOT_MEASURED };
    if (linux) step('linux');
    const writes = phases.filter((p) => p.workload.write);
    const ideFinal = ideBeforeVhdx,
      scsiFinal = fs.readFileSync(scsiFile);
    const rows = [...buildRows(vm, content, new Uint8Array(scsiFinal), new Uint8Array(ideFinal), backend, exit), ...vhdxRows.rows];
    const disks = [
      checkWholeDisk(
        ideFile,
        content,
        writes.filter((p) => p.path.kind === 'emulated'),
      ),
      checkWholeDisk(
        scsiFile,
        content,
        writes.filter((p) => p.path.kind === 'synthetic'),
      ),
    ];
    const loadAverageEnd = os.loadavg();
    const idleCoresEnd = opts.tiny ? null : await idleCores(500);
    const cores = os.cpus().length;
    // The VP and the device thread each want a core while they spin: "a core is free" means the
    // rest of the machine left at least one idle next to the one this process starts on.
    const coreFree = idleCoresStart !== null ? idleCoresStart >= 1 : loadAverageStart[0]! < cores - 1;
    const phasesOk = rows.filter((r) => r.checksum.ok).length;
    // Warm-up phases are not reported, but what they read is checked like the rest.
    const warmups = vm.phases.filter((m) => m.phase.warmup);
    const warmupsOk = warmups.filter((m) => checkPhase(m, content, diskBytes / 512).ok).length + vhdxRows.warmupsOk;
    return {
      schema: 'tsvisor.bench.io/1',
      build: buildIdentity(),
      startedAt,
      finishedAt: new Date().toISOString(),
      quick,
      machine: {
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        cores,
        memoryBytes: os.totalmem(),
        node: process.version,
        platform: os.platform(),
        release: os.release(),
        loadAverageStart,
        loadAverageEnd,
        idleCoresStart,
        idleCoresEnd,
      },
      config: {
        rounds,
        diskBytes,
        vmMemoryBytes: vm.memoryBytes,
        vpCount: 1,
        spinIterations,
        maxSpinIterations,
        storvspPollSpinMicros: 'default (50 µs window)',
        ataMultiple: vm.values.ata_multiple ?? 0,
        storvscMaxSectors: vm.values.storvsc_max_sectors ?? 0,
        eoi: '8259 EOI from the guest (2 OUTs per IRQ 14), as an unenlightened OS does',
      },
      rows,
      limits: { copy, backend, exit, memory: { prefault: vm.prefault, firstTouch } },
      integrity: {
        phasesOk,
        phases: rows.length,
        warmupsOk,
        warmups: warmups.length + vhdxRows.warmups,
        disks,
        ok: phasesOk === rows.length && warmupsOk === warmups.length + vhdxRows.warmups && disks.every((d) => d.mismatched === 0),
      },
      targets: evaluateTargets(rows, backend, exit, coreFree),
      network: networkSection,
      ...(queueSection ? { queues: queueSection } : {}),
      linux: linuxSection,
      notes: [
        `Machine shared: load average ${loadAverageStart.map((l) => l.toFixed(2)).join('/')} at start, ${loadAverageEnd.map((l) => l.toFixed(2)).join('/')} at end on ${cores} cores; idle cores ${idleCoresStart?.toFixed(2) ?? 'not measured'} just before the run, ${idleCoresEnd?.toFixed(2) ?? 'not measured'} just after. Exit costs and signals depend on whether a core is free (a round trip at its fastest has the VP and the device thread each spinning on a core); on a busy machine the figures are noisy and the adaptive wait degrades toward the blocking one.`,
        "Every page of the VM's memory is backed before its VP starts (prefault; a VMWP does it behind the running guest), so quick and full runs alike measure warm buffers; the first-touch cost is its own figure under Limits. Before the measured phases every path also runs a short unreported warm-up (sequential 4 KiB reads) for JIT tiering.",
        `Every measured phase runs ${rounds} time(s), interleaved with the others; a row is its median round by MB/s, with all its counters from that same round, and MB/s of every round beside it.`,
        `The guest's storvsc polls its completion ring (interrupt_mask set, so the host need not signal) before it halts, adaptively between 2,000 and 65,536 loads: over the whole run the poll found the completion ${vm.values.storvsc_poll_hits ?? 0} times and ran out ${vm.values.storvsc_poll_misses ?? 0} times (ending at ${vm.values.storvsc_poll_spins ?? 0} loads).`,
        'Per-word PIO runs 4 KiB I/Os only, and few of them: each costs ≈ 2,080 exits.',
        'ATA cannot queue (one command per channel): its QD32 workloads are its QD1 phases; the speedup at QD32 compares storvsc at QD32 with ATA at QD1.',
        'A 1 MiB I/O is 8 ATA commands of 256 sectors, or 4 storvsc requests of 256 KiB submitted in one batch.',
        'Writes are not flushed (no FLUSH CACHE / SYNCHRONIZE CACHE): both paths and the backend-alone limit write into the page cache alike.',
        "Latencies are timed by the guest with the reference-time MSR (100 ns); at QD32 an I/O is timed from its batch's submit to the poll that reaped it. Those clock reads are MSR exits, shown as clock reads per I/O and left out of the exit counts.",
        'The "dynamic VHDX" rows run the storvsc phases again in the same run, on a second VM whose disk is a dynamic VHDX (8 MiB blocks) holding the same random content: every block is allocated beforehand, so they show the format\'s steady-state cost (BAT lookup, block splits), not the growth of a fresh disk.',
        'Checksums sample 2 × 8 bytes of every sector (cheap enough not to distort timing); the whole-disk check compares every byte of both files with what they must hold.',
      ],
    };
  } finally {
    if (showBar) bar.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export { PATHS, WORKLOADS };

/** Writes the JSON (if asked) and the HTML report (next to the JSON, or build/bench-io.html); returns the HTML path. */
export async function writeIoBenchOutputs(report: IoBenchReport, out: { json?: string; html?: string }): Promise<string> {
  const { renderHtml } = await import('./io/html.ts');
  if (out.json) fs.writeFileSync(out.json, JSON.stringify(report, null, 2) + '\n');
  const html = out.html ?? (out.json ? out.json.replace(/\.json$/i, '') + '.html' : path.join(import.meta.dirname, '..', 'build', 'bench-io.html'));
  fs.mkdirSync(path.dirname(html), { recursive: true });
  fs.writeFileSync(html, renderHtml(report));
  return html;
}

/** `--sub-channel-threads` as given: auto, on or off. */
export function subChannelThreadsSetting(value: string): SubChannelThreadsSetting {
  if (value === 'auto' || value === 'on' || value === 'off') return value;
  throw new Error(`--sub-channel-threads takes auto, on or off, not ${value}`);
}

/** `tsvisor bench io` and `npx tsx bench/io.ts`: table on stdout, progress on stderr. */
export async function ioBenchMain(opts: {
  quick?: boolean;
  json?: string;
  html?: string;
  from?: string;
  paths?: string[];
  linux?: boolean;
  queueMinBytes?: number | null;
  queues?: boolean;
  subChannelThreads?: SubChannelThreadsSetting;
}): Promise<void> {
  const { formatReport } = await import('./io/format.ts');
  // --from: a saved run (e.g. bench/results/reference.json) shown again, nothing measured.
  const report: IoBenchReport = opts.from
    ? JSON.parse(fs.readFileSync(opts.from, 'utf8'))
    : await runIoBench({
        quick: opts.quick,
        paths: opts.paths,
        linux: opts.linux,
        ...(opts.queueMinBytes !== undefined ? { queueMinBytes: opts.queueMinBytes } : {}),
        ...(opts.queues !== undefined ? { queues: opts.queues } : {}),
        ...(opts.subChannelThreads ? { subChannelThreads: opts.subChannelThreads } : {}),
      });
  console.log(formatReport(report));
  const html = await writeIoBenchOutputs(report, opts);
  console.log(`\nHTML report: ${html}${opts.json ? `\nJSON: ${opts.json}` : ''}`);
  if (!report.integrity.ok || (report.linux?.status === 'measured' && !report.linux.integrity.ok)) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const queue = arg('--queue-min-bytes');
  const threads = arg('--sub-channel-threads');
  await ioBenchMain({
    quick: args.includes('--quick'),
    json: arg('--json'),
    html: arg('--html'),
    from: arg('--from'),
    paths: arg('--paths')?.split(','),
    ...(args.includes('--linux') ? { linux: true } : args.includes('--no-linux') ? { linux: false } : {}),
    ...(queue !== undefined ? { queueMinBytes: queue === 'off' ? null : Number(queue) } : {}),
    ...(args.includes('--no-queues') ? { queues: false } : {}),
    ...(threads !== undefined ? { subChannelThreads: subChannelThreadsSetting(threads) } : {}),
  });
}
