/**
 * Long disk work (convert, merge, compact) written once as a generator of steps, each step a
 * safe point — no metadata change half made, no data piece half written — and run two ways:
 * to its end in one go (`runSteps`, for callers that must not let anything in between, such as
 * the checkpoint collection), or a step per turn of the event loop, stopped at the next safe
 * point when a signal aborts (`runCancellable`, for jobs and the CLI). A stop is thrown into the
 * generator, whose own catch blocks undo what it made (a partial copy removed, a merge's child
 * kept linked) before the `DiskJobCancelled` error leaves.
 */
import { HvError } from '../../hypervisor/hv-error.ts';

export const DiskJobError = { Cancelled: 'HV_ERR_DISK_JOB_CANCELLED' } as const;

/** The work stopped at a safe point because it was asked to; the message says what was left. */
export class DiskJobCancelled extends HvError {
  constructor(message: string) {
    super(DiskJobError.Cancelled, message);
  }
}

/** A step of disk work: each `yield` is a safe point. */
export type DiskSteps<T> = Generator<void, T, void>;

/** Bytes of disk looked at between two safe points a job reports (empty ranges count at this rate too). */
export const STEP_BYTES = 4 * 1024 * 1024;

/** Runs the steps to their end without giving the event loop a turn. */
export function runSteps<T>(steps: DiskSteps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs a step per turn of the event loop; once `signal` aborts, a DiskJobCancelled is thrown in
 * at the next safe point (the generator cleans up and rethrows it, or finishes if it was past
 * the point of no return).
 */
export async function runCancellable<T>(steps: DiskSteps<T>, signal?: AbortSignal, what = 'the work'): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    await new Promise<void>((res) => setImmediate(res));
    r = signal?.aborted ? steps.throw(new DiskJobCancelled(`${what} was cancelled`)) : steps.next();
  }
  return r.value;
}
