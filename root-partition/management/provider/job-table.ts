/**
 * Msvm_ConcreteJob instances for the methods that answer 4096 (Msvm_ConcreteJob, Microsoft Docs): each job
 * has a stable InstanceID, moves New → Running → Completed or Exception (ErrorCode = the Hyper-V
 * return code, ErrorDescription = why), and is kept for a retention window after it ends so that
 * a client that polls late still reads its outcome. Every
 * change is pushed to the listener as an intrinsic event.
 */
import { randomUUID } from 'node:crypto';
import type { CimInstance } from '../cim/instance.ts';
import type { CimObjectPath } from '../cim/object-path.ts';
import type { CimInstanceEvent } from '../cim/provider.ts';
import type { CimSchema } from '../cim/schema.ts';
import { dmtfDatetime } from './vm-instances.ts';

export const JobState = { New: 2, Starting: 3, Running: 4, Completed: 7, Terminated: 8, Killed: 9, Exception: 10 } as const;

/** How long a finished job stays readable (Hyper-V's default TimeBeforeRemoval is 5 minutes). */
export const DEFAULT_JOB_RETENTION_MS = 5 * 60_000;
/** Jobs kept at most, the oldest finished ones dropped first: a client cannot grow the table. */
export const MAX_JOBS = 1000;

interface JobRecord {
  readonly id: string;
  readonly description: string;
  readonly affected: CimObjectPath | null;
  readonly submitted: Date;
  state: number;
  percent: number;
  errorCode: number;
  errorDescription: string | null;
  changed: Date;
  finished: Date | null;
  removal: NodeJS.Timeout | null;
  /** What the job is doing now (JobStatus while it runs), when its owner says. */
  status: string | null;
  /** Asks the work to stop (RequestStateChange 4/5 on the job); null: the job runs to its end. */
  cancel: (() => void) | null;
}

/** DMTF interval text (DSP0004): ddddddddhhmmss.mmmmmm:000. */
export function dmtfInterval(ms: number): string {
  const p = (n: number, w = 2) => String(Math.floor(n)).padStart(w, '0');
  const s = ms / 1000;
  return `${p(s / 86400, 8)}${p((s % 86400) / 3600)}${p((s % 3600) / 60)}${p(s % 60)}.${p((ms % 1000) * 1000, 6)}:000`;
}

export class JobTable {
  private readonly jobs = new Map<string, JobRecord>();

  constructor(
    private readonly schema: CimSchema,
    private readonly emit: (event: CimInstanceEvent) => void,
    private readonly retentionMs = DEFAULT_JOB_RETENTION_MS,
  ) {}

  /**
   * A new job, already Running (the work starts as the method returns). With `cancel` it is
   * Cancellable: RequestStateChange 4 (Terminate) or 5 (Kill) on it calls `cancel`, and the owner
   * ends it with `terminated` once the work has stopped.
   */
  start(description: string, affected: CimObjectPath | null, cancel: (() => void) | null = null): CimObjectPath {
    this.trim();
    const now = new Date();
    const job: JobRecord = {
      id: randomUUID().toUpperCase(),
      description,
      affected,
      submitted: now,
      state: JobState.Running,
      percent: 0,
      errorCode: 0,
      errorDescription: null,
      changed: now,
      finished: null,
      removal: null,
      status: null,
      cancel,
    };
    this.jobs.set(job.id, job);
    const instance = this.instanceOf(job);
    this.emit({ kind: 'creation', target: instance, time: now });
    return this.schema.pathOf(instance);
  }

  /** Percent done (never backwards, 100 only at the end) and, when given, what it is doing (JobStatus). */
  progress(path: CimObjectPath, percent: number, status?: string): void {
    const id = path.keys.find((k) => k.name === 'InstanceID')?.value;
    const j = typeof id === 'string' ? this.jobs.get(id) : undefined;
    const next = Math.min(99, Math.floor(percent));
    if (j && next <= j.percent && (status === undefined || status === j.status)) return;
    this.update(path, (job) => {
      job.percent = Math.max(job.percent, next);
      if (status !== undefined) job.status = status;
    });
  }

  /**
   * RequestStateChange on a job: 4 Terminate and 5 Kill ask a Cancellable job's work to stop
   * (0: asked; the job ends Terminated when the work has stopped, or Completed if it was past
   * the point of no return); 4097 for a job that cannot be cancelled or has ended, 32773 otherwise.
   */
  requestStateChange(instanceId: string, requested: unknown): number {
    const j = this.jobs.get(String(instanceId).toUpperCase());
    if (!j) return 32773;
    if (requested !== 4 && requested !== 5) return 32773;
    if (!j.cancel || j.finished) return 4097;
    j.cancel();
    return 0;
  }

  /** Ended by a cancel: Terminated, with the reason. */
  terminated(path: CimObjectPath, description: string): void {
    this.update(path, (j) => {
      j.state = JobState.Terminated;
      j.errorCode = 0;
      j.errorDescription = description;
      this.ended(j);
    });
  }

  /** Completed with 0, or Exception with the Hyper-V return code and a sentence. */
  finish(path: CimObjectPath, errorCode: number, errorDescription?: string): void {
    this.update(path, (j) => {
      j.state = errorCode === 0 ? JobState.Completed : JobState.Exception;
      j.percent = 100;
      j.errorCode = errorCode;
      j.errorDescription = errorCode === 0 ? null : (errorDescription ?? `failed with return code ${errorCode}`);
      this.ended(j);
    });
  }

  private ended(j: JobRecord): void {
    j.finished = new Date();
    j.cancel = null;
    j.removal = setTimeout(() => this.drop(j.id), this.retentionMs);
    j.removal.unref();
  }

  list(): CimInstance[] {
    return [...this.jobs.values()].map((j) => this.instanceOf(j));
  }

  get(instanceId: string): CimInstance | null {
    const j = this.jobs.get(String(instanceId).toUpperCase());
    return j ? this.instanceOf(j) : null;
  }

  /** Msvm_AffectedJobElement: each job and the element it acts on. */
  affectedElements(): CimInstance[] {
    return [...this.jobs.values()]
      .filter((j) => j.affected)
      .map((j) =>
        this.schema.createInstance('Msvm_AffectedJobElement', {
          AffectedElement: j.affected,
          AffectingElement: this.schema.pathOf(this.instanceOf(j)),
          ElementEffects: [5],
        }),
      );
  }

  dispose(): void {
    for (const j of this.jobs.values()) if (j.removal) clearTimeout(j.removal);
    this.jobs.clear();
  }

  private update(path: CimObjectPath, change: (j: JobRecord) => void): void {
    const id = path.keys.find((k) => k.name === 'InstanceID')?.value;
    const job = typeof id === 'string' ? this.jobs.get(id) : undefined;
    if (!job || job.finished) return;
    const previous = this.instanceOf(job);
    change(job);
    job.changed = new Date();
    this.emit({ kind: 'modification', target: this.instanceOf(job), previous, time: job.changed });
  }

  private drop(id: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    if (job.removal) clearTimeout(job.removal);
    this.jobs.delete(id);
    this.emit({ kind: 'deletion', target: this.instanceOf(job), time: new Date() });
  }

  private trim(): void {
    if (this.jobs.size < MAX_JOBS) return;
    const oldest = [...this.jobs.values()].filter((j) => j.finished).sort((a, b) => a.finished!.getTime() - b.finished!.getTime())[0];
    if (oldest) this.drop(oldest.id);
  }

  private instanceOf(j: JobRecord): CimInstance {
    const end = j.finished ?? new Date();
    return this.schema.createInstance('Msvm_ConcreteJob', {
      InstanceID: j.id,
      Caption: j.description,
      Description: j.description,
      ElementName: j.description,
      JobState: j.state,
      JobStatus:
        j.state === JobState.Completed
          ? 'Job completed successfully'
          : j.state === JobState.Exception || j.state === JobState.Terminated
            ? j.errorDescription
            : (j.status ?? 'Job is running'),
      PercentComplete: j.percent,
      ErrorCode: j.errorCode,
      ErrorDescription: j.errorDescription,
      TimeSubmitted: dmtfDatetime(j.submitted),
      StartTime: dmtfDatetime(j.submitted),
      ElapsedTime: dmtfInterval(end.getTime() - j.submitted.getTime()),
      TimeOfLastStateChange: dmtfDatetime(j.changed),
      TimeBeforeRemoval: dmtfInterval(this.retentionMs),
      DeleteOnCompletion: false,
      Cancellable: j.cancel !== null,
      HealthState: j.state === JobState.Exception ? 20 : 5,
      OperationalStatus: [j.state === JobState.Exception ? 6 : 2],
    });
  }
}
