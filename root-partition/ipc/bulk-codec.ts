/**
 * Bulk records on the VMWP socket, framed with msgpack: they are frequent (console output) or
 * shaped by the hypervisor's counter names (counters), and need no cross-release schema.
 */
import { Packr } from 'msgpackr';
import type { VpCounterName } from '../../hypervisor/partition-control.ts';

export interface WorkerCounters {
  /** Per VP, the hypervisor's counters (exits by kind, interrupts, messages, signals, bytes). */
  vps: Record<VpCounterName, number>[];
  /** Intercepts the VMWP's device side served. */
  interceptsServed: number;
  /** COM1 bytes sent on to VMMS. */
  consoleBytes: number;
  /** COM1 bytes the worker dropped because its console buffer was full (the guest wrote faster than VMMS read). */
  consoleDroppedBytes: number;
  /** Guest-caused log lines (refused messages, bad rings, device errors) suppressed by the rate limit. */
  guestLogLinesSuppressed: number;
  /** Console bytes not sent to a connected VMMS that had fallen more than 4 MiB behind (the worker's socket side). */
  consoleLaggingClientDroppedBytes?: number;
}

/**
 * Worker → VMMS once per scheduling period (docs/scheduling.md): what the VM wants and used.
 * `vpUsedUs` is each VP's CPU time since the VM's partition was created (the kernel's count).
 */
export interface CpuDemandRecord {
  kind: 'cpu-demand';
  runnableVps: number;
  vpUsedUs: number[];
  /** Budget parks since the VM started (a VP that parks wanted more than it got). */
  parks: number;
  /** The newest grant the worker applied (0: none yet). */
  grantSeq: number;
}

/** VMMS → worker once per scheduling period: the CPU time each VP of the VM may use per period. */
export interface CpuBudgetRecord {
  kind: 'cpu-budget';
  seq: number;
  periodUs: number;
  /** Per VP per period, µs; -1 = unlimited. */
  perVpUs: number;
  /** The VM's own Maximum per VP per period, µs (-1 = none): what the worker keeps enforcing when grants stop coming. */
  capUs: number;
}

export type BulkRecord =
  | { kind: 'console'; port: 'com1'; data: Uint8Array }
  | { kind: 'counters'; counters: WorkerCounters }
  | CpuDemandRecord
  | CpuBudgetRecord;

const packr = new Packr({ useRecords: false });

export function encodeBulk(record: BulkRecord): Uint8Array {
  return packr.pack(record);
}

export function decodeBulk(bytes: Uint8Array): BulkRecord {
  const r = packr.unpack(bytes) as BulkRecord;
  if (!r || (r.kind !== 'console' && r.kind !== 'counters' && r.kind !== 'cpu-demand' && r.kind !== 'cpu-budget')) throw new Error('unknown bulk record');
  return r;
}
