/**
 * The lifecycle operations as VMMS carries them out on a VM's worker process: start (spawn,
 * connect, boot), restore (the same, from the saved-state file), pause/resume/reset (one
 * request), save (the worker writes the file and exits), turn-off (ask, then kill -9 if the
 * worker does not go — from any state, a stuck one included), and reattach after a VMMS restart.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { DataDir } from './data-dir.ts';
import { EnabledState, HealthState, stateName, type EnabledStateValue, type HealthStateValue, type LifecycleOperation } from './lifecycle.ts';
import type { Logger } from './log.ts';
import { buildWorkerBundles } from '../vmwp/worker-bundles.ts';
import { definitionFiles, deviceConfig, diskProblems } from './vm-device-settings.ts';
import type { StorageRoots } from './storage-roots.ts';
import type { VmEntry } from './vm-entry.ts';
import { launchWorker, processAlive } from './vmwp-launcher.ts';
import { VmwpConnection, WorkerRequestError } from './vmwp-connection.ts';

export interface OperationTimeouts {
  startTimeoutMs: number;
  operationTimeoutMs: number;
}

export interface LifecycleSink {
  setState(e: VmEntry, s: EnabledStateValue, reason: string, health?: HealthStateValue): void;
  attach(e: VmEntry, conn: VmwpConnection): void;
}

const TURN_OFF_GRACE_MS = 3000;

function workerState(state: string | undefined): EnabledStateValue | null {
  return state === 'running' ? EnabledState.Running : state === 'paused' ? EnabledState.Paused : null;
}

export class WorkerOperations {
  constructor(
    private readonly paths: DataDir, private readonly log: Logger, private readonly t: OperationTimeouts, private readonly sink: LifecycleSink,
    private readonly roots: StorageRoots | null = null,
  ) {}

  /** After a VMMS restart: connect to the VM's worker if one is running, and adopt its state. */
  async reattach(e: VmEntry): Promise<void> {
    const sock = this.paths.workerSocket(e.def.id);
    if (!existsSync(sock)) return;
    try {
      const conn = await VmwpConnection.open(sock, 1000, () => false);
      this.sink.attach(e, conn);
      // Until the worker answers, its going away is not a crash: it may be a worker on its way out.
      e.expectingExit = true;
      const status = await conn.request('STATUS', 5000);
      const s = workerState(status.state);
      if (s === null) throw new Error(`the worker reports state ${status.state}`);
      e.expectingExit = false;
      e.pid = status.pid ?? null;
      e.runningSince = Date.now() - (status.uptimeMs ?? 0);
      this.sink.setState(e, s, `reattached to worker ${e.pid}`, HealthState.Ok);
    } catch (err) {
      e.log.warn(`worker socket ${sock} is stale (${(err as Error).message}); the VM is ${stateName(e.state)}`);
      e.expectingExit = true;
      e.conn?.close();
      e.conn = null;
      rmSync(sock, { force: true });
    }
  }

  async apply(e: VmEntry, op: LifecycleOperation, via: EnabledStateValue, to: EnabledStateValue): Promise<void> {
    const previous = e.state;
    if (op === 'turn-off') return this.turnOff(e, previous);
    const gen = e.generation;
    this.sink.setState(e, via, `${op} requested`);
    try {
      switch (op) {
        case 'start': await this.startWorker(e, undefined); break;
        case 'restore': await this.startWorker(e, this.paths.savedState(e.def.id)); break;
        case 'save': await this.save(e); break;
        case 'pause': await this.conn(e).request('PAUSE', this.t.operationTimeoutMs); break;
        case 'resume': await this.conn(e).request('RESUME', this.t.operationTimeoutMs); break;
        case 'reset': e.clearConsole(); await this.conn(e).request('RESET', this.t.operationTimeoutMs); break;
      }
    } catch (err) {
      // A turn-off or a worker crash overtook this operation: it already set the state.
      if (e.generation === gen) this.sink.setState(e, e.conn || op === 'restore' ? previous : EnabledState.Off, `${op} failed: ${(err as Error).message}`);
      throw err;
    }
    if (e.generation !== gen) throw new Error(`${op} was overtaken by a turn-off`);
    if (op === 'restore') rmSync(this.paths.savedState(e.def.id), { force: true });
    this.sink.setState(e, to, `${op} completed`, HealthState.Ok);
  }

  private conn(e: VmEntry): VmwpConnection {
    if (!e.conn) throw new WorkerRequestError('the VM has no connected worker', 'VMWP_ERR_GONE');
    return e.conn;
  }

  private async startWorker(e: VmEntry, restoreFrom: string | undefined): Promise<void> {
    e.clearConsole();
    const d = e.def;
    const devices = deviceConfig(d.id, d.devices);
    // Again at start: a symlink in a root may have been pointed elsewhere since the definition.
    // The worker checks a third time on the descriptors it opens.
    if (this.roots) {
      for (const f of definitionFiles(d.id, d.imagePath, d.devices)) this.roots.check(f.path, f.what);
      devices.storageRoots = [...this.roots.dirs];
    }
    // Refused before a worker exists: the VM stays where it was, and the message names the file.
    const bad = diskProblems(devices);
    if (bad.length) throw new WorkerRequestError(bad.join('; '), 'VMMS_ERR_DISK');
    // The worker process and its device thread start from bundles when they are fresh; build them
    // first if not (a no-op when fresh). Without them the worker compiles its sources: slower, same.
    await buildWorkerBundles().catch((err: Error) => e.log.warn(`worker bundles not built (${err.message}); the worker compiles its sources`));
    const worker = launchWorker({
      dataDir: this.paths.root, vmId: d.id, name: d.name, memoryBytes: d.memoryBytes, vpCount: d.vpCount, imagePath: d.imagePath, cmdline: d.cmdline,
      devices, ...(restoreFrom ? { restoreFrom } : {}), ...(this.roots ? { storageRoots: [...this.roots.dirs] } : {}),
    }, this.paths.workerOutput(d.id));
    e.pid = worker.pid;
    e.log.info(`worker ${worker.pid} started${restoreFrom ? ` to restore ${restoreFrom}` : ''}`);
    let conn: VmwpConnection;
    try {
      conn = await VmwpConnection.open(this.paths.workerSocket(d.id), this.t.startTimeoutMs, () => !worker.exited());
    } catch (err) {
      if (!worker.exited()) process.kill(worker.pid, 'SIGKILL');
      e.pid = null;
      const out = this.tail(d.id);
      throw new Error(`the worker did not come up: ${(err as Error).message}${out ? `\n${out}` : ''}`);
    }
    this.sink.attach(e, conn);
    try {
      await conn.request('STATUS', this.t.startTimeoutMs);
    } catch (err) {
      // The worker reports its boot error and exits by itself.
      e.expectingExit = true;
      await Promise.race([conn.whenClosed(), delay(2000)]);
      await ensureExited(worker.pid, 2000, e.log);
      e.pid = null;
      throw err;
    }
  }

  private async save(e: VmEntry): Promise<void> {
    const conn = this.conn(e);
    e.expectingExit = true;
    try {
      await conn.request('SAVE', this.t.operationTimeoutMs, this.paths.savedState(e.def.id));
    } catch (err) {
      // The worker resumes the guest when it cannot write the file; if it is gone, it crashed.
      e.expectingExit = false;
      if (conn.isClosed) this.sink.setState(e, EnabledState.Off, `the worker ended while saving: ${(err as Error).message}`, HealthState.CriticalFailure);
      throw err;
    }
    await Promise.race([conn.whenClosed(), delay(TURN_OFF_GRACE_MS)]);
    if (e.pid !== null) await ensureExited(e.pid, TURN_OFF_GRACE_MS, e.log);
  }

  /**
   * Stop-VM: asks the guest to shut down through its shutdown integration service. Running →
   * Stopping → Off. The worker turns the VM off itself when the guest does not stop within
   * `timeoutMs`; should the worker not answer either, VMMS turns it off. A guest that refuses
   * or has no shutdown service keeps running (Running again), and the error says why.
   */
  async shutdown(e: VmEntry, o: { timeoutMs: number; force: boolean; reason: string }): Promise<void> {
    const conn = this.conn(e);
    const gen = e.generation;
    this.sink.setState(e, EnabledState.Stopping, `shutdown requested (${o.timeoutMs} ms to stop)`);
    // The worker exits when the guest halts, or after its own turn-off fallback.
    e.expectingExit = true;
    let outcome: string | undefined;
    try {
      outcome = (await conn.request('SHUTDOWN', o.timeoutMs + TURN_OFF_GRACE_MS, o)).shutdownOutcome;
    } catch (err) {
      const code = (err as WorkerRequestError).code;
      if (code === 'VMWP_ERR_SHUTDOWN_REFUSED' || code === 'VMWP_ERR_SHUTDOWN_UNAVAILABLE' || code === 'VMWP_ERR_NO_IC') {
        e.expectingExit = false;
        if (e.generation === gen) this.sink.setState(e, EnabledState.Running, `shutdown not done: ${(err as Error).message}`);
        throw err;
      }
      // Gone (the guest stopped as the answer was on its way) or silent: make sure it is off.
      if (code !== 'VMWP_ERR_GONE') e.log.warn(`shutdown: ${(err as Error).message}; turning the VM off`);
      outcome = code === 'VMWP_ERR_GONE' ? 'shut-down' : 'timed-out';
    }
    if (e.generation !== gen) return; // a turn-off overtook it and already set the state
    // The worker leaves by itself now (its log flushed); when the guest stopped, VMMS has
    // already seen it (Off, "the guest stopped"). Anything still standing is turned off.
    await Promise.race([conn.whenClosed(), delay(TURN_OFF_GRACE_MS)]);
    if (e.pid !== null) await ensureExited(e.pid, TURN_OFF_GRACE_MS, e.log);
    if (e.state !== EnabledState.Off) await this.turnOff(e, EnabledState.Stopping);
    e.log.info(outcome === 'timed-out' ? 'the guest did not shut down in time; the VM was turned off' : 'the guest shut down');
  }

  /** Works from any state: asks the worker to stop, kills it if it does not, drops a saved state. */
  private async turnOff(e: VmEntry, previous: EnabledStateValue): Promise<void> {
    e.generation++;
    this.sink.setState(e, EnabledState.Stopping, `turn-off requested in ${stateName(previous)}`);
    const conn = e.conn;
    const pid = e.pid;
    e.expectingExit = true;
    let answered = false;
    if (conn) {
      answered = await Promise.race([conn.request('TURN_OFF', TURN_OFF_GRACE_MS).then(() => true, () => false), conn.whenClosed().then(() => true)]);
      if (answered) await Promise.race([conn.whenClosed(), delay(TURN_OFF_GRACE_MS)]);
    }
    // A worker that answered exits within moments; one that did not answer is killed now.
    if (pid !== null) await ensureExited(pid, answered ? TURN_OFF_GRACE_MS : 0, e.log);
    conn?.close();
    e.conn = null;
    rmSync(this.paths.workerSocket(e.def.id), { force: true });
    rmSync(this.paths.savedState(e.def.id), { force: true });
    this.sink.setState(e, EnabledState.Off, 'turned off', HealthState.Ok);
  }

  private tail(id: string): string {
    try {
      return readFileSync(this.paths.workerOutput(id), 'utf8').split('\n').slice(-12).join('\n').trim();
    } catch {
      return '';
    }
  }
}

/** Waits up to `graceMs` for the worker to exit by itself (its log flushed), then kills it. */
async function ensureExited(pid: number, graceMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (processAlive(pid) && Date.now() < deadline) await delay(10);
  if (!processAlive(pid)) return;
  log.warn(`worker ${pid} did not exit; killing it`);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 200 && processAlive(pid); i++) await delay(10);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
