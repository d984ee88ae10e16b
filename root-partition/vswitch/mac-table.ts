/**
 * The switch's learned addresses: MAC → port, with the time each was last seen. An entry older
 * than the aging time is treated as unknown (IEEE 802.1D default 300 s). The table is bounded: a
 * guest that sends from endless forged source addresses (with spoofing allowed) evicts the
 * oldest entries instead of growing the host's memory.
 */
export const DEFAULT_AGING_MS = 300_000;
export const DEFAULT_MAC_TABLE_LIMIT = 4096;

export interface MacTableEntry {
  port: number;
  lastSeenMs: number;
}

export class MacTable {
  // A Map iterates in insertion order; re-inserting on every sighting keeps it ordered by
  // last-seen time, so the oldest entry is always first and eviction is O(1).
  private readonly entries = new Map<string, MacTableEntry>();
  /** Entries dropped to stay within the limit (a sign of a MAC flood). */
  evictions = 0;

  constructor(
    readonly agingMs = DEFAULT_AGING_MS,
    readonly limit = DEFAULT_MAC_TABLE_LIMIT,
  ) {
    if (!(agingMs > 0) || !Number.isInteger(limit) || limit < 1) throw new RangeError('MAC table: aging must be > 0 and the limit a positive integer');
  }

  get size(): number {
    return this.entries.size;
  }

  /** Records that `mac` was seen entering `port` at `nowMs` (a move to another port updates it). */
  learn(mac: string, port: number, nowMs: number): void {
    this.entries.delete(mac);
    this.entries.set(mac, { port, lastSeenMs: nowMs });
    while (this.entries.size > this.limit) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.evictions++;
    }
  }

  /** The port `mac` was last seen on, unless that entry has aged out. */
  lookup(mac: string, nowMs: number): number | undefined {
    const e = this.entries.get(mac);
    if (!e) return undefined;
    if (nowMs - e.lastSeenMs >= this.agingMs) {
      this.entries.delete(mac);
      return undefined;
    }
    return e.port;
  }

  /** Removes entries that aged out; returns how many. */
  sweep(nowMs: number): number {
    let n = 0;
    for (const [mac, e] of this.entries) {
      if (nowMs - e.lastSeenMs < this.agingMs) break; // ordered by last-seen: the rest are younger
      this.entries.delete(mac);
      n++;
    }
    return n;
  }

  /** Forgets every address learned on `port` (the port went away). */
  forgetPort(port: number): void {
    for (const [mac, e] of this.entries) if (e.port === port) this.entries.delete(mac);
  }

  snapshot(): { mac: string; port: number; lastSeenMs: number }[] {
    return [...this.entries].map(([mac, e]) => ({ mac, ...e }));
  }
}
