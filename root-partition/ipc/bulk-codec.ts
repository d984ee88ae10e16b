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

export type BulkRecord =
  | { kind: 'console'; port: 'com1'; data: Uint8Array }
  | { kind: 'counters'; counters: WorkerCounters };

const packr = new Packr({ useRecords: false });

export function encodeBulk(record: BulkRecord): Uint8Array {
  return packr.pack(record);
}

export function decodeBulk(bytes: Uint8Array): BulkRecord {
  const r = packr.unpack(bytes) as BulkRecord;
  if (!r || (r.kind !== 'console' && r.kind !== 'counters')) throw new Error('unknown bulk record');
  return r;
}
