/**
 * The poll window of a storvsp channel. A guest with a deep queue submits again as soon as it
 * reaps completions; if the host went back to waiting for a signal after every batch, each of
 * those submissions would cost the guest an HvCallSignalEvent exit and the host a wake-up.
 * Instead, after a batch that carried requests the host keeps the request ring's interrupt_mask
 * set (the guest then does not signal: Linux hv_ringbuffer_write) and keeps looking at the ring for a
 * bounded spin on the next turn of the event loop. Requests found are drained as if signalled;
 * when the spin ends with the ring empty, the mask is cleared and the ring re-checked once
 * (Linux hv_end_read), so a request written meanwhile is never left without a signal.
 *
 * The spin is bounded per idle period and each poll runs from setImmediate, so other channels,
 * control messages and timers on the thread get their turn between polls.
 */
import type { VspChannel } from '../../../vmbus/host/vsp-channel.ts';

/** Long enough to cover a guest's reap-and-resubmit turnaround, short enough to cost little when it goes idle. */
export const DEFAULT_POLL_SPIN_MICROS = 50;

/**
 * Windows that end idle in a row before polling pauses, and for how many batches: a guest slower
 * than the window (or a host with no core to spare — the spin then takes CPU from the VP it waits
 * for) gains nothing from it, so the host goes back to signals until the backoff runs out.
 */
const IDLE_WINDOWS_BEFORE_BACKOFF = 4;
const BACKOFF_BATCHES = 32;

export class StorVspPoller {
  private scheduled = false;
  private idleStreak = 0;
  private backoff = 0;
  private stopped = false;
  /** Poll windows that found requests (drained without a guest signal). */
  hits = 0;
  /** Poll windows that ended idle (the ring unmasked again). */
  misses = 0;

  constructor(
    private readonly channel: VspChannel,
    private readonly spinMicros: number,
    private readonly onPolledDrain: () => void,
  ) {}

  /** A batch carried requests: look at the ring again soon. */
  arm(): void {
    if (this.spinMicros <= 0 || this.scheduled || this.stopped) return;
    if (this.backoff > 0) {
      this.backoff--;
      return;
    }
    this.scheduled = true;
    setImmediate(() => this.poll());
  }

  /** The channel closed: no more polls (a scheduled one sees `stopped` and returns). */
  stop(): void {
    this.stopped = true;
  }

  private poll(): void {
    this.scheduled = false;
    const ch = this.channel;
    // Held while a save is taken: the ring (interrupt_mask included) is not touched; resumeAfterSave drains.
    if (this.stopped || ch.state !== 'open' || ch.held) return;
    const inbound = ch.rings.inbound;
    inbound.maskInterrupt();
    const deadline = performance.now() + this.spinMicros / 1000;
    do {
      if (inbound.writeIndex() !== inbound.readIndex()) {
        this.hits++;
        this.idleStreak = 0;
        this.onPolledDrain();
        ch.drain(); // masks, drains, unmasks and re-checks; its batch re-arms the window
        return;
      }
    } while (performance.now() < deadline);
    this.misses++;
    if (++this.idleStreak >= IDLE_WINDOWS_BEFORE_BACKOFF) {
      this.idleStreak = 0;
      this.backoff = BACKOFF_BATCHES;
    }
    if (inbound.unmaskInterrupt()) {
      this.onPolledDrain();
      ch.drain();
    }
  }
}
