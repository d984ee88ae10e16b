/**
 * Several storvsc queues, side by side in one run: the same 4 KiB random reads at QD32 on one
 * queue (VP 0, the primary channel), on two queues driven from two VPs with both served by the
 * device thread, and on two queues with the sub-channel served by a queue thread of its own
 * (storvsp-queue-threads.ts). Three VMs of two VPs each, on the SCSI file the main VM used (reads
 * only: its content is checked against the writes it holds). The counters are summed over both
 * VPs; CPU is the whole process's (every VMWP thread) per I/O.
 */
import * as os from 'node:os';
import type { PostCodeSnapshot } from '../../root-partition/vmwp/device-thread.ts';
import { subChannelThreadsEnabled, type SubChannelThreadsSetting } from '../../root-partition/vsp/storvsp/storvsp-queue-threads.ts';
import { count, PATHS, TWO_QUEUES_PATH, WORKLOADS, type Phase } from './plan.ts';
import { checkPhase } from './report.ts';
import { runVm, type PhaseMeasurement } from './vm-run.ts';

export interface QueueRow {
  id: 'one-queue' | 'two-queues-device-thread' | 'two-queues-queue-thread';
  label: string;
  /** Whether the sub-channel ran on a queue thread (the setting as resolved on this host). */
  queueThread: boolean;
  iops: number;
  p50Us: number;
  ok: boolean;
  perIo: {
    signalsToHost: number;
    signalsToGuest: number;
    interrupts: number;
    /** Interrupts on VP 1 (the sub-channel's target VP). */
    interruptsVp1: number;
    exits: number;
    halts: number;
    hostCpuUs: number;
    deviceThreadSleeps: number;
    queueThreadRequests: number;
    queueThreadSleeps: number;
  };
}

export interface QueueSection {
  setting: SubChannelThreadsSetting;
  rows: QueueRow[];
  /** The 1-minute load average after each VM's run. */
  loadAverage: number[];
}

const vpSum = (s: PostCodeSnapshot, name: string) => s.vps.reduce((a, v) => a + (v[name] ?? 0), 0);
const delta = (m: PhaseMeasurement, name: string) => vpSum(m.end, name) - vpSum(m.begin, name);
const storvsp = (s: PostCodeSnapshot, k: string) => (s.device.storvsp[0] as Record<string, number> | undefined)?.[k] ?? 0;

export async function measureQueues(opts: {
  scsiFile: string;
  ideFile: string;
  content: Uint8Array;
  quick: boolean;
  spinIterations: number;
  maxSpinIterations: number;
  /** The setting of the queue-thread row: 'on' forces a thread whatever the host's cores. */
  setting: SubChannelThreadsSetting;
  timeoutMs: number;
  /** Only these rows (the structural test runs the queue-thread row alone: one VM). */
  only?: readonly QueueRow['id'][];
  /** I/Os of the measured phase (default: the storvsc QD32 count of the run's size). */
  count?: number;
}): Promise<QueueSection> {
  const workload = WORKLOADS.find((w) => w.id === 'rand-read-4k-qd32')!;
  const warm = WORKLOADS[0]!;
  const storvsc = PATHS.find((p) => p.id === 'storvsc')!;
  const n = opts.count ?? count('storvsc-2q', workload, opts.quick);
  const variants = [
    { id: 'one-queue' as const, label: 'one queue (VP 0)', path: storvsc, threads: 'off' as const },
    { id: 'two-queues-device-thread' as const, label: 'two queues (VP 0, VP 1), both on the device thread', path: TWO_QUEUES_PATH, threads: 'off' as const },
    { id: 'two-queues-queue-thread' as const, label: 'two queues (VP 0, VP 1), sub-channel on a queue thread', path: TWO_QUEUES_PATH, threads: opts.setting },
  ];
  const loadAverage: number[] = [];
  const rows: QueueRow[] = [];
  for (const v of variants.filter((x) => !opts.only || opts.only.includes(x.id))) {
    const phases: Phase[] = [
      { index: 0, path: storvsc, workload: warm, depth: 1, count: Math.min(256, n), warmup: true, round: 0 },
      // The sub-channel goes to its queue thread a few ms after it opens: a warm-up on both queues first.
      { index: 1, path: v.path, workload, depth: 32, count: Math.max(256, n >> 3), warmup: true, round: 0 },
      { index: 2, path: v.path, workload, depth: 32, count: n, round: 0 },
    ];
    const vm = await runVm({
      ideFile: opts.ideFile,
      scsiFile: opts.scsiFile,
      phases,
      spinIterations: opts.spinIterations,
      maxSpinIterations: opts.maxSpinIterations,
      vpCount: 2,
      maxSubChannels: 1,
      subChannelThreads: v.threads,
      timeoutMs: opts.timeoutMs,
    });
    loadAverage.push(os.loadavg()[0]!);
    const m = vm.phases[2]!;
    const done = Math.max(1, m.done);
    const lat = Float64Array.from(m.latencies, (x) => x / 10).sort();
    const cpu = m.end.cpu.user + m.end.cpu.system - (m.begin.cpu.user + m.begin.cpu.system);
    const ok = vm.phases.every((x) => checkPhase(x, opts.content, opts.content.length / 512).ok);
    rows.push({
      id: v.id,
      label: v.label,
      queueThread: v.path === TWO_QUEUES_PATH && subChannelThreadsEnabled(v.threads) && storvsp(m.end, 'threadRequests') > 0,
      iops: m.done / ((m.t1 - m.t0) / 1e7),
      p50Us: lat[Math.floor(lat.length / 2)] ?? 0,
      ok,
      perIo: {
        signalsToHost: delta(m, 'SignalEventCalls') / done,
        signalsToGuest: delta(m, 'EventsSignalled') / done,
        interrupts: delta(m, 'InterruptsDelivered') / done,
        interruptsVp1: ((m.end.vps[1]?.InterruptsDelivered ?? 0) - (m.begin.vps[1]?.InterruptsDelivered ?? 0)) / done,
        exits: (delta(m, 'Exits') - delta(m, 'MsrExits') - 1) / done,
        halts: delta(m, 'HaltExits') / done,
        hostCpuUs: cpu / done,
        deviceThreadSleeps: (m.end.device.rootWaitSleeps - m.begin.device.rootWaitSleeps) / done,
        queueThreadRequests: (storvsp(m.end, 'threadRequests') - storvsp(m.begin, 'threadRequests')) / done,
        queueThreadSleeps: (storvsp(m.end, 'threadSleeps') - storvsp(m.begin, 'threadSleeps')) / done,
      },
    });
  }
  return { setting: opts.setting, rows, loadAverage };
}

/** The section as text: one line per row, the counters that explain it beside. */
export function formatQueues(q: QueueSection): string {
  const lines = [`Several queues: 4 KiB random read QD32 (queue-thread row: subChannelThreads=${q.setting})`];
  for (const r of q.rows) {
    const p = r.perIo;
    lines.push(
      `  ${r.label.padEnd(58)} ${Math.round(r.iops).toString().padStart(8)} IOPS  p50 ${r.p50Us.toFixed(1)} µs  ` +
        `per I/O: signals ${p.signalsToHost.toFixed(3)} in / ${p.signalsToGuest.toFixed(3)} out, interrupts ${p.interrupts.toFixed(3)} (VP 1 ${p.interruptsVp1.toFixed(3)}), ` +
        `exits ${p.exits.toFixed(3)}, halts ${p.halts.toFixed(3)}, CPU ${p.hostCpuUs.toFixed(1)} µs, dev sleeps ${p.deviceThreadSleeps.toFixed(3)}, ` +
        `on the queue thread ${(p.queueThreadRequests * 100).toFixed(0)}% (sleeps ${p.queueThreadSleeps.toFixed(3)})${r.ok ? '' : '  DATA MISMATCH'}`,
    );
  }
  return lines.join('\n');
}
