/**
 * What the service asks a running VM's worker for on an operator's behalf: the heartbeat, KVP
 * items, console input and the counters. Each needs the worker; a VM without one is refused with
 * VMMS_ERR_NOT_RUNNING.
 */
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import type { VmEntry } from './vm-entry.ts';
import type { VmwpConnection } from './vmwp-connection.ts';
import { VmmsError } from './vmms-types.ts';

function workerOf(e: VmEntry): VmwpConnection {
  if (!e.conn) throw new VmmsError('VMMS_ERR_NOT_RUNNING', `VM ${e.def.name} has no worker`);
  return e.conn;
}

/** Msvm_HeartbeatComponent OperationalStatus of a running VM: 2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication. */
export async function heartbeatStatus(e: VmEntry): Promise<number> {
  return (await workerOf(e).request('HEARTBEAT', 5000)).heartbeatStatus ?? 0;
}

/** A KVP item the guest holds in `pool` (KvpPool), or null when it has none by that key. */
export async function kvpGet(e: VmEntry, pool: number, key: string): Promise<string | null> {
  const r = await workerOf(e).request('KVP_GET', 10_000, { kvpPool: pool, kvpKey: key });
  return r.kvpFound ? (r.kvpValue ?? '') : null;
}

/** Writes a host item into the guest's `pool` (KvpPool.External for operator data). */
export async function kvpSet(e: VmEntry, pool: number, key: string, value: string): Promise<void> {
  await workerOf(e).request('KVP_SET', 10_000, { kvpPool: pool, kvpKey: key, kvpValue: value });
}

/** Removes a host item from the guest's `pool`. */
export async function kvpDelete(e: VmEntry, pool: number, key: string): Promise<void> {
  await workerOf(e).request('KVP_DELETE', 10_000, { kvpPool: pool, kvpKey: key });
}

/** Bytes typed at the VM's console: the worker puts them into COM1's receiver. */
export async function consoleInput(e: VmEntry, bytes: Uint8Array): Promise<void> {
  await workerOf(e).request('CONSOLE_INPUT', 5000, { consoleInput: bytes });
}

/** The worker's counters now: per VP exits by kind, interrupts, messages, signals, bytes moved. */
export async function counters(e: VmEntry): Promise<WorkerCounters> {
  const conn = workerOf(e);
  await conn.request('COUNTERS', 5000);
  return conn.lastCounters!;
}
