/**
 * COM1 output on its way from the device thread to VMMS, bounded: a guest decides how much it
 * writes (one `rep outsb` may name its whole memory), the host decides how much it keeps. A
 * fixed byte ring holds the newest CONSOLE_PENDING_MAX bytes; older ones are dropped and
 * counted, as a serial console whose reader is slower than the line drops characters. A write
 * copies at most the ring's size, however long the guest's buffer, and reading out hands back
 * pieces no larger than the caller asks for, so no message or IPC frame grows with the guest.
 */

/** Console bytes the device thread holds for VMMS at most. */
export const CONSOLE_PENDING_MAX = 1 << 20;
/** Largest piece posted to the worker's main thread at once. */
export const CONSOLE_MESSAGE_MAX = 256 * 1024;
/** Bytes posted but not yet acknowledged by the main thread, at most (then they wait here). */
export const CONSOLE_IN_FLIGHT_MAX = 1 << 20;

export class ConsoleOutputBuffer {
  private readonly ring: Uint8Array;
  private head = 0;
  private length = 0;
  /** Bytes the guest wrote that were dropped before they could be sent (cumulative). */
  dropped = 0;

  constructor(readonly capacity = CONSOLE_PENDING_MAX) {
    this.ring = new Uint8Array(capacity);
  }

  get pending(): number {
    return this.length;
  }

  /** Appends `src` (a view of guest memory: only what is kept is copied), dropping the oldest bytes beyond capacity. */
  write(src: Uint8Array): void {
    const cap = this.capacity;
    if (src.length >= cap) {
      this.dropped += this.length + src.length - cap;
      this.ring.set(src.subarray(src.length - cap));
      this.head = 0;
      this.length = cap;
      return;
    }
    const overflow = this.length + src.length - cap;
    if (overflow > 0) {
      this.dropped += overflow;
      this.head = (this.head + overflow) % cap;
      this.length -= overflow;
    }
    const at = (this.head + this.length) % cap;
    const first = Math.min(src.length, cap - at);
    this.ring.set(src.subarray(0, first), at);
    this.ring.set(src.subarray(first), 0);
    this.length += src.length;
  }

  /** Takes up to `max` of the oldest bytes (a copy), or null when nothing is pending. */
  take(max: number): Uint8Array | null {
    const n = Math.min(this.length, max);
    if (n <= 0) return null;
    const out = new Uint8Array(n);
    const first = Math.min(n, this.capacity - this.head);
    out.set(this.ring.subarray(this.head, this.head + first));
    out.set(this.ring.subarray(0, n - first), first);
    this.head = (this.head + n) % this.capacity;
    this.length -= n;
    return out;
  }
}
