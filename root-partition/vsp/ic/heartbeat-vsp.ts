/**
 * Heartbeat: the host sends a sequence number every `intervalMs`; the guest answers with it plus
 * one (Linux heartbeat_onchannelcallback, drivers/hv/hv_util.c). The status is the
 * Msvm_HeartbeatComponent OperationalStatus[0] (Microsoft Docs):
 *
 *   No Contact (12)          the guest has not negotiated the channel (or closed it), or has
 *                             never answered a heartbeat;
 *   OK (2)                    the last correct answer is younger than `lostAfterMs`;
 *   Degraded (3)              as OK, but the guest reports application_state Critical (OpenVMM);
 *   Lost Communication (13)   the guest answered once, and no correct answer for `lostAfterMs`.
 *
 * Defaults: a heartbeat every 1000 ms, lost after 5000 ms without a correct answer (Linux notes a
 * request every 2 s from Hyper-V; a shorter interval here lets a status change show sooner). Both
 * are options so a test of Lost Communication waits a fraction of a second.
 */
import { decodeHeartbeat, encodeHeartbeat, HeartbeatApplicationState } from './ic-bodies.ts';
import { IcStatus } from './ic-protocol.ts';
import { HEARTBEAT_SERVICE } from './ic-services.ts';
import { IcVsp, type IcVspOptions } from './ic-vsp.ts';
import { icStateError, type IcSavedState } from './ic-saved-state.ts';

/** Msvm_HeartbeatComponent OperationalStatus values. */
export const HeartbeatStatus = { Ok: 2, Degraded: 3, NoContact: 12, LostCommunication: 13, Paused: 15 } as const;
export type HeartbeatStatusValue = (typeof HeartbeatStatus)[keyof typeof HeartbeatStatus];

export interface HeartbeatOptions extends IcVspOptions {
  intervalMs?: number;
  lostAfterMs?: number;
  /** The clock, injected for tests (default performance.now). */
  now?: () => number;
}

export class HeartbeatVsp extends IcVsp {
  readonly intervalMs: number;
  readonly lostAfterMs: number;
  /** Next sequence number to send. */
  private sequence = 0n;
  private lastAnswerAt: number | null = null;
  private applicationState: number = HeartbeatApplicationState.Unknown;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  /** Correct answers and wrong sequence numbers seen. */
  readonly beats = { answered: 0, wrongSequence: 0 };

  constructor(options: HeartbeatOptions = {}) {
    const intervalMs = options.intervalMs ?? 1000;
    // A heartbeat's own answer may take up to one interval before it counts as missing.
    super(HEARTBEAT_SERVICE, { requestTimeoutMs: intervalMs, ...options });
    this.intervalMs = intervalMs;
    this.lostAfterMs = options.lostAfterMs ?? 5000;
    this.now = options.now ?? (() => performance.now());
  }

  private readonly statusListeners = new Set<(status: HeartbeatStatusValue) => void>();
  private reportedStatus: HeartbeatStatusValue | null = null;

  /**
   * Calls `listener` with the status now and then at each change, as this device sees it happen
   * (an answer, a channel closing, an interval without an answer): VMMS pushes the changes as
   * Msvm_HeartbeatComponent modifications instead of asking. Returns the unsubscribe function.
   */
  onStatus(listener: (status: HeartbeatStatusValue) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.status());
    return () => this.statusListeners.delete(listener);
  }

  private reportIfChanged(): void {
    const s = this.status();
    if (s === this.reportedStatus) return;
    this.reportedStatus = s;
    for (const l of [...this.statusListeners]) l(s);
  }

  /** OperationalStatus[0] now. */
  status(): HeartbeatStatusValue {
    if (!this.ready || this.lastAnswerAt === null) return HeartbeatStatus.NoContact;
    if (this.now() - this.lastAnswerAt > this.lostAfterMs) return HeartbeatStatus.LostCommunication;
    return this.applicationState === HeartbeatApplicationState.Critical ? HeartbeatStatus.Degraded : HeartbeatStatus.Ok;
  }

  protected negotiatedHook(): void {
    void this.beat();
    // Each tick also notices an answer that is overdue (Lost Communication) while one is in flight.
    this.timer = setInterval(() => {
      void this.beat();
      this.reportIfChanged();
    }, this.intervalMs);
    this.timer.unref?.();
  }

  protected override channelClosed(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.lastAnswerAt = null;
    this.reportIfChanged();
  }

  protected override pauseService(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  protected override saveService(): Partial<IcSavedState> {
    return { heartbeat: { sequence: this.sequence, answered: this.lastAnswerAt !== null, applicationState: this.applicationState } };
  }

  /**
   * A guest that had answered counts as answering now: the time it spent parked and saved is not
   * silence. The beats start again at once (negotiatedHook) and decide from there.
   */
  protected override restoreService(s: IcSavedState): () => void {
    const hb = s.heartbeat;
    if (!hb) throw icStateError(this.spec.name, 'no heartbeat state');
    if (hb.sequence >= 1n << 64n) throw icStateError(this.spec.name, `sequence ${hb.sequence}`);
    return () => {
      this.sequence = hb.sequence;
      this.applicationState = hb.applicationState;
      this.lastAnswerAt = hb.answered && s.negotiated ? this.now() : null;
      this.reportIfChanged();
    };
  }

  private inFlight = false;

  /** Sends one heartbeat now and records its answer (the timer calls this every intervalMs). */
  async beat(): Promise<void> {
    if (this.inFlight) return; // the previous heartbeat is still waiting: do not queue behind it
    this.inFlight = true;
    const seq = this.sequence++;
    const r = await this.request(encodeHeartbeat(seq));
    this.inFlight = false;
    if (r.kind !== 'reply') return;
    const hb = r.status === IcStatus.Ok ? decodeHeartbeat(r.body) : null;
    if (hb === null || hb.sequence !== BigInt.asUintN(64, seq + 1n)) {
      this.beats.wrongSequence++;
      this.report('IC_HEARTBEAT_WRONG', `answer to heartbeat ${seq} was ${hb === null ? `status 0x${r.status.toString(16)}` : `sequence ${hb.sequence}`}`);
      return;
    }
    this.beats.answered++;
    this.lastAnswerAt = this.now();
    this.applicationState = hb.applicationState;
    this.reportIfChanged();
  }
}
