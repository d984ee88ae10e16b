/**
 * `tsvisor bench net`: two VMs on one private switch, through the emulated NE2000 and through the
 * synthetic netvsc — frames/s at 64-byte frames, Mbit/s at 1514-byte frames, ping-pong latency,
 * exits, interrupts, signals and CPU per frame — beside the same-run limit of the frame path
 * between two processes without any VM (bench/net/frame-path.ts).
 * Usage: npx tsx bench/net.ts [--quick] [--json FILE] [--html FILE]   (or: tsvisor bench net)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vmms } from '../root-partition/vmms/vmms.ts';
import { createProcessLogger } from '../root-partition/host/log.ts';
import { buildGuests } from '../scripts/build-guests.ts';
import { measureFramePath, type NetBenchRow } from './net/frame-path.ts';
import { measureMultiQueue, MULTI_QUEUE_VPS, type NetQueueRow } from './net/multi-queue.ts';
import { startPair } from './net/vm-pair.ts';
import { measureLatency, measureStream, type NetLatencyRow, type NetVmRow } from './net/vm-rows.ts';
import { formatNetBench } from './net/format.ts';

export { formatNetBench };

export type { NetBenchRow, NetLatencyRow, NetQueueRow, NetVmRow };

export interface NetBenchReport {
  schema: 'tsvisor.bench.net/1';
  startedAt: string;
  /** Wall time of the whole run, s. */
  seconds: number;
  quick: boolean;
  scale: NetBenchScale;
  machine: { cpuModel: string; cores: number; node: string; loadAverageStart: number[] };
  streams: NetVmRow[];
  latency: NetLatencyRow[];
  /** The synthetic NIC with one channel and with one per VP, side by side (bench/net/multi-queue.ts). */
  multiQueue: NetQueueRow[];
  /** Synthetic frames/s over emulated, per frame size. */
  speedup: { frameBytes: number; syntheticOverEmulated: number }[];
  /** The frame path between two processes without a VM, direct and through a switch (same run). */
  limits: NetBenchRow[];
  notes: string[];
}

export type NetBenchScale = 'full' | 'quick' | 'main' | 'tiny';

export interface NetBenchOptions {
  /** quick: `--quick`; main: the main job's network section (`bench io`); tiny: the smallest run that still boots the VMs (the structural test). */
  scale?: NetBenchScale;
  /** Told of each step as it starts, with the seconds since the run began (progress on stderr). */
  onStep?: (step: string, elapsedS: number) => void;
}

/** Frame sizes both NIC kinds are measured at (and compared). */
export const FRAME_SIZES = [60, 1514] as const;
/** The jumbo row: netvsc only (MTU 9000 on synthetic ports; the NE2000 stays at 1500). */
export const JUMBO_FRAME = 9014;

/** Datagrams per stream (the NE2000 path is far slower, so it gets fewer), pings, frames of the process path. */
const SCALES: Record<NetBenchScale, { emulated: number; synthetic: number; pings: number; framePath: number }> = {
  full: { emulated: 20_000, synthetic: 200_000, pings: 1000, framePath: 500_000 },
  quick: { emulated: 1000, synthetic: 10_000, pings: 100, framePath: 50_000 },
  main: { emulated: 500, synthetic: 5000, pings: 50, framePath: 20_000 },
  tiny: { emulated: 200, synthetic: 2000, pings: 20, framePath: 5000 },
};

export async function runNetBench(o: NetBenchOptions = {}): Promise<NetBenchReport> {
  const scale = SCALES[o.scale ?? 'full'];
  const quick = o.scale !== undefined && o.scale !== 'full';
  const started = performance.now();
  const step = (name: string) => o.onStep?.(name, (performance.now() - started) / 1000);
  const startedAt = new Date().toISOString();
  const loadAverageStart = os.loadavg();
  await buildGuests(['ref-emulated', 'ref-enlightened']);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-bench-net-'));
  const vmms = await Vmms.open({ dataDir, logger: createProcessLogger({ dataDir, process: 'vmms', terminal: false }), workerStartTimeoutMs: 60_000 });
  const streams: NetVmRow[] = [];
  const latency: NetLatencyRow[] = [];
  let multiQueue: NetQueueRow[] = [];
  try {
    await vmms.switches.create({ name: 'bench', type: 'private' });
    const sw = vmms.switches.live('bench');
    if (!sw) throw new Error('the bench switch is not served');
    for (const [i, kind] of (['emulated', 'synthetic'] as const).entries()) {
      step(`${kind} VMs`);
      const [a, b] = await startPair(vmms, kind, 'bench', i + 1);
      try {
        step(`${kind} latency`);
        latency.push(await measureLatency(sw, kind, a, b, scale.pings));
        for (const size of kind === 'synthetic' ? [...FRAME_SIZES, JUMBO_FRAME] : FRAME_SIZES) {
          step(`${kind} stream ${size} B`);
          streams.push(await measureStream(sw, kind, a, b, size, scale[kind]));
        }
      } finally {
        for (const vm of [a, b]) await vmms.turnOff(vm.name);
      }
    }
    step(`synthetic, 1 queue and ${MULTI_QUEUE_VPS} queues`);
    multiQueue = await measureMultiQueue(vmms, sw, 'bench', MULTI_QUEUE_VPS, scale.synthetic);
  } finally {
    await vmms.close({ stopVms: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  step('frame path without VMs');
  const limits = await measureFramePath(scale.framePath);
  step('done');
  const speedup = FRAME_SIZES.map((frameBytes) => {
    const e = streams.find((r) => r.kind === 'emulated' && r.frameBytes === frameBytes)!;
    const s = streams.find((r) => r.kind === 'synthetic' && r.frameBytes === frameBytes)!;
    return { frameBytes, syntheticOverEmulated: s.framesPerSecond / e.framesPerSecond };
  });
  return {
    schema: 'tsvisor.bench.net/1',
    startedAt,
    seconds: (performance.now() - started) / 1000,
    quick,
    scale: o.scale ?? 'full',
    machine: { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, loadAverageStart },
    streams,
    latency,
    multiQueue,
    speedup,
    limits,
    notes: [
      "Two VMs (1 VP, 32 MiB) per NIC kind on one private switch that VMMS owns, each VM in its own worker process: every frame crosses the sender's worker, the switch's Unix socket into VMMS, and the receiver's worker.",
      "Streams: the sender's guest (`blast`) sends UDP datagrams to the receiver's discard port as fast as its NIC takes them; the rate is what the receiver's stack counted, over the time from the first datagram entering the switch to the reply of a fence ping queued behind the last one. Datagrams the receiver had no room for are lost (UDP has no flow control) and shown as lost.",
      'Frame sizes leave out the 4-byte FCS: 60 is a minimum (64-byte) Ethernet frame, 1514 a full 1500-byte payload, 9014 a jumbo frame (9000-byte payload) on netvsc only: its guests agree MTU 9000 with the host, and a frame too large for a 6144-byte send section goes by GPA direct; the NE2000 stays at 1500. Mbit/s counts the Ethernet payload.',
      "Latency: one ping at a time, timed on the wire at the switch from one echo request to the next (a round trip plus the sender's turn to send again); the guests print nothing per ping.",
      `Multi-queue: two more pairs of synthetic VMs with ${MULTI_QUEUE_VPS} VPs each, one with maxChannels 1 on its adapters (SUBCHANNEL refused: one queue), one with maxChannels ${MULTI_QUEUE_VPS} (the guest opens a sub-channel per extra VP and sets RSS); the sender cycles through 16 UDP source ports so the receiver's RSS has flows to spread. The reference guest serves every channel from one VP, and one worker thread delivers to all of them, so more queues add rings to poll and signals rather than parallel work: on a small, shared machine the gain is nil or negative, and the row says which.`,
      "Exits leave out the reference-time MSR reads (netvsc's wait step polls the clock), shown apart as clock reads; signals are SignalEvent hypercalls plus SynIC events the host set. CPU is every thread of both workers and of this process (VMMS with the switch), from /proc in 10 ms ticks.",
    ],
  };
}

/** `tsvisor bench net` and `npx tsx bench/net.ts`. */
export async function netBenchMain(o: { quick?: boolean; json?: string; html?: string }): Promise<void> {
  const report = await runNetBench({ scale: o.quick ? 'quick' : 'full', onStep: (step, t) => console.error(`bench net: ${t.toFixed(1)} s: ${step}`) });
  console.log(formatNetBench(report));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  const { renderNetHtmlPage } = await import('./net/html.ts');
  const html = o.html ?? (o.json ? o.json.replace(/\.json$/i, '') + '.html' : path.join(import.meta.dirname, '..', 'build', 'bench-net.html'));
  fs.mkdirSync(path.dirname(html), { recursive: true });
  fs.writeFileSync(html, renderNetHtmlPage(report));
  console.log(`\nHTML report: ${html}${o.json ? `\nJSON: ${o.json}` : ''}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const at = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  await netBenchMain({ quick: args.includes('--quick'), json: at('--json'), html: at('--html') });
}
