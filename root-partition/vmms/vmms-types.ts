/** What the management service is opened with, what its requests answer, its events' shapes and its error. */
import type { EnabledStateValue, HealthStateValue, ReturnCodeValue } from './lifecycle.ts';
import type { HostLimits } from './host-resources.ts';
import type { Logger } from '../host/log.ts';
import type { VmView } from './vm-entry.ts';

export interface VmmsOptions {
  dataDir: string;
  limits?: Partial<HostLimits>;
  logger?: Logger;
  /** Readable log lines on stderr as well as the JSON file. */
  terminalLog?: boolean;
  /**
   * The directories disks and guest images may come from (storage-roots.ts), checked at
   * definition and again at start. Absent: any path (an embedded VMMS running as its user).
   */
  storageRoots?: readonly string[];
  /** How long a worker may take to start and boot, and to answer one request. */
  workerStartTimeoutMs?: number;
  operationTimeoutMs?: number;
  /** How long a worker found at open has to answer before its VM shows Unknown (default 5 s). */
  reattachTimeoutMs?: number;
  /** CPUs given to guests, for the CPU scheduler and its admission control (default: all the host's). */
  hostCpus?: number;
  /** The CPU scheduler's period, µs (default 50 ms; docs/scheduling.md). */
  cpuPeriodUs?: number;
}

export interface StateChangeEvent {
  vmId: string;
  name: string;
  previous: EnabledStateValue;
  state: EnabledStateValue;
  healthState: HealthStateValue;
  reason: string;
}

export interface RequestResult {
  returnValue: ReturnCodeValue;
  error?: string;
  vm?: VmView;
}

export class VmmsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
