/**
 * The lifecycle operations as VMMS carries them out on a VM's worker process: start (spawn,
 * connect, boot), restore (the same, from the saved-state file), pause/resume/reset (one
 * request), save (the worker writes the file and exits), turn-off (ask, then kill -9 if the
 * worker does not go — from any state, a stuck one included), and reattach after a VMMS restart.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { DataDir } from '../host/data-dir.ts';
import { EnabledState, HealthState, stateName, type EnabledStateValue, type HealthStateValue, type LifecycleOperation } from './lifecycle.ts';
import type { Logger } from '../host/log.ts';
import { buildWorkerBundles } from '../vmwp/worker-bundles.ts';
import { definitionFiles, deviceConfig, diskProblems, nicProblems } from './vm-device-settings.ts';
import type { StorageRoots } from '../host/storage-roots.ts';
import type { VmEntry } from './vm-entry.ts';
import { launchWorker, processAlive } from './vmwp-launcher.ts';
import { faultPoint } from './fault-point.ts';
import {
  liveWorker,
  processRunning,
  processStartTime,
  readWorkerRecord,
  removeWorkerFiles,
  workerAlive,
  workerStartedAtMs,
  writeWorkerRecord,
  type WorkerRecord,
} from './worker-record.ts';
import { VmwpConnection, WorkerRequestError } from './vmwp-connection.ts';

export interface OperationTimeouts {
  startTimeoutMs: number;
  operationTimeoutMs: number;
  /** How long a worker found after a VMMS restart has to answer before the VM shows Unknown. */
  reattachTimeoutMs: number;
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
  private closed = false;
  /** The socket of a switch by name (VMMS's switch registry); none: no switch exists. */
  switchSocket: (name: string) => string | undefined = () => undefined;

  constructor(
    private readonly paths: DataDir,
    private readonly log: Logger,
    private readonly t: OperationTimeouts,
    private readonly sink: LifecycleSink,
    private readonly roots: StorageRoots | null = null,
  ) {}

  /**
   * After a VMMS restart: connect to the VM's worker if one is alive, and adopt its state. A
   * worker that is alive but does not answer in time (stopped, swapped out, overloaded) is never
   * forgotten: the VM is Unknown, keeps its pid (and its memory in the budget), accepts only a
   * turn-off, and VMMS keeps asking until the worker answers or dies.
   */
  async reattach(e: VmEntry): Promise<void> {
    const id = e.def.id;
    const sock = this.paths.workerSocket(id);
    const rec = liveWorker(this.paths, id);
    if (!rec) {
      // No worker of this VM is alive: whatever it left behind is stale.
      if (existsSync(sock) || existsSync(this.paths.workerRecord(id))) e.log.warn(`worker files of a dead worker removed (the VM is ${stateName(e.state)})`);
      for (const p of removeWorkerFiles(this.paths, id)) e.log.error(p);
      return;
    }
    e.pid = rec.pid;
    if (await this.askStatus(e, rec, `reattached to worker ${rec.pid}`)) return;
    if (!workerAlive(rec)) {
      e.pid = null;
      for (const p of removeWorkerFiles(this.paths, id)) e.log.error(p);
      e.log.warn(`worker ${rec.pid} ended before it answered; the VM is ${stateName(e.state)}`);
      return;
    }
    e.lastError = `the worker process ${rec.pid} is alive but does not answer; VMMS keeps trying (turn the VM off to stop it)`;
    this.sink.setState(e, EnabledState.Unknown, e.lastError, HealthState.MajorFailure);
    e.pid = rec.pid;
    void this.keepReattaching(e, rec);
  }

  /** Connects (when not connected) and asks STATUS; true when the worker answered and its state was adopted. */
  private async askStatus(e: VmEntry, rec: WorkerRecord, reason: string): Promise<boolean> {
    try {
      if (!e.conn) {
        // A worker still starting (its VMMS died just after launching it) has no socket yet.
        const conn = await VmwpConnection.open(this.paths.workerSocket(e.def.id), this.t.reattachTimeoutMs, () => workerAlive(rec));
        this.sink.attach(e, conn);
        faultPoint('reattach:connected');
      }
      // Until the worker answers, its going away is not a crash: it may be a worker on its way out.
      e.expectingExit = true;
      const status = await e.conn!.request('STATUS', this.t.reattachTimeoutMs);
      const s = workerState(status.state);
      if (s === null) throw new Error(`the worker reports state ${status.state}`);
      e.expectingExit = false;
      e.pid = status.pid ?? e.pid;
      e.runningSince = Date.now() - (status.uptimeMs ?? 0);
      if (e.state === EnabledState.Unknown) e.lastError = null;
      this.dropRestoredState(e, rec);
      this.sink.setState(e, s, reason, HealthState.Ok);
      return true;
    } catch (err) {
      e.log.warn(`worker of ${e.def.name} did not answer: ${(err as Error).message}`);
      if (e.conn?.isClosed) e.conn = null;
      return false;
    }
  }

  /**
   * A saved state older than the running worker it was found beside is the one that worker
   * restored from (its VMMS died before removing it): stale, and a later restore from it would
   * roll the disks' guest back. One written after the worker started is its own save in progress.
   */
  private dropRestoredState(e: VmEntry, rec: WorkerRecord): void {
    const file = this.paths.savedState(e.def.id);
    const started = workerStartedAtMs(rec);
    let mtime: number;
    try {
      mtime = statSync(file).mtimeMs;
    } catch {
      return;
    }
    if (started === null || mtime >= started) return;
    try {
      rmSync(file);
      e.log.warn(`removed ${file}: worker ${rec.pid} had restored from it`);
    } catch (err) {
      e.log.error(`cannot remove the stale saved state ${file}: ${(err as Error).message}`);
    }
  }

  /** Asks an unanswering worker again and again until it answers, dies, or a turn-off takes over. */
  private async keepReattaching(e: VmEntry, rec: WorkerRecord): Promise<void> {
    const gen = e.generation;
    while (e.generation === gen && e.state === EnabledState.Unknown && !this.closed) {
      if (!workerAlive(rec)) {
        e.conn?.close();
        e.conn = null;
        const problems = removeWorkerFiles(this.paths, e.def.id);
        e.lastError = [`the worker process ${rec.pid} ended without answering`, ...problems].join('; ');
        // It may have been saving when VMMS lost it: a saved state it completed is kept.
        const saved = existsSync(this.paths.savedState(e.def.id));
        this.sink.setState(e, saved ? EnabledState.Saved : EnabledState.Off, e.lastError, HealthState.CriticalFailure);
        return;
      }
      if (await this.askStatus(e, rec, `worker ${rec.pid} answers again; reattached`)) return;
      await delay(Math.min(this.t.reattachTimeoutMs, 1000));
    }
  }

  /** VMMS is closing: background retries end. */
  close(): void {
    this.closed = true;
  }

  async apply(e: VmEntry, op: LifecycleOperation, via: EnabledStateValue, to: EnabledStateValue): Promise<void> {
    const previous = e.state;
    if (op === 'turn-off') return this.turnOff(e, previous);
    const gen = e.generation;
    this.sink.setState(e, via, `${op} requested`);
    try {
      switch (op) {
        case 'start':
          await this.startWorker(e, undefined);
          break;
        case 'restore':
          await this.startWorker(e, this.paths.savedState(e.def.id));
          break;
        case 'save':
          await this.save(e);
          break;
        case 'pause':
          await this.conn(e).request('PAUSE', this.t.operationTimeoutMs);
          break;
        case 'resume':
          await this.conn(e).request('RESUME', this.t.operationTimeoutMs);
          break;
        case 'reset':
          e.clearConsole();
          await this.conn(e).request('RESET', this.t.operationTimeoutMs);
          break;
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

  /**
   * Live migration in: starts the VM's worker to boot from the stream `handOn` delivers to its
   * migration socket; resolves once the worker runs the VM (the whole transfer, so `timeoutMs`).
   */
  async startIncoming(e: VmEntry, handOn: (socketPath: string) => Promise<void>, timeoutMs: number): Promise<void> {
    const socketPath = this.paths.migrationSocket(e.def.id);
    let handing: Promise<void> | null = null;
    await this.startWorker(e, undefined, {
      socketPath,
      timeoutMs,
      started: () => {
        handing = handOn(socketPath);
        handing.catch(() => {});
      },
    });
    await handing;
  }

  private async startWorker(
    e: VmEntry,
    restoreFrom: string | undefined,
    incoming?: { socketPath: string; timeoutMs: number; started: () => void },
  ): Promise<void> {
    e.clearConsole();
    const d = e.def;
    const switches = this.switchSocket;
    const missing = nicProblems(d.devices, switches);
    if (missing.length) throw new WorkerRequestError(missing.join('; '), 'VMMS_ERR_SWITCH');
    const devices = deviceConfig(d.id, d.devices, switches, d.vpCount);
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
    // Two workers of one VM would write the same disks: never start one while another may live.
    // An arriving VM's source worker has the same VM id, and on one machine (two hosts in tests,
    // or network namespaces) the same process table: only this data directory's record counts.
    const recorded = readWorkerRecord(this.paths, d.id);
    const old = incoming ? (recorded && workerAlive(recorded) ? recorded : null) : liveWorker(this.paths, d.id);
    if (old) throw new WorkerRequestError(`a worker process (${old.pid}) of this VM is still alive; turn the VM off to stop it`, 'VMMS_ERR_WORKER_ALIVE');
    const worker = launchWorker(
      {
        dataDir: this.paths.root,
        vmId: d.id,
        name: d.name,
        memoryBytes: d.memoryBytes,
        vpCount: d.vpCount,
        imagePath: d.imagePath,
        cmdline: d.cmdline,
        devices,
        ...(restoreFrom ? { restoreFrom } : {}),
        ...(incoming ? { incomingMigration: incoming.socketPath } : {}),
        ...(this.roots ? { storageRoots: [...this.roots.dirs] } : {}),
        ...(d.guest ? { guest: d.guest } : {}),
      },
      this.paths.workerOutput(d.id),
    );
    e.pid = worker.pid;
    const startTime = processStartTime(worker.pid);
    if (startTime) writeWorkerRecord(this.paths, { vmId: d.id, pid: worker.pid, startTime, memoryBytes: d.memoryBytes, name: d.name });
    e.log.info(`worker ${worker.pid} started${restoreFrom ? ` to restore ${restoreFrom}` : ''}`);
    faultPoint(restoreFrom ? 'restore:launched' : 'start:launched');
    let conn: VmwpConnection;
    try {
      conn = await VmwpConnection.open(this.paths.workerSocket(d.id), this.t.startTimeoutMs, () => !worker.exited());
    } catch (err) {
      await this.ensureExited(e, worker.pid, 0).catch((k: Error) => e.log.error(k.message));
      e.pid = null;
      for (const p of removeWorkerFiles(this.paths, d.id)) e.log.error(p);
      const out = this.tail(d.id);
      throw new Error(`the worker did not come up: ${(err as Error).message}${out ? `\n${out}` : ''}`);
    }
    e.diskFailure = null; // a new worker has opened the disks afresh
    this.sink.attach(e, conn);
    incoming?.started();
    try {
      await conn.request('STATUS', incoming?.timeoutMs ?? this.t.startTimeoutMs);
    } catch (err) {
      // The worker reports its boot error and exits by itself.
      e.expectingExit = true;
      await Promise.race([conn.whenClosed(), delay(2000)]);
      await this.ensureExited(e, worker.pid, 2000);
      e.pid = null;
      for (const p of removeWorkerFiles(this.paths, d.id)) e.log.error(p);
      throw err;
    }
  }

  private async save(e: VmEntry): Promise<void> {
    const conn = this.conn(e);
    e.expectingExit = true;
    try {
      const saved = conn.request('SAVE', this.t.operationTimeoutMs, this.paths.savedState(e.def.id));
      faultPoint('save:requested');
      await saved;
    } catch (err) {
      // The worker resumes the guest when it cannot write the file; if it is gone, it crashed.
      e.expectingExit = false;
      if (conn.isClosed) this.sink.setState(e, EnabledState.Off, `the worker ended while saving: ${(err as Error).message}`, HealthState.CriticalFailure);
      throw err;
    }
    await Promise.race([conn.whenClosed(), delay(TURN_OFF_GRACE_MS)]);
    if (e.pid !== null) await this.ensureExited(e, e.pid, TURN_OFF_GRACE_MS);
  }

  /**
   * A checkpoint of a running (or paused) VM: the worker saves the whole VM into `savedState`
   * without stopping it and moves each drive from `from` to `to` while the VPs are parked. The
   * worker undoes a failure itself (drives back on `from`, the VM as it was) and says why.
   */
  async checkpoint(e: VmEntry, savedState: string, switches: { from: string; to: string }[]): Promise<{ pauseMs: number }> {
    const r = await this.conn(e).request('CHECKPOINT', this.t.operationTimeoutMs, { savedStatePath: savedState, diskSwitches: switches });
    return { pauseMs: r.pauseMs ?? 0 };
  }

  /**
   * Merges the running (or paused) VM's drive on `child` into its parent `parent` without
   * stopping it; the worker answers once the drive is on `parent` and `child` is deleted, or
   * fails with the drive still on `child` and the chain as it was. `repoint`: the files built on
   * `child` (deeper in the chain), pointed at `parent`, each sent as one more switch to `parent`.
   */
  async mergeDisk(e: VmEntry, child: string, parent: string, repoint: readonly string[] = []): Promise<{ pauseMs: number }> {
    // A merge copies the child's data: give it an hour before calling the worker silent.
    const diskSwitches = [child, ...repoint].map((from) => ({ from, to: parent }));
    const r = await this.conn(e).request('MERGE_DISK', Math.max(this.t.operationTimeoutMs, 3_600_000), { diskSwitches });
    return { pauseMs: r.pauseMs ?? 0 };
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
    if (e.pid !== null) await this.ensureExited(e, e.pid, TURN_OFF_GRACE_MS);
    if (e.state !== EnabledState.Off) await this.turnOff(e, EnabledState.Stopping);
    e.log.info(outcome === 'timed-out' ? 'the guest did not shut down in time; the VM was turned off' : 'the guest shut down');
  }

  /**
   * Works from any state: asks the worker to stop, kills it if it does not, drops a saved state.
   * Always ends in Off once the worker is gone; files that cannot be removed (a read-only data
   * directory, a directory where the saved state should be) are reported as the VM's last error
   * and its health, never left as a turn-off that does not finish.
   */
  private async turnOff(e: VmEntry, previous: EnabledStateValue): Promise<void> {
    e.generation++;
    this.sink.setState(e, EnabledState.Stopping, `turn-off requested in ${stateName(previous)}`);
    const conn = e.conn;
    const pid = e.pid;
    e.expectingExit = true;
    let answered = false;
    // An Unknown VM's worker has already not answered: it is killed without another wait.
    if (conn && previous !== EnabledState.Unknown) {
      answered = await Promise.race([
        conn.request('TURN_OFF', TURN_OFF_GRACE_MS).then(
          () => true,
          () => false,
        ),
        conn.whenClosed().then(() => true),
      ]);
      if (answered) await Promise.race([conn.whenClosed(), delay(TURN_OFF_GRACE_MS)]);
    }
    // A worker that answered exits within moments; one that did not answer is killed now.
    let problems: string[] = [];
    try {
      if (pid !== null) await this.ensureExited(e, pid, answered ? TURN_OFF_GRACE_MS : 0);
    } catch (err) {
      problems.push((err as Error).message);
    }
    conn?.close();
    e.conn = null;
    if (problems.length === 0) problems = removeWorkerFiles(this.paths, e.def.id);
    try {
      rmSync(this.paths.savedState(e.def.id), { force: true });
    } catch (err) {
      problems.push(`cannot remove the saved state ${this.paths.savedState(e.def.id)}: ${(err as Error).message}`);
    }
    if (problems.length === 0) return this.sink.setState(e, EnabledState.Off, 'turned off', HealthState.Ok);
    const message = `turned off, but ${problems.join('; ')}`;
    this.sink.setState(e, EnabledState.Off, message, HealthState.MajorFailure);
    throw new WorkerRequestError(message, 'VMMS_ERR_CLEANUP');
  }

  /**
   * Waits up to `graceMs` for the worker to exit by itself (its log flushed), then kills it —
   * by its pid only while that pid is still the recorded worker (worker-record.ts). Throws when
   * the worker survives SIGKILL (not ours to kill, or a kernel that will not let it go).
   */
  private async ensureExited(e: VmEntry, pid: number, graceMs: number): Promise<void> {
    const rec = readWorkerRecord(this.paths, e.def.id);
    const alive = rec && rec.pid === pid ? () => workerAlive(rec) : () => processRunning(pid);
    const deadline = Date.now() + graceMs;
    while (alive() && Date.now() < deadline) await delay(10);
    if (alive()) {
      e.log.warn(`worker ${pid} did not exit; killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
      for (let i = 0; i < 200 && alive(); i++) await delay(10);
      if (alive()) throw new Error(`the worker process ${pid} does not exit`);
    }
    // Dead now; give its parent (this process, for a worker it started) a moment to reap it, so
    // the pid is free when the caller looks. A zombie nobody reaps is not waited for longer.
    for (let i = 0; i < 50 && processAlive(pid); i++) await delay(10);
  }

  /**
   * A worker's socket closed: once the process is confirmed gone, its socket (which a crashed
   * worker leaves behind) and record go too — unless a new worker of the VM owns them by now.
   */
  async forget(e: VmEntry, pid: number | null): Promise<void> {
    if (pid === null) return;
    for (let i = 0; i < 200 && processRunning(pid); i++) await delay(10);
    if (processRunning(pid)) {
      e.log.warn(`worker ${pid} closed its socket but is still running`);
      return;
    }
    const rec = readWorkerRecord(this.paths, e.def.id);
    if (rec && rec.pid !== pid) return;
    if (!rec && e.pid !== null && e.pid !== pid) return;
    const problems = removeWorkerFiles(this.paths, e.def.id);
    for (const p of problems) e.log.error(p);
  }

  private tail(id: string): string {
    try {
      return readFileSync(this.paths.workerOutput(id), 'utf8').split('\n').slice(-12).join('\n').trim();
    } catch {
      return '';
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
