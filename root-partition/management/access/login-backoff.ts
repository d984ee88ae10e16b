/**
 * A delay after failed logins, per client address: each failure doubles the wait before that
 * address's next attempt is looked at (from `baseMs` up to `maxMs`); a success clears it. Waiting
 * is a timer, never a blocked thread, so other clients are served meanwhile. Parallel attempts
 * from one address queue behind each other (each takes the next slot), so opening many
 * connections buys no extra guesses. The table is bounded; the oldest address is dropped first.
 */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  /** Addresses remembered at most (each costs a few dozen bytes). */
  maxAddresses?: number;
  /** A clean period after which an address's failures are forgotten. */
  forgetAfterMs?: number;
}

interface AddressState { failures: number; nextAt: number; lastFailure: number }

export class LoginBackoff {
  private readonly table = new Map<string, AddressState>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxAddresses: number;
  private readonly forgetAfterMs: number;

  constructor(o: BackoffOptions = {}, private readonly now: () => number = Date.now) {
    this.baseMs = o.baseMs ?? 250;
    this.maxMs = o.maxMs ?? 4000;
    this.maxAddresses = o.maxAddresses ?? 4096;
    this.forgetAfterMs = o.forgetAfterMs ?? 15 * 60_000;
  }

  /** The delay the address's next failure will add. */
  delayAfter(failures: number): number {
    return failures <= 0 ? 0 : Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failures - 1, 20));
  }

  /** How long this attempt must wait before it is checked; reserves its slot. */
  reserve(address: string): number {
    const s = this.table.get(address);
    if (!s) return 0;
    const now = this.now();
    if (now - s.lastFailure > this.forgetAfterMs) { this.table.delete(address); return 0; }
    const at = Math.max(now, s.nextAt);
    s.nextAt = at + this.delayAfter(s.failures);
    return at - now;
  }

  async wait(address: string): Promise<void> {
    const ms = this.reserve(address);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  failed(address: string): void {
    const now = this.now();
    let s = this.table.get(address);
    if (!s) {
      if (this.table.size >= this.maxAddresses) this.table.delete(this.table.keys().next().value!);
      s = { failures: 0, nextAt: now, lastFailure: now };
    }
    this.table.delete(address); // re-insert: the map's order is the age order
    s.failures++;
    s.lastFailure = now;
    s.nextAt = Math.max(s.nextAt, now + this.delayAfter(s.failures));
    this.table.set(address, s);
  }

  succeeded(address: string): void {
    this.table.delete(address);
  }

  get size(): number {
    return this.table.size;
  }

  failuresOf(address: string): number {
    return this.table.get(address)?.failures ?? 0;
  }
}
