/**
 * The VM part of the I/O benchmark: one partition with one VP, an emulated IDE disk (primary
 * master) and a synthetic SCSI disk on two raw files of the same size and content, served by the
 * VMWP device thread with its adaptive wait. The bench-io guest runs every phase; the POST-code
 * port gives the counters at each phase boundary; the guest's records and latencies are read
 * from guest memory once it halts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { prefaultNow, type PrefaultResult } from '../../hypervisor/guest-memory-prefault.ts';
import type { PostCodeSnapshot } from '../../root-partition/vmwp/device-thread.ts';
import { DeviceThread } from '../../root-partition/vmwp/device-thread.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { guestCommandLine, type Phase } from './plan.ts';

const POST_PHASE_BEGIN = 0x1000;
const POST_PHASE_END = 0x2000;
const RECORD_BYTES = 64;
export const SCSI_INSTANCE_ID = 'b3c1e7a0-10b5-4e55-9a1e-000000000b10';

export interface PhaseMeasurement {
  phase: Phase;
  /** Guest reference times (100 ns) after the begin marker and before the end marker. */
  t0: number;
  t1: number;
  done: number;
  errors: number;
  checksum: number;
  maxInFlight: number;
  /** Per-I/O latency, 100 ns units, in completion order. */
  latencies: Uint32Array;
  begin: PostCodeSnapshot;
  end: PostCodeSnapshot;
}

export interface VmRunResult {
  phases: PhaseMeasurement[];
  values: Record<string, number>;
  console: string;
  vpExit: string;
  vpCount: number;
  deviceThread: Record<string, unknown> | null;
  spinIterations: number;
  memoryBytes: number;
  /** Backing the VM's memory before its VP started (what a VMWP does in the background at start). */
  prefault: PrefaultResult;
}

export interface VmRunOptions {
  ideFile: string;
  scsiFile: string;
  phases: Phase[];
  spinIterations: number;
  /** Adaptive spin ceiling for every wait of the VM (adaptive-wait.ts); 0 = fixed spin. */
  maxSpinIterations: number;
  /** storvsp's queueMinBytes (null: nothing queued; absent: the default). */
  queueMinBytes?: number | null;
  /** VPs of the VM (default 1; the two-queue path needs 2). */
  vpCount?: number;
  /** storvsp's sub-channels (default 0) and whether each is served on a queue thread (default: storvsp's 'auto'). */
  maxSubChannels?: number;
  subChannelThreads?: 'auto' | 'on' | 'off';
  /** Called after each phase's end marker (progress). */
  onPhaseDone?: (index: number) => void;
  timeoutMs: number;
}

function parseValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(-?\d+)$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export async function runVm(opts: VmRunOptions): Promise<VmRunResult> {
  await buildGuests(['bench-io']);
  const memoryBytes = 64 << 20;
  const hv = new Hypervisor();
  let dt: DeviceThread | undefined;
  try {
    const p = hv.createPartition({
      memoryBytes,
      vpCount: opts.vpCount ?? 1,
      waitPolicy: { spinIterations: opts.spinIterations, maxSpinIterations: opts.maxSpinIterations },
    });
    p.initialize();
    p.loadImage(fs.readFileSync(guestImagePath('bench-io')), guestCommandLine(opts.phases));
    let out = '';
    const snapshots = new Map<number, PostCodeSnapshot>();
    const logs: string[] = [];
    dt = await DeviceThread.start(p, {
      devices: {
        ide: [{ path: opts.ideFile }],
        scsi: [
          {
            instanceId: SCSI_INSTANCE_ID,
            disks: [{ path: opts.scsiFile }],
            ...(opts.queueMinBytes !== undefined ? { queueMinBytes: opts.queueMinBytes } : {}),
            ...(opts.maxSubChannels ? { maxSubChannels: opts.maxSubChannels } : {}),
            ...(opts.subChannelThreads ? { subChannelThreads: opts.subChannelThreads } : {}),
          },
        ],
        postCodes: true,
      },
      spinIterations: opts.spinIterations,
      console: (b) => (out += Buffer.from(b).toString('latin1')),
      log: (m) => logs.push(m),
      onPostCode: (s) => {
        snapshots.set(s.code, s);
        if (s.code >= POST_PHASE_END) opts.onPhaseDone?.(s.code - POST_PHASE_END);
      },
    });
    // Every page backed before the first phase, in quick runs as in full ones: no phase pays the
    // kernel's first-touch fault (measured on its own: limits.ts measureFirstTouch).
    const prefault = prefaultNow(p.mem);
    p.start();
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.timeoutMs).unref());
    const ended = await Promise.race([p.whenIdle().then(() => 'idle' as const), timer]);
    if (ended === 'timeout') await p.stop();
    const stats = await dt.stop();
    dt = undefined;
    const values = parseValues(out);
    const exit = p.vpExit(0);
    const vpCount = opts.vpCount ?? 1;
    if (ended === 'timeout') throw new Error(`the bench-io guest did not finish in ${opts.timeoutMs} ms; console:\n${out}`);
    if (values.phases_done !== opts.phases.length) {
      throw new Error(`the bench-io guest stopped early (${JSON.stringify(exit)}); console:\n${out}\n${logs.join('\n')}`);
    }
    const records = values.records_gpa!,
      lat = values.latencies_gpa!;
    let latIndex = 0;
    const phases = opts.phases.map((phase): PhaseMeasurement => {
      const r = records + phase.index * RECORD_BYTES;
      const u64 = (o: number) => Number(p.mem.readU64(r + o));
      const begin = snapshots.get(POST_PHASE_BEGIN + phase.index),
        end = snapshots.get(POST_PHASE_END + phase.index);
      if (!begin || !end) throw new Error(`phase ${phase.index}: POST markers missing`);
      const latencies = new Uint32Array(phase.count);
      latencies.set(new Uint32Array(p.mem.view(lat + latIndex * 4, phase.count * 4).slice().buffer));
      latIndex += phase.count;
      return { phase, t0: u64(0), t1: u64(8), done: u64(16), errors: u64(24), checksum: u64(32) >>> 0, maxInFlight: u64(48), latencies, begin, end };
    });
    return {
      phases,
      values,
      console: out,
      vpExit: exit?.reason ?? 'running',
      vpCount,
      deviceThread: stats as unknown as Record<string, unknown>,
      spinIterations: opts.spinIterations,
      memoryBytes,
      prefault,
    };
  } finally {
    await dt?.stop();
    await hv.shutdown();
  }
}

/** Two raw files of `bytes` with the same random content; returns that content for the checks. */
export function makeDisks(dir: string, bytes: number, fill: (b: Uint8Array) => void): { ideFile: string; scsiFile: string; content: Uint8Array } {
  const content = new Uint8Array(bytes);
  fill(content);
  const ideFile = path.join(dir, 'ide.raw'),
    scsiFile = path.join(dir, 'scsi.raw');
  fs.writeFileSync(ideFile, content);
  fs.writeFileSync(scsiFile, content);
  return { ideFile, scsiFile, content };
}
