// VMBus ring throughput: a producer thread and a consumer thread over one ring in a
// SharedArrayBuffer (payload copied into the ring and out again: an "inline" ring laid out
// like Linux's hv_ring_buffer), against a plain TypedArray.set of the same bytes on the
// same kind of memory in the same run (the copy limit). Not a test: run
//   npx tsx bench/ring.ts [--quick] [--rounds N] [--json FILE] [--spin-us N]
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { RingBenchRun, RingSideStats } from './ring-roles.ts';

export interface RingBenchOptions {
  quick?: boolean;
  /** Rounds over all sizes; each row is the round with the median throughput (default: 1 quick, 3 full). */
  rounds?: number;
  /** Spin budget in µs before a side sleeps (default 20, about 2,000 polls on this kind of VM). */
  spinMicros?: number;
}

export interface RingBenchRow {
  payloadBytes: number;
  packets: number;
  seconds: number;
  packetsPerSecond: number;
  /** Payload bytes moved per second, 1e9 bytes. */
  gbPerSecond: number;
  /** Same-run single-thread TypedArray.set of the same payloads, SAB to SAB. */
  copyGbPerSecond: number;
  ratioToCopy: number;
  /** Slowest and fastest round, payload GB/s (the cross-thread copy is bimodal on shared VMs). */
  gbPerSecondMin: number;
  gbPerSecondMax: number;
  producerSignalsPer1000: number;
  consumerSignalsPer1000: number;
  producerSleepsPer1000: number;
  consumerSleepsPer1000: number;
}

export interface RingBenchReport {
  node: string;
  cpu: string;
  cpus: number;
  quick: boolean;
  rounds: number;
  spinMicros: number;
  ringDataBytes: number;
  batchPackets: number;
  batchBytes: number;
  rows: RingBenchRow[];
  targets: { packetsPerSecond64B: boolean; ratio64KiB: boolean; signalsPer1000: boolean };
}

const SIZES = [64, 512, 4096, 65536];
const RING_DATA_BYTES = 1024 * 1024;
const CONTROL_GPA = 0x10000;
const MEMORY_BYTES = 4 * 1024 * 1024;
const BATCH = 64;
const BATCH_BYTES = 64 * 1024;
const DEFAULT_SPIN_MICROS = 20;
const COPY_REGION = 0x200000;

/** Packet counts: about 0.2–0.6 s per size on this machine (quick: about a quarter). */
function packetsFor(size: number, quick: boolean): number {
  const full = size <= 64 ? 3_000_000 : size <= 512 ? 1_500_000 : size <= 4096 ? 400_000 : 40_000;
  return quick ? Math.ceil(full / 4) : full;
}

function startWorker(role: 'producer' | 'consumer', workers: Worker[]): Promise<Worker> {
  const w = new Worker(fileURLToPath(new URL('./ring-worker.mjs', import.meta.url)), { workerData: { role } });
  workers.push(w);
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve(w));
    w.once('error', reject);
  });
}

function runOn(w: Worker, run: RingBenchRun): Promise<RingSideStats> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', (stats: RingSideStats) => {
      w.off('error', reject);
      resolve(stats);
    });
    w.postMessage(run);
  });
}

/** The limit: copy every payload once with TypedArray.set between two regions of one SAB. */
function measureCopy(u8: Uint8Array, size: number, packets: number): number {
  const slots = Math.max(1, Math.floor(RING_DATA_BYTES / size));
  const src = u8.subarray(COPY_REGION, COPY_REGION + size);
  const dsts = Array.from({ length: slots }, (_, i) => u8.subarray(COPY_REGION + RING_DATA_BYTES + i * size, COPY_REGION + RING_DATA_BYTES + (i + 1) * size));
  for (let i = 0; i < Math.min(packets, 10_000); i++) dsts[i % slots].set(src); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < packets; i++) dsts[i % slots].set(src);
  const seconds = (performance.now() - t0) / 1000;
  return (packets * size) / seconds / 1e9;
}

export async function runRingBench(opts: RingBenchOptions = {}): Promise<RingBenchReport> {
  const quick = opts.quick ?? false;
  const spinMicros = opts.spinMicros ?? DEFAULT_SPIN_MICROS;
  const pages = MEMORY_BYTES / 65536;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const u8 = new Uint8Array(memory.buffer);
  const i32 = new Int32Array(memory.buffer);
  const rounds = Math.max(1, opts.rounds ?? (quick ? 1 : 3));
  const workers: Worker[] = [];
  const measured: RingBenchRow[][] = SIZES.map(() => []);
  try {
    const [producer, consumer] = await Promise.all([startWorker('producer', workers), startWorker('consumer', workers)]);
    for (let round = 0; round < rounds; round++)
      for (const [sizeIndex, size] of SIZES.entries()) {
        const packets = packetsFor(size, quick);
        u8.fill(0, 0, CONTROL_GPA + 4096 + RING_DATA_BYTES);
        i32[(CONTROL_GPA + 64) / 4] = 1; // FEAT_PENDING_SEND_SZ, set by the producer at init
        const run: RingBenchRun = {
          memory,
          controlGpa: CONTROL_GPA,
          dataSize: RING_DATA_BYTES,
          dataBell: 0x100 / 4,
          spaceBell: 0x104 / 4,
          readyWord: 0x108 / 4,
          payloadBytes: size,
          packets,
          spinMicros,
          batch: BATCH,
          batchBytes: BATCH_BYTES,
        };
        const [p, c] = await Promise.all([runOn(producer, run), runOn(consumer, run)]);
        if (p.error || c.error) throw new Error(`ring bench ${size} B: ${p.error ?? c.error}`);
        const copyGbPerSecond = measureCopy(u8, size, packets);
        const seconds = Math.max(p.seconds, c.seconds);
        const gbPerSecond = (packets * size) / seconds / 1e9;
        measured[sizeIndex].push({
          payloadBytes: size,
          packets,
          seconds,
          packetsPerSecond: packets / seconds,
          gbPerSecond,
          copyGbPerSecond,
          ratioToCopy: gbPerSecond / copyGbPerSecond,
          gbPerSecondMin: gbPerSecond,
          gbPerSecondMax: gbPerSecond,
          producerSignalsPer1000: (p.signals * 1000) / packets,
          consumerSignalsPer1000: (c.signals * 1000) / packets,
          producerSleepsPer1000: (p.sleeps * 1000) / packets,
          consumerSleepsPer1000: (c.sleeps * 1000) / packets,
        });
      }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const rows = measured.map((runs) => {
    const sorted = [...runs].sort((a, b) => a.gbPerSecond - b.gbPerSecond);
    return { ...sorted[Math.floor((sorted.length - 1) / 2)], gbPerSecondMin: sorted[0].gbPerSecond, gbPerSecondMax: sorted[sorted.length - 1].gbPerSecond };
  });
  const row = (s: number) => rows.find((r) => r.payloadBytes === s)!;
  return {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    quick,
    rounds,
    spinMicros,
    ringDataBytes: RING_DATA_BYTES,
    batchPackets: BATCH,
    batchBytes: BATCH_BYTES,
    rows,
    targets: {
      packetsPerSecond64B: row(64).packetsPerSecond >= 3e6,
      ratio64KiB: row(65536).ratioToCopy >= 0.25,
      signalsPer1000: rows.every((r) => r.producerSignalsPer1000 + r.consumerSignalsPer1000 <= 5),
    },
  };
}

export function formatRingBench(report: RingBenchReport): string {
  const f = (n: number, d = 2) => n.toFixed(d);
  const lines = [
    `VMBus ring, producer thread → consumer thread, ${report.ringDataBytes / 1024} KiB data area, batches of ${report.batchPackets} packets or ${report.batchBytes / 1024} KiB, spin ${report.spinMicros} µs, ${report.cpus} × ${report.cpu}, Node ${report.node}${report.quick ? ' (quick)' : ''}`,
    `median of ${report.rounds} round(s); GB/s = payload bytes; copy = same-run TypedArray.set SAB→SAB of the same payloads`,
    'payload  packets/s   GB/s  (min–max)      copy GB/s  ratio  signals/1000 p→c  c→p   sleeps/1000 p  c',
  ];
  for (const r of report.rows) {
    lines.push(
      `${String(r.payloadBytes).padStart(7)}  ${(r.packetsPerSecond / 1e6).toFixed(2).padStart(6)} M  ${f(r.gbPerSecond).padStart(6)}  ${`(${f(r.gbPerSecondMin)}–${f(r.gbPerSecondMax)})`.padStart(13)}  ${f(r.copyGbPerSecond).padStart(8)}  ${f(r.ratioToCopy).padStart(5)}  ${f(r.producerSignalsPer1000, 3).padStart(15)}  ${f(r.consumerSignalsPer1000, 3).padStart(6)}  ${f(r.producerSleepsPer1000, 3).padStart(12)}  ${f(r.consumerSleepsPer1000, 3).padStart(6)}`,
    );
  }
  const t = report.targets;
  lines.push(
    `targets: ≥ 3 M packets/s at 64 B: ${t.packetsPerSecond64B ? 'met' : 'NOT met'}; 64 KiB ≥ 25% of copy: ${t.ratio64KiB ? 'met' : 'NOT met'}; ≤ 5 signals/1000: ${t.signalsPer1000 ? 'met' : 'NOT met'}`,
  );
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const spinAt = args.indexOf('--spin-us');
  const roundsAt = args.indexOf('--rounds');
  const report = await runRingBench({
    quick: args.includes('--quick'),
    rounds: roundsAt >= 0 ? Number(args[roundsAt + 1]) : undefined,
    spinMicros: spinAt >= 0 ? Number(args[spinAt + 1]) : undefined,
  });
  console.log(formatRingBench(report));
  const json = JSON.stringify(report, null, 2);
  if (jsonAt >= 0 && args[jsonAt + 1]) writeFileSync(args[jsonAt + 1], json + '\n');
  else console.log(json);
}
