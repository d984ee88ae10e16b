/**
 * A delay after failed logins, per key (a client address, a user name): each failure doubles the
 * wait before that key's next attempt is looked at (from `baseMs` up to `maxMs`); a success
 * clears it. Waiting is a timer, never a blocked thread, so other clients are served meanwhile.
 * Attempts in flight count as failures to come: parallel attempts queue behind each other with
 * the delays they would have met one after another, so opening many connections buys no extra
 * guesses. The table is bounded; the oldest key is dropped first.
 */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  /** Addresses remembered at most (each costs a few dozen bytes). */
  maxAddresses?: number;
  /** A clean period after which an address's failures are forgotten. */
  forgetAfterMs?: number;
}

interface AddressState {
  failures: number;
  pending: number;
  nextAt: number;
  lastFailure: number;
}

export class LoginBackoff {
  private readonly table = new Map<string, AddressState>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxAddresses: number;
  private readonly forgetAfterMs: number;

  constructor(
    o: BackoffOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.baseMs = o.baseMs ?? 250;
    this.maxMs = o.maxMs ?? 4000;
    this.maxAddresses = o.maxAddresses ?? 4096;
    this.forgetAfterMs = o.forgetAfterMs ?? 15 * 60_000;
  }

  /** The delay the address's next failure will add. */
  delayAfter(failures: number): number {
    return failures <= 0 ? 0 : Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failures - 1, 20));
  }

  private state(address: string, now: number): AddressState {
    let s = this.table.get(address);
    if (s && s.pending === 0 && now - s.lastFailure > this.forgetAfterMs) {
      this.table.delete(address);
      s = undefined;
    }
    if (!s) {
      if (this.table.size >= this.maxAddresses) this.table.delete(this.table.keys().next().value!);
      s = { failures: 0, pending: 0, nextAt: now, lastFailure: now };
      this.table.set(address, s);
    }
    return s;
  }

  /** How long this attempt must wait before it is checked; reserves its slot (end it with failed or succeeded). */
  reserve(address: string): number {
    const now = this.now();
    const s = this.state(address, now);
    const at = Math.max(now, s.nextAt);
    s.pending++;
    s.nextAt = at + this.delayAfter(s.failures + s.pending);
    return at - now;
  }

  async wait(address: string): Promise<void> {
    const ms = this.reserve(address);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  failed(address: string): void {
    const now = this.now();
    const s = this.state(address, now);
    this.table.delete(address); // re-insert: the map's order is the age order
    s.failures++;
    s.pending = Math.max(0, s.pending - 1);
    s.lastFailure = now;
    s.nextAt = Math.max(s.nextAt, now + this.delayAfter(s.failures));
    this.table.set(address, s);
  }

  succeeded(address: string): void {
    const s = this.table.get(address);
    if (!s) return;
    s.pending = Math.max(0, s.pending - 1);
    s.failures = 0;
    if (s.pending === 0) this.table.delete(address);
  }

  get size(): number {
    return this.table.size;
  }

  failuresOf(address: string): number {
    return this.table.get(address)?.failures ?? 0;
  }
}
