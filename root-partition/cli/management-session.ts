/**
 * What the management verbs share: a connection to the VMMS's management endpoint, VM lookup by
 * name or id, method calls whose 4096 jobs are followed (pushed events, a progress bar for
 * people), and errors that carry the CIM status or Hyper-V return code with a sentence.
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { join } from 'node:path';
import type { CimInstance } from '../management/cim/instance.ts';
import type { CimObjectPath } from '../management/cim/object-path.ts';
import { ManagementClient, ManagementError, type MethodOutcome } from '../management/client/management-client.ts';
import { defaultDataDir } from '../vmms/data-dir.ts';

/** A failure to show as `tsvisor: <code> (<number>): <sentence>` with exit status 1. */
export class CommandFailure extends Error {
  constructor(readonly code: string, readonly number: number | null, message: string) {
    super(message);
  }
}

export function describeFailure(e: unknown): string {
  if (e instanceof CommandFailure || e instanceof ManagementError) {
    const n = e instanceof CommandFailure ? e.number : e.cimStatus;
    return `${e.code}${n !== null ? ` (${n})` : ''}: ${e.message.replace(/^CIM_ERR_[A-Z_]+: /, '')}`;
  }
  return (e as Error).message;
}

export async function withManagement<T>(dataDir: string | undefined, fn: (c: ManagementClient) => Promise<T>): Promise<T | undefined> {
  let client: ManagementClient | undefined;
  try {
    client = await ManagementClient.connect(join(dataDir ?? defaultDataDir(), 'vmms.sock'));
    return await fn(client);
  } catch (e) {
    console.error(`tsvisor: ${describeFailure(e)}`);
    process.exitCode = 1;
    return undefined;
  } finally {
    client?.close();
  }
}

export const VM_FILTER = "Description = 'Microsoft Virtual Machine'";

/** The VM's Msvm_ComputerSystem by name (ElementName) or id (Name). */
export async function findVm(c: ManagementClient, nameOrId: string): Promise<CimInstance> {
  const quoted = nameOrId.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  const found = await c.query(`SELECT * FROM Msvm_ComputerSystem WHERE ${VM_FILTER} AND (Name = '${quoted}' OR ElementName = '${quoted}')`);
  if (found.length === 0) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `no VM named or with id "${nameOrId}"`);
  if (found.length > 1) throw new CommandFailure('CIM_ERR_FAILED', 1, `"${nameOrId}" names ${found.length} VMs; use the id`);
  return found[0]!;
}

export function vmPath(c: ManagementClient, vm: CimInstance): CimObjectPath {
  return c.systemPath(String(vm.get('Name')));
}

export async function servicePath(c: ManagementClient): Promise<CimObjectPath> {
  const rows = await c.queryRows('SELECT * FROM Msvm_VirtualSystemManagementService');
  if (!rows[0]) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, 'the host publishes no Msvm_VirtualSystemManagementService');
  return rows[0].path;
}

export interface CallOptions {
  /** Show a progress bar while a job runs (people, not --json). */
  progress: boolean;
  label: string;
}

/**
 * Invoke, follow a 4096 job to its end, and fail with the return code or the job's ErrorCode and
 * ErrorDescription. Returns the method's outcome and the finished job, if there was one.
 */
export async function callMethod(c: ManagementClient, path: CimObjectPath, method: string, params: Record<string, unknown>, o: CallOptions): Promise<{ outcome: MethodOutcome; job: CimInstance | null }> {
  const outcome = await c.invoke(path, method, params);
  if (outcome.returnValue !== 0 && outcome.returnValue !== 4096) {
    throw new CommandFailure(method, outcome.returnValue, `${outcome.description ?? 'failed'}${await hint(c, path, method)}`);
  }
  let bar: SingleBar | null = null;
  if (outcome.returnValue === 4096 && o.progress && process.stderr.isTTY) {
    bar = new SingleBar({ format: `${o.label} [{bar}] {percentage}% {status}`, hideCursor: true, clearOnComplete: true }, undefined);
    bar.start(100, 0, { status: '' });
  }
  try {
    const job = await c.waitForJob(outcome, (j) => bar?.update(Number(j.get('PercentComplete') ?? 0), { status: String(j.get('JobStatus') ?? '') }));
    if (job && Number(job.get('JobState')) !== 7) {
      throw new CommandFailure(`${method} job ${String(job.get('InstanceID'))}`, Number(job.get('ErrorCode')), String(job.get('ErrorDescription') ?? 'failed'));
    }
    return { outcome, job };
  } finally {
    bar?.stop();
  }
}

/** For a refused RequestStateChange, what the VM would accept now. */
async function hint(c: ManagementClient, path: CimObjectPath, method: string): Promise<string> {
  if (method !== 'RequestStateChange' || path.className !== 'Msvm_ComputerSystem') return '';
  const vm = await c.get(path).catch(() => null);
  if (!vm) return '';
  const accepts = (vm.get('AvailableRequestedStates') as number[] | null) ?? [];
  return `; the VM is ${stateText(Number(vm.get('EnabledState')))} and accepts ${accepts.length ? accepts.map((s) => `${s} (${REQUEST_NAMES[s] ?? s})`).join(', ') : 'no state change now'}`;
}

const REQUEST_NAMES: Record<number, string> = { 2: 'start', 3: 'turn off', 6: 'save', 9: 'pause', 10: 'reboot', 11: 'reset' };

/** EnabledState as Get-VM shows it (management-model.md §1). */
export function stateText(s: number): string {
  return ({ 0: 'Unknown', 2: 'Running', 3: 'Off', 4: 'Stopping', 6: 'Saved', 9: 'Paused', 10: 'Starting', 11: 'Resetting', 32773: 'Saving', 32776: 'Pausing', 32777: 'Resuming' } as Record<number, string>)[s] ?? `state ${s}`;
}

export function healthText(h: number): string {
  return ({ 5: 'Operating normally', 20: 'Major failure', 25: 'Critical failure' } as Record<number, string>)[h] ?? `health ${h}`;
}

export function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMG])?i?B?$/i.exec(text.trim());
  if (!m) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `cannot read size "${text}" (examples: 64M, 1G)`);
  const unit = (m[2] ?? '').toUpperCase();
  return Number(m[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1);
}

/** Replace a verb of the same name that the group already has. */
export function verb(group: Command, spec: string): Command {
  const name = spec.split(' ')[0]!;
  const commands = group.commands as Command[];
  const at = commands.findIndex((c) => c.name() === name);
  if (at >= 0) commands.splice(at, 1);
  return group.command(spec);
}

