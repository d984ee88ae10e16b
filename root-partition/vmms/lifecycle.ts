/**
 * The VM lifecycle as data plus one transition function. States and codes are Hyper-V's
 * (Msvm_ComputerSystem EnabledState, RequestStateChange, as Microsoft documents the v2 provider),
 * so the management layer publishes them unchanged. No I/O here: VMMS applies the result.
 */

/** Msvm_ComputerSystem.EnabledState. */
export const EnabledState = {
  Unknown: 0,
  Running: 2,
  Off: 3,
  /** "Shutting down" (4) in the reference: a turn-off in progress. */
  Stopping: 4,
  Saved: 6,
  Paused: 9,
  Starting: 10,
  /**
   * Not among Msvm_ComputerSystem's documented EnabledState values: Hyper-V's VMState reports a reset in progress as
   * 11, the same number as RequestedState "reset".
   */
  Resetting: 11,
  Saving: 32773,
  Pausing: 32776,
  Resuming: 32777,
} as const;
export type EnabledStateValue = (typeof EnabledState)[keyof typeof EnabledState];

export const HealthState = { Ok: 5, MajorFailure: 20, CriticalFailure: 25 } as const;
export type HealthStateValue = (typeof HealthState)[keyof typeof HealthState];

/** RequestStateChange's RequestedState (v2). */
export const RequestedState = { Start: 2, TurnOff: 3, ShutDown: 4, Save: 6, Pause: 9, Reboot: 10, Reset: 11 } as const;

/** RequestStateChange return values. */
export const ReturnCode = {
  Completed: 0,
  JobStarted: 4096,
  InvalidStateTransition: 4097,
  TimeoutNotSupported: 4098,
  Busy: 4099,
  Failed: 32768,
  AccessDenied: 32769,
  InvalidParameter: 32773,
  InUse: 32774,
  InvalidState: 32775,
} as const;
export type ReturnCodeValue = (typeof ReturnCode)[keyof typeof ReturnCode];

export type LifecycleOperation = 'start' | 'restore' | 'turn-off' | 'save' | 'pause' | 'resume' | 'reset';

const S = EnabledState;
const ALL: EnabledStateValue[] = Object.values(S).filter((s) => s !== S.Unknown);
const TRANSITIONAL: EnabledStateValue[] = [S.Stopping, S.Starting, S.Resetting, S.Saving, S.Pausing, S.Resuming];

/** Each operation: the states it may start from, the state while it runs, the state it ends in. */
export const TRANSITIONS: Record<LifecycleOperation, { from: EnabledStateValue[]; via: EnabledStateValue; to: EnabledStateValue }> = {
  start: { from: [S.Off], via: S.Starting, to: S.Running },
  restore: { from: [S.Saved], via: S.Starting, to: S.Running },
  // Turn-off works from every state but Off, transitional ones included (a stuck Starting or
  // Saving must be recoverable), and from Unknown (a worker that does not answer is killed by
  // its pid); from Saved it discards the saved state.
  'turn-off': { from: [S.Unknown, ...ALL.filter((s) => s !== S.Off)], via: S.Stopping, to: S.Off },
  save: { from: [S.Running, S.Paused], via: S.Saving, to: S.Saved },
  pause: { from: [S.Running], via: S.Pausing, to: S.Paused },
  resume: { from: [S.Paused], via: S.Resuming, to: S.Running },
  reset: { from: [S.Running, S.Paused], via: S.Resetting, to: S.Running },
};

export function isTransitional(s: EnabledStateValue): boolean {
  return TRANSITIONAL.includes(s);
}

export type TransitionResult =
  | { ok: true; operation: LifecycleOperation; via: EnabledStateValue; to: EnabledStateValue }
  | { ok: false; returnValue: ReturnCodeValue; reason: string };

/** Which operation a RequestedState means in `current`: 2 is start, restore or resume. */
function operationFor(requested: number, current: EnabledStateValue): LifecycleOperation | null {
  switch (requested) {
    case RequestedState.Start:
      return current === S.Paused ? 'resume' : current === S.Saved ? 'restore' : 'start';
    case RequestedState.TurnOff:
      return 'turn-off';
    case RequestedState.Save:
      return 'save';
    case RequestedState.Pause:
      return 'pause';
    case RequestedState.Reboot:
    case RequestedState.Reset:
      return 'reset';
    default:
      return null;
  }
}

export function stateName(s: number): string {
  return Object.entries(S).find(([, v]) => v === s)?.[0] ?? `state ${s}`;
}

/** The one transition function: may `requested` be applied in `current`, and how. */
export function transition(current: EnabledStateValue, requested: number): TransitionResult {
  if (!Number.isInteger(requested) || requested < 0 || requested > 0xffff) {
    return { ok: false, returnValue: ReturnCode.InvalidParameter, reason: `RequestedState ${requested} is not a uint16` };
  }
  const op = operationFor(requested, current);
  if (op === null) {
    return {
      ok: false,
      returnValue: ReturnCode.InvalidStateTransition,
      reason:
        requested === RequestedState.ShutDown
          ? 'shut down needs the shutdown integration service, which this host does not offer; turn the VM off (3) instead'
          : `RequestedState ${requested} is not supported`,
    };
  }
  const t = TRANSITIONS[op];
  if (!t.from.includes(current)) {
    const busy = isTransitional(current) ? ' (an operation is in progress; only turn-off (3) is accepted now)' : '';
    return { ok: false, returnValue: ReturnCode.InvalidState, reason: `cannot ${op} a VM that is ${stateName(current)}${busy}` };
  }
  return { ok: true, operation: op, via: t.via, to: t.to };
}

/** What RequestStateChange accepts now (Msvm_ComputerSystem.AvailableRequestedStates). */
export function availableRequestedStates(current: EnabledStateValue): number[] {
  return [RequestedState.Start, RequestedState.TurnOff, RequestedState.Save, RequestedState.Pause, RequestedState.Reset].filter(
    (r) => transition(current, r).ok,
  );
}
