/**
 * Rate limit for log lines a guest can cause (a refused VMBus message, a bad ring, a device
 * error on its access): each is worth one line, but a guest repeating it must not fill the
 * host's disk or the worker's queues. Per kind of message, at most `burst` lines pass in each
 * `intervalMs`; the rest are counted, and once the interval is over one summary line says how
 * many similar messages were suppressed (Linux's printk_ratelimit works the same way). Kinds
 * beyond `maxKinds` share one bucket, so the table itself is bounded.
 */

export interface GuestLogLimits {
  burst: number;
  intervalMs: number;
  maxKinds: number;
}

export const DEFAULT_GUEST_LOG_LIMITS: GuestLogLimits = { burst: 10, intervalMs: 10_000, maxKinds: 64 };

interface Bucket {
  windowStart: number;
  passed: number;
  suppressed: number;
}

const OTHER_KIND = '(other)';

/** The kind of a message: what precedes its first ':' ("vmbus VMBUS_BAD_MESSAGE"), at most 64 characters. */
export function messageKind(message: string): string {
  const colon = message.indexOf(':');
  return (colon < 0 ? message : message.slice(0, colon)).slice(0, 64);
}

export class GuestLogLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Lines suppressed so far, all kinds (cumulative). */
  suppressed = 0;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly limits: GuestLogLimits = DEFAULT_GUEST_LOG_LIMITS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  log(message: string): void {
    let kind = messageKind(message);
    if (!this.buckets.has(kind) && this.buckets.size >= this.limits.maxKinds) kind = OTHER_KIND;
    const t = this.now();
    let b = this.buckets.get(kind);
    if (!b) this.buckets.set(kind, (b = { windowStart: t, passed: 0, suppressed: 0 }));
    if (t - b.windowStart >= this.limits.intervalMs) this.closeWindow(kind, b, t);
    if (b.passed < this.limits.burst) {
      b.passed++;
      this.emit(message);
      return;
    }
    b.suppressed++;
    this.suppressed++;
  }

  /** Emits the summaries of windows that are over (call now and then, and before stopping with `all`). */
  flush(all = false): void {
    const t = this.now();
    for (const [kind, b] of this.buckets) {
      if (all || t - b.windowStart >= this.limits.intervalMs) this.closeWindow(kind, b, t);
      if (b.passed === 0 && b.suppressed === 0) this.buckets.delete(kind);
    }
  }

  private closeWindow(kind: string, b: Bucket, t: number): void {
    if (b.suppressed > 0) {
      this.emit(`${kind}: suppressed ${b.suppressed} similar message${b.suppressed === 1 ? '' : 's'} in the last ${Math.round((t - b.windowStart) / 1000)} s`);
    }
    b.windowStart = t;
    b.passed = 0;
    b.suppressed = 0;
  }
}
