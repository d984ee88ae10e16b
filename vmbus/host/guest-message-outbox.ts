/**
 * Host → guest control messages on their way into the guest's SINT2 slot. HvCallPostMessage
 * fails with HV_STATUS_INSUFFICIENT_BUFFERS while the target port's 16 buffers (or the VP's
 * SINT queue) are full, i.e. the guest has not yet consumed earlier messages (TLFS message
 * buffers, 16 per port). VMBus messages must not be lost, so they wait here in order and are retried when the
 * guest shows activity and on a short timer. Other failures (the guest disabled its SynIC) are
 * the guest's doing: reported, and the message is dropped, as Hyper-V's post would fail.
 *
 * What waits here is bounded by back-pressure, not by dropping: the binding takes no further
 * guest message while `full` (the guest's own HvCallPostMessage then fails with
 * INSUFFICIENT_BUFFERS once its port's 16 buffers fill, as on Hyper-V), and one guest message
 * produces at most `maxAnswersPerMessage` host messages. So at most
 * `acceptBelow - 1 + maxAnswersPerMessage + hostInitiated` messages ever wait; `capacity` is that
 * figure, and a send beyond it (a bug, not a guest's doing) is counted as lost and reported.
 */
import { HvStatus } from '../../abi/hv-status.ts';

export type PostFn = (message: Uint8Array, vp: number) => HvStatus;

const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 20;

/** Host messages waiting above which the binding stops taking guest messages. */
export const OUTBOX_ACCEPT_BELOW = 32;

export class GuestMessageOutbox {
  private readonly messages: (Uint8Array | undefined)[];
  private readonly vps: Int32Array;
  private head = 0;
  private count = 0;
  private timer: NodeJS.Timeout | null = null;
  private delay = RETRY_MIN_MS;
  private closed = false;
  /** Saving: nothing is posted until release(), so what waits here is exactly what the saved state holds. */
  private held = false;
  sent = 0;
  /** Posts refused with INSUFFICIENT_BUFFERS and retried later. */
  deferred = 0;
  dropped = 0;
  /** Most messages ever waiting at once. */
  highWater = 0;

  /**
   * `capacity`: the most messages that can ever wait (see above); `acceptBelow`: the binding takes
   * guest messages only while fewer than this wait.
   */
  constructor(
    private readonly post: PostFn,
    private readonly onDrop: (status: HvStatus, vp: number) => void,
    readonly capacity = 1024,
    readonly acceptBelow = OUTBOX_ACCEPT_BELOW,
  ) {
    if (!(acceptBelow >= 1 && capacity >= acceptBelow)) throw new RangeError(`outbox capacity ${capacity} must be at least acceptBelow ${acceptBelow} ≥ 1`);
    this.messages = new Array<Uint8Array | undefined>(capacity);
    this.vps = new Int32Array(capacity);
  }

  get pending(): number {
    return this.count;
  }

  /** True while the guest has left so much unconsumed that no further guest message is taken. */
  get full(): boolean {
    return this.count >= this.acceptBelow;
  }

  send(message: Uint8Array, vp: number): void {
    if (this.closed) return;
    if (this.count === this.capacity) {
      this.dropped++;
      this.onDrop(HvStatus.InsufficientBuffers, vp);
      return;
    }
    const at = (this.head + this.count) % this.capacity;
    this.messages[at] = message;
    this.vps[at] = vp;
    this.count++;
    if (this.count > this.highWater) this.highWater = this.count;
    if (this.count === 1) this.flush();
  }

  /** Posts what is queued, oldest first, until the hypervisor has no buffers. */
  flush(): void {
    while (this.count > 0 && !this.closed && !this.held) {
      const message = this.messages[this.head]!,
        vp = this.vps[this.head];
      const status = this.post(message, vp);
      if (status === HvStatus.InsufficientBuffers) {
        this.deferred++;
        this.arm();
        return;
      }
      this.messages[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      if (status === HvStatus.Success) this.sent++;
      else {
        this.dropped++;
        this.onDrop(status, vp);
      }
    }
    this.delay = RETRY_MIN_MS;
  }

  /** The messages waiting, oldest first, with their target VPs (copies). */
  waiting(): { vp: number; message: Uint8Array }[] {
    const out: { vp: number; message: Uint8Array }[] = [];
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) % this.capacity;
      out.push({ vp: this.vps[at]!, message: this.messages[at]!.slice() });
    }
    return out;
  }

  /** Stops posting (a save is being taken); messages sent meanwhile wait, in order. */
  hold(): void {
    this.held = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  release(): void {
    this.held = false;
    this.flush();
  }

  private arm(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
      this.flush();
    }, this.delay);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    this.messages.fill(undefined);
    this.count = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
