/** The body of a VP worker thread: run the guest, report events and the exit to the partition. */
import { parentPort, workerData } from 'node:worker_threads';
import { VpRuntime } from './vp-runtime.ts';
import type { VpEntry, VpEvent, VpExitReason } from './vp-events.ts';
import type { VpCapture } from './vp-capture.ts';

export interface VpThreadData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  vp: number;
  entry: VpEntry;
  spinIterations: number;
  /** Adaptive spin ceiling (adaptive-wait.ts); absent = fixed spin. */
  maxSpinIterations?: number;
  /** Fuel between preemption points (rewritten images); absent = TSVISOR_PREEMPT_BUDGET or the default. */
  preemptBudget?: number;
  /** Continue this captured VP (its entry is `entry`) instead of starting it afresh. */
  rewind?: VpCapture;
  /** The partition's CPU budgets (hypervisor/scheduler/cpu-budget-block.ts). */
  cpuBudget?: SharedArrayBuffer;
  /**
   * Started ahead of its state (Partition.prestartVps): instantiate the image, report 'prepared',
   * then wait for the VpStartMessage saying which entry to run and which capture to continue.
   */
  prestart?: boolean;
}

/** What a prestarted VP thread waits for. */
export interface VpStartMessage {
  entry: VpEntry;
  rewind?: VpCapture;
}

export type VpThreadMessage = { kind: 'event'; event: VpEvent } | { kind: 'exit'; vp: number; exit: VpExitReason };

const data = workerData as VpThreadData;
const post = (m: VpThreadMessage) => parentPort!.postMessage(m);
const runtime = new VpRuntime({
  module: data.module,
  memory: data.memory,
  control: data.control,
  vp: data.vp,
  policy: { spinIterations: data.spinIterations, maxSpinIterations: data.maxSpinIterations },
  preemptBudget: data.preemptBudget,
  rewind: data.rewind,
  cpuBudget: data.cpuBudget,
  notify: (event) => post({ kind: 'event', event }),
});
if (data.prestart) {
  runtime.instantiate();
  parentPort!.once('message', (m: VpStartMessage) => post({ kind: 'exit', vp: data.vp, exit: runtime.run(m.entry, m.rewind) }));
  post({ kind: 'event', event: { type: 'prepared', vp: data.vp } });
} else {
  post({ kind: 'exit', vp: data.vp, exit: runtime.run(data.entry) });
}
