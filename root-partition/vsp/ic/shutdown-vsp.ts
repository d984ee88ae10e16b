/**
 * Shutdown: the host asks the guest to shut down (or restart/hibernate) with a reason code, a
 * timeout and a force flag; the guest answers S_OK and then shuts itself down, or E_FAIL
 * (Linux shutdown_onchannelcallback answers before it acts, drivers/hv/hv_util.c).
 * The answer is all the protocol returns; whether the guest then really stops is the caller's
 * to watch, and `shutdownGuest` (shutdown-fallback.ts) turns the VM off when it does not.
 */
import { encodeShutdown, SHUTDOWN_MESSAGE_BYTES, ShutdownFlag } from './ic-bodies.ts';
import { IcStatus } from './ic-protocol.ts';
import { SHUTDOWN_SERVICE } from './ic-services.ts';
import { IcVsp, type IcVspOptions } from './ic-vsp.ts';

export interface ShutdownRequestOptions {
  /** Shut down even if applications object (flag bit 0). */
  force?: boolean;
  /** Restart instead of staying off (flag bit 1). */
  restart?: boolean;
  /** Shown to the guest's users (Msvm_ShutdownComponent.InitiateShutdown Reason). */
  reason?: string;
  /** Windows SHTDN_REASON_* code; 0 = none given. */
  reasonCode?: number;
  /** How long the guest has to answer, in ms (also sent to the guest, rounded up to seconds). */
  timeoutMs?: number;
}

export type ShutdownAnswer =
  | { outcome: 'accepted' }
  | { outcome: 'refused'; status: number }
  | { outcome: 'no-answer' }
  | { outcome: 'unavailable'; reason: string };

export class ShutdownVsp extends IcVsp {
  constructor(options: IcVspOptions = {}) {
    super(SHUTDOWN_SERVICE, options);
  }

  protected negotiatedHook(): void {}

  /** Sends one shutdown request; resolves with the guest's answer (or none within `timeoutMs`). */
  async initiateShutdown(o: ShutdownRequestOptions = {}): Promise<ShutdownAnswer> {
    const timeoutMs = o.timeoutMs ?? this.requestTimeoutMs;
    const message = o.reason ?? '';
    if (new TextEncoder().encode(message).length >= SHUTDOWN_MESSAGE_BYTES)
      throw new RangeError(`shutdown reason longer than ${SHUTDOWN_MESSAGE_BYTES - 1} bytes`);
    const flags = (o.force ? ShutdownFlag.Force : 0) | (o.restart ? ShutdownFlag.Restart : 0);
    const body = encodeShutdown({ reasonCode: o.reasonCode ?? 0, timeoutSeconds: Math.ceil(timeoutMs / 1000), flags, message });
    const r = await this.request(body, timeoutMs);
    if (r.kind === 'timeout') return { outcome: 'no-answer' };
    if (r.kind === 'unavailable') return { outcome: 'unavailable', reason: r.reason };
    return r.status === IcStatus.Ok ? { outcome: 'accepted' } : { outcome: 'refused', status: r.status };
  }
}
