/**
 * Which process is a VM's worker: VMMS writes `vmwp-<id>.pid` when it launches one (pid, the
 * kernel's start time of that process, the VM's memory) and removes it once the worker is
 * confirmed dead. A later VMMS — after a restart, or when a worker does not answer — can then
 * tell its worker from an unrelated process that reused the pid, stop it by its pid, and refuse
 * to start a second worker for the same VM while the first may be alive.
 *
 * A process is the recorded worker when it exists, is not a zombie, its start time
 * (/proc/<pid>/stat field 22, clock ticks since boot: proc(5)) equals the recorded one, and its
 * command line names the VM id (the worker's title `tsvisor-vmwp <id>`, or its launch arguments).
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import type { DataDir } from '../host/data-dir.ts';
import { writeFileAtomic } from '../host/atomic-file.ts';

export interface WorkerRecord {
  vmId: string;
  pid: number;
  /** /proc/<pid>/stat starttime of the worker when it was launched. */
  startTime: string;
  /** Guest memory the worker holds: counted in the host budget even without a definition. */
  memoryBytes: number;
  name: string;
}

/** /proc/<pid>/stat fields after the command name: [0] is field 3 (state), [19] field 22 (starttime). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

export function processStartTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

/** The process exists and is not a zombie (a killed child VMMS has not reaped yet is gone for us). */
export function processRunning(pid: number): boolean {
  const f = statFields(pid);
  return f !== null && f[0] !== 'Z' && f[0] !== 'X';
}

/** When the recorded worker started, in ms since the epoch (boot time from /proc/stat + its start time in USER_HZ ticks). */
export function workerStartedAtMs(rec: WorkerRecord): number | null {
  try {
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(btime)) return null;
    return (btime + Number(rec.startTime) / USER_HZ) * 1000;
  } catch {
    return null;
  }
}

/** sysconf(_SC_CLK_TCK): the unit of /proc/<pid>/stat times, 100 on Linux. */
const USER_HZ = 100;

/** True when `rec.pid` is still the worker VMMS launched for `rec.vmId` (not a zombie, not a reused pid). */
export function workerAlive(rec: WorkerRecord): boolean {
  const f = statFields(rec.pid);
  if (!f || f[0] === 'Z' || f[0] === 'X' || f[19] !== rec.startTime) return false;
  try {
    return readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').includes(rec.vmId);
  } catch {
    return false;
  }
}

export function writeWorkerRecord(paths: DataDir, rec: WorkerRecord): void {
  writeFileAtomic(paths.workerRecord(rec.vmId), `${JSON.stringify(rec)}\n`);
}

/** The record of `vmId`'s worker, or null when there is none or it does not read as one. */
export function readWorkerRecord(paths: DataDir, vmId: string): WorkerRecord | null {
  let v: Partial<WorkerRecord>;
  try {
    v = JSON.parse(readFileSync(paths.workerRecord(vmId), 'utf8')) as Partial<WorkerRecord>;
  } catch {
    return null;
  }
  if (v.vmId !== vmId || !Number.isInteger(v.pid) || (v.pid as number) <= 1 || typeof v.startTime !== 'string' || !/^\d+$/.test(v.startTime)) return null;
  return {
    vmId,
    pid: v.pid!,
    startTime: v.startTime,
    memoryBytes: Number.isSafeInteger(v.memoryBytes) ? v.memoryBytes! : 0,
    name: typeof v.name === 'string' ? v.name : '',
  };
}

/** The VM ids that have a worker record or a worker socket in the data directory. */
export function workerIdsOnDisk(paths: DataDir): string[] {
  const ids = new Set<string>();
  for (const f of readdirSync(paths.root)) {
    const m = /^vmwp-(.+)\.(pid|sock)$/.exec(f);
    if (m) ids.add(m[1]!);
  }
  return [...ids].sort();
}

/**
 * Removes a dead worker's socket and record. Returns what could not be removed (a read-only data
 * directory, say): the caller reports it; nothing else depends on the removal.
 */
export function removeWorkerFiles(paths: DataDir, vmId: string): string[] {
  const problems: string[] = [];
  for (const f of [paths.workerSocket(vmId), paths.workerRecord(vmId)]) {
    try {
      rmSync(f, { force: true });
    } catch (e) {
      problems.push(`cannot remove ${f}: ${(e as Error).message}`);
    }
  }
  return problems;
}

/** Sends SIGKILL to the recorded worker if it is still that process; waits up to `waitMs` for it to go. */
export async function killWorker(rec: WorkerRecord, waitMs = 2000): Promise<boolean> {
  if (!workerAlive(rec)) return true;
  try {
    process.kill(rec.pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
  const deadline = Date.now() + waitMs;
  while (workerAlive(rec) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return !workerAlive(rec);
}

/**
 * A worker for `vmId` found by its title among the host's processes: for a socket left without a
 * record (a worker launched before records existed). Memory unknown (0).
 */
export function findWorkerProcess(vmId: string): WorkerRecord | null {
  const title = `tsvisor-vmwp ${vmId}`;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmd.startsWith(title)) continue;
    const startTime = processStartTime(pid);
    const rec = startTime ? { vmId, pid, startTime, memoryBytes: 0, name: '' } : null;
    if (rec && workerAlive(rec)) return rec;
  }
  return null;
}

/** The record on disk when its worker is alive, else one found by title, else null. */
export function liveWorker(paths: DataDir, vmId: string): WorkerRecord | null {
  const rec = readWorkerRecord(paths, vmId);
  if (rec && workerAlive(rec)) return rec;
  return findWorkerProcess(vmId);
}
