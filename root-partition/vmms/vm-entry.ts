/**
 * What VMMS holds for one defined VM: its definition, lifecycle state and health, the worker
 * (pid, socket connection) while it runs, a console tail, and the public view of all that.
 */
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import { availableRequestedStates, EnabledState, HealthState, stateName, type EnabledStateValue, type HealthStateValue } from './lifecycle.ts';
import type { VmDefinition } from './vm-definition.ts';
import type { VmwpConnection } from './vmwp-connection.ts';
import type { Logger } from '../host/log.ts';
import type { CpuLoad } from './host-cpu-scheduler.ts';

/** Console output kept per VM in VMMS (the newest bytes win). */
export const CONSOLE_TAIL_BYTES = 256 * 1024;

export interface VmView {
  id: string;
  name: string;
  enabledState: EnabledStateValue;
  state: string;
  healthState: HealthStateValue;
  /** The worker process (Msvm_ComputerSystem.ProcessID), while one runs. */
  processId: number | null;
  availableRequestedStates: number[];
  memoryBytes: number;
  vpCount: number;
  imagePath: string;
  cmdline: string;
  /** 'linux': the built-in Linux guest on the x86 VP kind; absent for a WebAssembly guest image. */
  guest?: 'linux';
  automaticStopAction: string;
  automaticStartAction: string;
  notes: string;
  devices: VmDefinition['devices'];
  uptimeMs: number | null;
  lastError: string | null;
  /**
   * Msvm_HeartbeatComponent OperationalStatus as the worker last pushed it (2 OK, 3 Degraded,
   * 12 No Contact, 13 Lost Communication, 15 Paused); null without a worker or a heartbeat service.
   */
  heartbeatStatus: number | null;
  /** The guest's KVP items as the worker last reported them ([key, value]); null before a report. */
  kvpGuestItems: [string, string][] | null;
  kvpIntrinsicItems: [string, string][] | null;
  /** Set-VMProcessor -Reserve / -Maximum (percent of the VM's processors) and -RelativeWeight. */
  cpuReserve: number;
  cpuMaximum: number;
  cpuWeight: number;
  /** Percent of the VM's processors used over the last second (Get-VM CPUUsage); null when not running or not yet measured. */
  cpuUsage: number | null;
  /** The same per VP. */
  vpCpuUsage: number[] | null;
}

export class VmEntry {
  state: EnabledStateValue = EnabledState.Off;
  health: HealthStateValue = HealthState.Ok;
  pid: number | null = null;
  conn: VmwpConnection | null = null;
  /** The worker is about to exit at VMMS's request (save, turn-off) or the guest's (it stopped). */
  expectingExit = false;
  guestExitFault: string | null = null;
  guestStopped = false;
  /** Bumped by turn-off, so an operation it overtook does not write its result afterwards. */
  generation = 0;
  runningSince: number | null = null;
  lastError: string | null = null;
  /**
   * The first disk failure the worker reported in this run of the VM (the file's I/O error, a
   * damaged VHDX). Sticky: no later success clears it, the VM's health stays Major Failure until
   * its next start, and it is the last error while no newer one is.
   */
  diskFailure: string | null = null;
  counters: WorkerCounters | null = null;
  heartbeatStatus: number | null = null;
  kvp: { guest: [string, string][]; intrinsic: [string, string][] } | null = null;
  /** The CPU scheduler's metering of this VM while its worker is connected. */
  cpuLoad: (() => CpuLoad | null) | null = null;
  private consoleChunks: Buffer[] = [];
  private consoleBytes = 0;

  /** This VM's logger: every line carries vmId and vmName. */
  readonly log: Logger;

  constructor(
    public def: VmDefinition,
    parentLog: Logger,
  ) {
    this.log = parentLog.child({ vmId: def.id, vmName: def.name });
  }

  appendConsole(data: Uint8Array): void {
    const b = Buffer.from(data);
    this.consoleChunks.push(b);
    this.consoleBytes += b.length;
    while (this.consoleBytes - this.consoleChunks[0].length >= CONSOLE_TAIL_BYTES) this.consoleBytes -= this.consoleChunks.shift()!.length;
  }

  console(): string {
    return Buffer.concat(this.consoleChunks).toString('latin1');
  }

  clearConsole(): void {
    this.consoleChunks = [];
    this.consoleBytes = 0;
  }

  view(): VmView {
    const d = this.def;
    return {
      id: d.id,
      name: d.name,
      enabledState: this.state,
      state: stateName(this.state),
      healthState: this.health,
      processId: this.pid,
      availableRequestedStates: availableRequestedStates(this.state),
      memoryBytes: d.memoryBytes,
      vpCount: d.vpCount,
      imagePath: d.imagePath,
      cmdline: d.cmdline,
      ...(d.guest ? { guest: d.guest } : {}),
      automaticStopAction: d.automaticStopAction,
      automaticStartAction: d.automaticStartAction ?? 'nothing',
      notes: d.notes ?? '',
      devices: d.devices,
      uptimeMs: this.runningSince === null ? null : Date.now() - this.runningSince,
      lastError: this.lastError ?? this.diskFailure,
      heartbeatStatus: this.conn ? this.heartbeatStatus : null,
      kvpGuestItems: this.conn ? (this.kvp?.guest ?? null) : null,
      kvpIntrinsicItems: this.conn ? (this.kvp?.intrinsic ?? null) : null,
      cpuReserve: d.cpuReserve ?? 0,
      cpuMaximum: d.cpuMaximum ?? 100,
      cpuWeight: d.cpuWeight ?? 100,
      ...cpuUsage(this.cpuLoad?.() ?? null),
    };
  }
}

function cpuUsage(l: CpuLoad | null): Pick<VmView, 'cpuUsage' | 'vpCpuUsage'> {
  return l ? { cpuUsage: Math.round(l.percent * 10) / 10, vpCpuUsage: l.vpPercent.map((p) => Math.round(p * 10) / 10) } : { cpuUsage: null, vpCpuUsage: null };
}
