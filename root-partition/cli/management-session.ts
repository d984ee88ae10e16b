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
import { defaultDataDir } from '../host/data-dir.ts';

/**
 * A failure a user can cause: a sentence saying what is wrong and what to do, and a word code
 * for scripts (`--json` prints `{"error":{"message","code"}}`). The CIM status or Hyper-V return
 * code and any job id are kept for `--verbose`.
 */
export class CommandFailure extends Error {
  constructor(
    readonly code: string,
    readonly number: number | null,
    message: string,
    readonly detail = '',
  ) {
    super(message);
  }
}

/** Word codes for the Hyper-V return codes and CIM statuses a command can meet. */
const CODE_WORDS: Record<number, string> = {
  1: 'failed',
  4: 'invalid-parameter',
  6: 'not-found',
  4097: 'invalid-transition',
  4098: 'not-supported',
  4099: 'busy',
  32768: 'failed',
  32769: 'access-denied',
  32770: 'not-supported',
  32773: 'invalid-parameter',
  32774: 'in-use',
  32775: 'invalid-state',
};

export const wantsJson = (): boolean => process.argv.includes('--json');
export const wantsVerbose = (): boolean => process.argv.includes('--verbose');

/** A failure as the user sees it: the sentence, and with --verbose what it came from. */
export function failureParts(e: unknown): { message: string; code: string; detail: string } {
  if (e instanceof CommandFailure) {
    return {
      message: e.message,
      code: CODE_WORDS[e.number ?? -1] ?? e.code.toLowerCase(),
      detail: [e.code, e.number !== null ? String(e.number) : '', e.detail].filter(Boolean).join(' '),
    };
  }
  if (e instanceof ManagementError) {
    const n = e.cimStatus;
    const message = e.message.replace(/^CIM_ERR_[A-Z_]+: /, '');
    if (n === 2)
      return {
        message: `${message}; this user may not do that (ask the host's administrator for a role: tsvisor user allow-local)`,
        code: 'access-denied',
        detail: `${e.code} (${n})`,
      };
    return { message, code: CODE_WORDS[n ?? -1] ?? 'failed', detail: `${e.code}${n !== null ? ` (${n})` : ''}` };
  }
  const err = e as NodeJS.ErrnoException;
  return { message: err.message, code: typeof err.code === 'string' ? err.code.toLowerCase().replace(/_/g, '-') : 'failed', detail: '' };
}

export function describeFailure(e: unknown): string {
  const f = failureParts(e);
  return wantsVerbose() && f.detail ? `${f.message} [${f.detail}]` : f.message;
}

/** Prints a failure (JSON on stdout under --json, else a sentence on stderr) and sets exit status 1. */
export function reportFailure(e: unknown): void {
  const f = failureParts(e);
  if (wantsJson()) console.log(JSON.stringify({ error: { message: f.message, code: f.code, ...(wantsVerbose() && f.detail ? { detail: f.detail } : {}) } }));
  else console.error(`tsvisor: ${describeFailure(e)}`);
  process.exitCode = 1;
}

/** "Already in that state" and other outcomes that are not failures: a warning, exit status 0. */
export function warn(message: string): void {
  if (!wantsJson()) console.error(`tsvisor: warning: ${message}`);
}

async function connectTo(dataDir: string): Promise<ManagementClient> {
  const socket = join(dataDir, 'vmms.sock');
  try {
    return await ManagementClient.connect(socket);
  } catch (e) {
    // The client's error carries the errno in its text: turned into what to do about it.
    const text = (e as Error).message;
    if (/\b(ENOENT|ECONNREFUSED)\b/.test(text)) {
      throw new CommandFailure('no-service', null, `no tsvisor service is running for ${dataDir}; start one with: tsvisor serve --data-dir ${dataDir}`, text);
    }
    if (/\bEACCES\b/.test(text))
      throw new CommandFailure(
        'VMMS_ACCESS',
        32769,
        `this user may not open ${socket}; ask the host's administrator for a role (tsvisor user allow-local)`,
        text,
      );
    throw e;
  }
}

export async function withManagement<T>(dataDir: string | undefined, fn: (c: ManagementClient) => Promise<T>): Promise<T | undefined> {
  let client: ManagementClient | undefined;
  try {
    client = await connectTo(dataDir ?? defaultDataDir());
    return await fn(client);
  } catch (e) {
    reportFailure(e);
    return undefined;
  } finally {
    client?.close();
  }
}

/** A whole number in [min, max] from an option, or a failure naming the option and the range. */
export function wholeNumber(option: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `${option} must be a whole number ${min}..${max}, not "${text}"`);
  return n;
}

export const VM_FILTER = "Description = 'Microsoft Virtual Machine'";

/** The VM's Msvm_ComputerSystem by name (ElementName) or id (Name). */
export async function findVm(c: ManagementClient, nameOrId: string): Promise<CimInstance> {
  const quoted = nameOrId.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  const found = await c.query(`SELECT * FROM Msvm_ComputerSystem WHERE ${VM_FILTER} AND (Name = '${quoted}' OR ElementName = '${quoted}')`);
  if (found.length === 0) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `there is no VM named '${nameOrId}'; see the VMs with: tsvisor vm list`);
  if (found.length > 1) throw new CommandFailure('CIM_ERR_FAILED', 1, `'${nameOrId}' names ${found.length} VMs; use the id (tsvisor vm list shows it)`);
  return found[0]!;
}

/** A shell-style pattern (`*`, `?`, `[abc]`) as a whole-name regular expression. */
function globRegExp(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) re += ch === '*' ? '.*' : ch === '?' ? '.' : '[]'.includes(ch) ? ch : ch.replace(/[.+^${}()|\\/]/g, '\\$&');
  return new RegExp(`^${re}$`);
}

/**
 * Several VMs, as Get-VM -Name takes them: names, ids, and wildcard patterns matched against
 * names. Each VM once, in the order named; a pattern that matches nothing is an error.
 */
export async function findVms(c: ManagementClient, patterns: readonly string[]): Promise<CimInstance[]> {
  const out: CimInstance[] = [];
  const add = (v: CimInstance) => {
    if (!out.some((o) => o.get('Name') === v.get('Name'))) out.push(v);
  };
  let all: CimInstance[] | null = null;
  for (const p of patterns) {
    if (!/[*?[]/.test(p)) {
      add(await findVm(c, p));
      continue;
    }
    all ??= await c.query(`SELECT * FROM Msvm_ComputerSystem WHERE ${VM_FILTER}`);
    const re = globRegExp(p);
    const matched = all
      .filter((v) => re.test(String(v.get('ElementName'))))
      .sort((a, b) => String(a.get('ElementName')).localeCompare(String(b.get('ElementName'))));
    if (!matched.length) throw new CommandFailure('CIM_ERR_NOT_FOUND', 6, `no VM name matches '${p}'; see the VMs with: tsvisor vm list`);
    matched.forEach(add);
  }
  return out;
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
export async function callMethod(
  c: ManagementClient,
  path: CimObjectPath,
  method: string,
  params: Record<string, unknown>,
  o: CallOptions,
): Promise<{ outcome: MethodOutcome; job: CimInstance | null }> {
  const outcome = await c.invoke(path, method, params);
  if (outcome.returnValue !== 0 && outcome.returnValue !== 4096) {
    const words = await refusalWords(c, path, method, params);
    throw new CommandFailure(
      method,
      outcome.returnValue,
      words ?? `${outcome.description ?? 'failed'}${outcome.description ? '' : ` (${method})`}`,
      outcome.description ?? '',
    );
  }
  let bar: SingleBar | null = null;
  if (outcome.returnValue === 4096 && o.progress && process.stderr.isTTY) {
    bar = new SingleBar({ format: `${o.label} [{bar}] {percentage}% {status}`, hideCursor: true, clearOnComplete: true }, undefined);
    bar.start(100, 0, { status: '' });
  }
  try {
    const job = await c.waitForJob(outcome, (j) => bar?.update(Number(j.get('PercentComplete') ?? 0), { status: String(j.get('JobStatus') ?? '') }));
    if (job && Number(job.get('JobState')) !== 7) {
      throw new CommandFailure(method, Number(job.get('ErrorCode')), String(job.get('ErrorDescription') ?? 'failed'), `job ${String(job.get('InstanceID'))}`);
    }
    return { outcome, job };
  } finally {
    bar?.stop();
  }
}

/** For a refused RequestStateChange, what is wrong and what to do, in words; null for other methods. */
async function refusalWords(c: ManagementClient, path: CimObjectPath, method: string, params: Record<string, unknown>): Promise<string | null> {
  if (method !== 'RequestStateChange' || path.className !== 'Msvm_ComputerSystem') return null;
  const vm = await c.get(path).catch(() => null);
  if (!vm) return null;
  return stateRefusal(
    String(vm.get('ElementName')),
    Number(vm.get('EnabledState')),
    Number(params.RequestedState),
    (vm.get('AvailableRequestedStates') as number[] | null) ?? [],
  );
}

const REQUEST_VERBS: Record<number, string> = { 2: 'start', 3: 'stop --turn-off', 6: 'save', 9: 'pause', 10: 'restart', 11: 'restart --force' };
const REQUEST_NAMES: Record<number, string> = { 2: 'start', 3: 'turn off', 6: 'save', 9: 'pause', 10: 'restart', 11: 'reset' };

/** Why a VM in `state` cannot take `requested`, and what would work now. */
export function stateRefusal(name: string, state: number, requested: number, accepts: readonly number[]): string {
  const is = `VM '${name}' is ${stateText(state)}`;
  const now = accepts.length
    ? `; now it can: ${accepts.map((s) => `tsvisor vm ${REQUEST_VERBS[s] ?? s} ${name}`).join(', ')}`
    : '; wait until it has finished changing state';
  if (state === 3 && requested !== 2) return `${is}; start it first (tsvisor vm start ${name})`;
  if (state === 6 && requested !== 2 && requested !== 3) return `${is}; start it to restore it first (tsvisor vm start ${name})`;
  if (state === 9 && requested === 9) return `${is} already`;
  return `${is} and cannot ${REQUEST_NAMES[requested] ?? `go to state ${requested}`}${now}`;
}

/** EnabledState as Get-VM shows it (Msvm_ComputerSystem, Microsoft Docs). */
export function stateText(s: number): string {
  return (
    (
      {
        0: 'Unknown',
        2: 'Running',
        3: 'Off',
        4: 'Stopping',
        6: 'Saved',
        9: 'Paused',
        10: 'Starting',
        11: 'Resetting',
        32773: 'Saving',
        32776: 'Pausing',
        32777: 'Resuming',
      } as Record<number, string>
    )[s] ?? `state ${s}`
  );
}

export function healthText(h: number): string {
  return ({ 5: 'Operating normally', 20: 'Major failure', 25: 'Critical failure' } as Record<number, string>)[h] ?? `health ${h}`;
}

export function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMG])?i?B?$/i.exec(text.trim());
  if (!m) throw new CommandFailure('CIM_ERR_INVALID_PARAMETER', 4, `cannot read the size "${text}"; give a whole number with K, M or G (examples: 64M, 1G)`);
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
