/**
 * The synchronous path of an intercept: the VP writes the access into its mailbox in the control
 * buffer, rings the root's doorbell and waits (spin, then sleep) for the root's answer. This is
 * the TLFS intercept message to the root's SINT0 and the root's "complete and resume", reduced to
 * shared memory: one cache line each way when both sides are awake.
 */
import { SpinBudget, waitForChange, type WaitCounters, type WaitPolicy } from './adaptive-wait.ts';
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

export const InterceptKind = {
  IoRead: 1,
  IoWrite: 2,
  IoReadString: 3,
  IoWriteString: 4,
  MmioRead: 5,
  MmioWrite: 6,
  MsrRead: 7,
  MsrWrite: 8,
  Cpuid: 9,
} as const;
export type InterceptKindValue = (typeof InterceptKind)[keyof typeof InterceptKind];

export const InterceptResult = {
  /** The root emulated the access; outputs are valid. */
  Handled: 0,
  /** Nothing in the root claims it: an MSR access raises #GP, a CPUID leaf reads the defaults. */
  Unhandled: 1,
  /** The access itself is invalid (for example a string buffer outside guest memory): guest fault. */
  Fault: 2,
} as const;

export const MailboxState = { Idle: 0, Request: 1, Response: 2 } as const;

/** VP side of the mailbox. One per VP thread; no allocation per exit. */
export class InterceptClient {
  private readonly base: number;
  private readonly i32: Int32Array;

  /** The exit wait's own adaptive spin: an exit's answer time differs from a halt's. */
  private readonly budget: SpinBudget;

  constructor(
    private readonly ctl: PartitionControl,
    vp: number,
    private readonly policy: WaitPolicy,
    private readonly waits: WaitCounters,
  ) {
    this.budget = new SpinBudget(policy);
    this.base = (vpBase(vp) + VP_MAILBOX) >> 2;
    this.i32 = ctl.i32;
  }

  /** Sends one intercept and waits for the answer. Returns InterceptResult; outputs via `out(i)`. */
  forward(kind: InterceptKindValue, port: number, size: number, valueLo: number, valueHi: number, gpa: number, count: number): number {
    const b = this.base,
      i32 = this.i32;
    i32[b + (MB_KIND >> 2)] = kind;
    i32[b + (MB_PORT >> 2)] = port;
    i32[b + (MB_SIZE >> 2)] = size;
    i32[b + (MB_VALUE_LO >> 2)] = valueLo;
    i32[b + (MB_VALUE_HI >> 2)] = valueHi;
    i32[b + (MB_GPA >> 2)] = gpa;
    i32[b + (MB_COUNT >> 2)] = count;
    Atomics.store(i32, b + (MB_STATE >> 2), MailboxState.Request);
    this.ctl.ring(P_DOORBELL);
    const stateIdx = b + (MB_STATE >> 2);
    while (Atomics.load(i32, stateIdx) === MailboxState.Request) {
      waitForChange(i32, stateIdx, MailboxState.Request, this.policy, this.waits, Infinity, this.budget);
    }
    const result = i32[b + (MB_RESULT >> 2)];
    Atomics.store(i32, stateIdx, MailboxState.Idle);
    return result;
  }

  out(i: number): number {
    return this.i32[this.base + (MB_OUT >> 2) + i];
  }
}
