/** The lifecycle state machine as data: every state × every RequestedState, with Hyper-V's codes. */
import { describe, expect, it } from 'vitest';
import {
  availableRequestedStates,
  EnabledState,
  RequestedState,
  ReturnCode,
  transition,
  TRANSITIONS,
  type EnabledStateValue,
} from '../../root-partition/vmms/lifecycle.ts';

const STATES = Object.values(EnabledState).filter((s) => s !== EnabledState.Unknown) as EnabledStateValue[];
const S = EnabledState;

describe('lifecycle transitions', () => {
  it('uses the EnabledState numbers of Msvm_ComputerSystem', () => {
    expect(S).toMatchObject({ Running: 2, Off: 3, Stopping: 4, Saved: 6, Paused: 9, Starting: 10, Saving: 32773, Pausing: 32776, Resuming: 32777 });
  });

  it('accepts exactly the documented (state, request) pairs', () => {
    const allowed: Record<number, Record<number, string>> = {
      [S.Off]: { 2: 'start' },
      [S.Running]: { 3: 'turn-off', 6: 'save', 9: 'pause', 10: 'reset', 11: 'reset' },
      [S.Paused]: { 2: 'resume', 3: 'turn-off', 6: 'save', 10: 'reset', 11: 'reset' },
      [S.Saved]: { 2: 'restore', 3: 'turn-off' },
    };
    for (const state of STATES) {
      for (const req of [2, 3, 6, 9, 10, 11]) {
        const r = transition(state, req);
        const want = allowed[state]?.[req] ?? (req === 3 ? 'turn-off' : undefined);
        if (want && !(state === S.Off && req === 3)) {
          expect(r, `state ${state} request ${req}`).toMatchObject({ ok: true, operation: want });
        } else {
          expect(r, `state ${state} request ${req}`).toMatchObject({ ok: false, returnValue: ReturnCode.InvalidState });
        }
      }
    }
  });

  it('turns off from every state but Off, transitional ones included', () => {
    for (const state of STATES.filter((s) => s !== S.Off)) {
      expect(transition(state, RequestedState.TurnOff)).toEqual({ ok: true, operation: 'turn-off', via: S.Stopping, to: S.Off });
    }
    expect(transition(S.Off, 3)).toMatchObject({ ok: false, returnValue: 32775 });
  });

  it('refuses everything but turn-off while a transition is in progress', () => {
    for (const state of [S.Starting, S.Stopping, S.Saving, S.Pausing, S.Resuming, S.Resetting]) {
      for (const req of [2, 6, 9, 11]) {
        const r = transition(state, req);
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.returnValue).toBe(32775);
          expect(r.reason).toMatch(/only turn-off/);
        }
      }
    }
  });

  it('answers unsupported and malformed requests with their own codes', () => {
    expect(transition(S.Running, 4)).toMatchObject({ ok: false, returnValue: ReturnCode.InvalidStateTransition });
    expect(transition(S.Running, 5)).toMatchObject({ ok: false, returnValue: 4097 });
    expect(transition(S.Running, 32768)).toMatchObject({ ok: false, returnValue: 4097 });
    expect(transition(S.Running, 1.5)).toMatchObject({ ok: false, returnValue: ReturnCode.InvalidParameter });
    expect(transition(S.Running, -1)).toMatchObject({ ok: false, returnValue: 32773 });
    expect(transition(S.Running, 70000)).toMatchObject({ ok: false, returnValue: 32773 });
  });

  it('publishes AvailableRequestedStates from the same table', () => {
    expect(availableRequestedStates(S.Off)).toEqual([2]);
    expect(availableRequestedStates(S.Running)).toEqual([3, 6, 9, 11]);
    expect(availableRequestedStates(S.Paused)).toEqual([2, 3, 6, 11]);
    expect(availableRequestedStates(S.Saved)).toEqual([2, 3]);
    expect(availableRequestedStates(S.Saving)).toEqual([3]);
    // A transition never starts from its own transitional state, except turn-off: a stuck turn-off may be repeated.
    for (const [op, t] of Object.entries(TRANSITIONS)) if (op !== 'turn-off') expect(t.from).not.toContain(t.via);
    expect(TRANSITIONS['turn-off'].from).toContain(S.Stopping);
  });
});
