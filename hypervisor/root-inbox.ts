/**
 * The root partition's side of a child partition: intercepts from every VP, messages posted to
 * root-owned ports and events signalled on them, all announced on one doorbell word. Whichever
 * root thread owns the device models serves it — a dedicated device thread spinning then
 * sleeping (`serveBlocking`), or an event-loop thread (`serveAsync`, Atomics.waitAsync), for
 * tools and tests that do not need exit latency.
 */
import type { GuestMemory } from './guest-memory.ts';
import { InterceptKind, InterceptResult, MailboxState } from './intercept-mailbox.ts';
import { SpinBudget, waitForChange, WaitCounters, type WaitPolicy } from './adaptive-wait.ts';
import {
  MB_COUNT,
  MB_GPA,
  MB_KIND,
  MB_OUT,
  MB_PORT,
  MB_RESULT,
  MB_SIZE,
  MB_STATE,
  MB_VALUE_HI,
  MB_VALUE_LO,
  P_DOORBELL,
  type PartitionControl,
  VP_MAILBOX,
  vpBase,
} from './partition-control.ts';
import type { PortTable } from './ports.ts';

export type IoSize = 1 | 2 | 4;

/** What the root partition registers to emulate a child's intercepted accesses. */
export interface InterceptHandler {
  ioRead(vp: number, port: number, size: IoSize): number;
  ioWrite(vp: number, port: number, size: IoSize, value: number): void;
  /** `rep ins`: fill `dst` (a bounds-checked view of guest memory, count × size bytes). */
  ioReadString(vp: number, port: number, size: IoSize, dst: Uint8Array, count: number): void;
  /** `rep outs` from `src`. */
  ioWriteString(vp: number, port: number, size: IoSize, src: Uint8Array, count: number): void;
  mmioRead?(vp: number, gpa: number, size: IoSize): number | null;
  mmioWrite?(vp: number, gpa: number, size: IoSize, value: number): boolean;
  /** Returns the value, or null for "no such MSR" (the guest takes #GP). */
  msrRead?(vp: number, msr: number): bigint | null;
  msrWrite?(vp: number, msr: number, value: bigint): boolean;
  /** CPUID leaves the hypervisor does not answer; null keeps the defaults (zeros). */
  cpuid?(vp: number, leaf: number, subleaf: number): [number, number, number, number] | null;
}

export class RootInbox {
  readonly waits = new WaitCounters();
  /** The doorbell wait's adaptive spin (kept across serveBlocking slices; remade if the policy changes). */
  private budget: SpinBudget | null = null;
  private lastDoorbell = 0;
  private readonly messageHandlers = new Map<number, { fn: (message: Uint8Array) => void; accepting?: () => boolean }>();
  private eventHandler: ((flag: number) => void) | null = null;
  handler: InterceptHandler | null = null;
  /** Errors thrown by device models: reported, never propagated into the VP. */
  onHandlerError: (error: unknown, vp: number) => void = () => {};
  served = 0;

  /** The doorbell wait's current spin budget in loads (the policy's floor until serveBlocking adapts it). */
  get spinBudget(): SpinBudget | null {
    return this.budget;
  }

  constructor(
    private readonly ctl: PartitionControl,
    private readonly mem: GuestMemory,
    private readonly ports: PortTable,
  ) {}

  /**
   * Serves the root-owned message port `portId`. While `accepting()` is false its messages stay
   * in the port's 16 buffers, so the sender's HvCallPostMessage fails with INSUFFICIENT_BUFFERS
   * once they fill: back-pressure for a consumer that must not queue without bound. The port
   * is looked at again at every pump (at least every wait's timeout).
   */
  onMessage(portId: number, fn: (message: Uint8Array) => void, accepting?: () => boolean): void {
    this.messageHandlers.set(portId, { fn, accepting });
  }

  onEvent(fn: (flag: number) => void): void {
    this.eventHandler = fn;
  }

  /** Serves everything pending right now. Returns the number of items handled. */
  pump(): number {
    let n = 0;
    for (let vp = 0; vp < this.ctl.vpCount; vp++) {
      const b = (vpBase(vp) + VP_MAILBOX) >> 2;
      if (Atomics.load(this.ctl.i32, b + (MB_STATE >> 2)) === MailboxState.Request) {
        this.serveIntercept(vp, b);
        n++;
      }
    }
    for (const [portId, { fn, accepting }] of this.messageHandlers) {
      while (accepting?.() !== false) {
        const m = this.ports.takeRootMessage(portId);
        if (!m) break;
        fn(m);
        n++;
      }
    }
    n += this.ports.drainRootEvents((flag) => this.eventHandler?.(flag));
    this.served += n;
    return n;
  }

  /**
   * Serves until `running()` is false, spinning then sleeping on the doorbell between batches;
   * `idle` runs when a wait ends with nothing new (at most every `maxSleepMs`).
   */
  serveBlocking(policy: WaitPolicy, running: () => boolean, maxSleepMs = 50, idle?: () => void): void {
    const b = this.budget;
    const budget =
      b && b.min === policy.spinIterations && b.max === Math.max(b.min, policy.maxSpinIterations ?? 0) ? b : (this.budget = new SpinBudget(policy));
    while (running()) {
      this.lastDoorbell = Atomics.load(this.ctl.i32, P_DOORBELL >> 2);
      if (this.pump() > 0) continue;
      if (waitForChange(this.ctl.i32, P_DOORBELL >> 2, this.lastDoorbell, policy, this.waits, maxSleepMs, budget) === this.lastDoorbell) idle?.();
    }
  }

  /** Serves on an event-loop thread until `signal` aborts. */
  async serveAsync(signal: AbortSignal): Promise<void> {
    const idx = P_DOORBELL >> 2;
    // A pending Atomics.waitAsync does not keep Node's event loop alive: hold a timer while serving,
    // and ring the doorbell on abort so the last wait ends at once.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const onAbort = () => this.kick();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        this.lastDoorbell = Atomics.load(this.ctl.i32, idx);
        if (this.pump() > 0) continue;
        const w = Atomics.waitAsync(this.ctl.i32, idx, this.lastDoorbell, 100);
        if (w.async) await w.value;
      }
    } finally {
      clearInterval(keepAlive);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Wakes a `serveBlocking`/`serveAsync` loop so it re-checks its condition. */
  kick(): void {
    this.ctl.ring(P_DOORBELL);
  }

  private serveIntercept(vp: number, b: number): void {
    const i32 = this.ctl.i32;
    const kind = i32[b + (MB_KIND >> 2)];
    const port = i32[b + (MB_PORT >> 2)] >>> 0;
    const size = i32[b + (MB_SIZE >> 2)] as IoSize;
    const lo = i32[b + (MB_VALUE_LO >> 2)] >>> 0;
    const hi = i32[b + (MB_VALUE_HI >> 2)] >>> 0;
    const gpa = i32[b + (MB_GPA >> 2)] >>> 0;
    const count = i32[b + (MB_COUNT >> 2)] >>> 0;
    const out = b + (MB_OUT >> 2);
    let result: number = InterceptResult.Handled;
    const h = this.handler;
    try {
      if (!h) {
        result = kind === InterceptKind.IoRead || kind === InterceptKind.IoWrite ? InterceptResult.Handled : InterceptResult.Unhandled;
        if (kind === InterceptKind.IoRead) i32[out] = size === 4 ? -1 : (1 << (size * 8)) - 1;
      } else {
        switch (kind) {
          case InterceptKind.IoRead:
            i32[out] = h.ioRead(vp, port, size);
            break;
          case InterceptKind.IoWrite:
            h.ioWrite(vp, port, size, lo);
            break;
          case InterceptKind.IoReadString:
          case InterceptKind.IoWriteString: {
            const bytes = count * size;
            if (!this.mem.contains(gpa, bytes)) {
              result = InterceptResult.Fault;
              break;
            }
            const view = this.mem.u8.subarray(gpa, gpa + bytes);
            if (kind === InterceptKind.IoReadString) h.ioReadString(vp, port, size, view, count);
            else h.ioWriteString(vp, port, size, view, count);
            break;
          }
          case InterceptKind.MmioRead: {
            const v = h.mmioRead?.(vp, port, size) ?? null;
            if (v === null) result = InterceptResult.Unhandled;
            else i32[out] = v;
            break;
          }
          case InterceptKind.MmioWrite:
            if (!(h.mmioWrite?.(vp, port, size, lo) ?? false)) result = InterceptResult.Unhandled;
            break;
          case InterceptKind.MsrRead: {
            const v = h.msrRead?.(vp, port) ?? null;
            if (v === null) result = InterceptResult.Unhandled;
            else {
              i32[out] = Number(v & 0xffffffffn) | 0;
              i32[out + 1] = Number((v >> 32n) & 0xffffffffn) | 0;
            }
            break;
          }
          case InterceptKind.MsrWrite:
            if (!(h.msrWrite?.(vp, port, (BigInt(hi) << 32n) | BigInt(lo)) ?? false)) result = InterceptResult.Unhandled;
            break;
          case InterceptKind.Cpuid: {
            const r = h.cpuid?.(vp, port, size) ?? null;
            if (r === null) result = InterceptResult.Unhandled;
            else for (let k = 0; k < 4; k++) i32[out + k] = r[k] | 0;
            break;
          }
          default:
            result = InterceptResult.Fault;
        }
      }
    } catch (e) {
      // A device model bug must not wedge the VP: the access completes as unclaimed.
      this.onHandlerError(e, vp);
      result = kind === InterceptKind.IoRead || kind === InterceptKind.IoWrite ? InterceptResult.Handled : InterceptResult.Unhandled;
      if (kind === InterceptKind.IoRead) i32[out] = -1;
    }
    i32[b + (MB_RESULT >> 2)] = result;
    Atomics.store(i32, b + (MB_STATE >> 2), MailboxState.Response);
    Atomics.notify(i32, b + (MB_STATE >> 2));
  }
}
