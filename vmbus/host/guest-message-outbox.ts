/**
 * Host → guest control messages on their way into the guest's SINT2 slot. HvCallPostMessage
 * fails with HV_STATUS_INSUFFICIENT_BUFFERS while the target port's 16 buffers (or the VP's
 * SINT queue) are full, i.e. the guest has not yet consumed earlier messages (reference §2.3,
 * §2.6). VMBus messages must not be lost, so they wait here in order and are retried when the
 * guest shows activity and on a short timer. Other failures (the guest disabled its SynIC) are
 * the guest's doing: reported, and the message is dropped, as Hyper-V's post would fail.
 */
import { HvStatus } from '../../abi/hv-status.ts';

export type PostFn = (message: Uint8Array, vp: number) => HvStatus;

const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 20;

export class GuestMessageOutbox {
  private readonly queue: { message: Uint8Array; vp: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private delay = RETRY_MIN_MS;
  private closed = false;
  sent = 0;
  /** Posts refused with INSUFFICIENT_BUFFERS and retried later. */
  deferred = 0;
  dropped = 0;

  constructor(private readonly post: PostFn, private readonly onDrop: (status: HvStatus, vp: number) => void) {}

  get pending(): number { return this.queue.length; }

  send(message: Uint8Array, vp: number): void {
    if (this.closed) return;
    this.queue.push({ message, vp });
    if (this.queue.length === 1) this.flush();
  }

  /** Posts what is queued, oldest first, until the hypervisor has no buffers. */
  flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const { message, vp } = this.queue[0];
      const status = this.post(message, vp);
      if (status === HvStatus.InsufficientBuffers) {
        this.deferred++;
        this.arm();
        return;
      }
      this.queue.shift();
      if (status === HvStatus.Success) this.sent++;
      else {
        this.dropped++;
        this.onDrop(status, vp);
      }
    }
    this.delay = RETRY_MIN_MS;
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
    this.queue.length = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
