/**
 * A VP's execution state (hypervisor/vp/vp-capture.ts) as a saved-state record and back. The
 * record is untrusted input: every field is checked before a VP continues from it, and a record
 * that does not fit is refused naming the VP. What a checked record may still hold — a stack
 * that does not match the image's code — can only misdirect the guest itself (the rewind traps
 * and the VP faults); the preparation check in the partition record keeps that from happening
 * by accident.
 */
import type { CapturedGlobal, ExitResult, VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import { CAPTURE_AREA_MAX } from '../../hypervisor/vp/vp-capture.ts';
import type { VpExecutionRecord } from '../ipc/saved-state-schema.ts';

const STATE = { captured: 1, 'not-started': 2, exited: 3 } as const;
const RESULT = { none: 1, i32: 2, i64: 3, halt: 4 } as const;
const GLOBAL_TYPES = new Set(['i32', 'i64', 'f32', 'f64']);
/** A guest image has a handful of mutable globals; thousands are not a saved VP. */
const MAX_GLOBALS = 1024;

export function executionToRecord(e: VpExecution): VpExecutionRecord {
  const empty = {
    entryKind: 0,
    entryRip: 0,
    stack: new Uint8Array(0),
    globals: [],
    resultKind: 0,
    resultValue: '0',
    interruptsEnabled: false,
    runtimeTicks: 0,
  };
  if (e.state !== 'captured') return { state: STATE[e.state], ...empty };
  const c = e.capture;
  const r = c.result;
  return {
    state: STATE.captured,
    entryKind: c.entry.kind === 'boot' ? 1 : 2,
    entryRip: c.entry.kind === 'ap' ? c.entry.rip >>> 0 : 0,
    stack: c.stack,
    globals: c.globals.map((g) => ({ name: g.name, type: g.type, bits: g.bits })),
    resultKind: RESULT[r.kind],
    resultValue: r.kind === 'i32' ? String(r.value >>> 0) : r.kind === 'i64' ? r.value : '0',
    interruptsEnabled: c.interruptsEnabled,
    runtimeTicks: c.runtime100ns,
  };
}

export class ExecutionRecordError extends Error {}

export function executionFromRecord(vp: number, r: VpExecutionRecord | undefined): VpExecution {
  const bad = (why: string): never => {
    throw new ExecutionRecordError(`VP ${vp}: ${why}`);
  };
  if (!r) return bad('the record holds no execution state (a file from before VP stacks were saved)');
  if (r.state === STATE['not-started']) return { vp, state: 'not-started' };
  if (r.state === STATE.exited) return { vp, state: 'exited' };
  if (r.state !== STATE.captured) return bad(`execution state ${r.state} is not one this tsvisor knows`);
  if (r.entryKind !== 1 && r.entryKind !== 2) bad(`entry kind ${r.entryKind} is neither boot nor vp_start`);
  if (vp === 0 && r.entryKind !== 1) bad('VP 0 always enters at boot');
  if (!(r.stack instanceof Uint8Array) || r.stack.length > CAPTURE_AREA_MAX - 8) bad(`a stack of ${r.stack?.length} bytes (at most ${CAPTURE_AREA_MAX - 8})`);
  if (r.globals.length > MAX_GLOBALS) bad(`${r.globals.length} globals`);
  const globals: CapturedGlobal[] = r.globals.map((g) => {
    if (!GLOBAL_TYPES.has(g.type) || !(g.bits instanceof Uint8Array) || g.bits.length !== 8 || typeof g.name !== 'string' || g.name.length > 64)
      bad(`global ${String(g.name).slice(0, 64)} is malformed`);
    return { name: g.name, type: g.type as CapturedGlobal['type'], bits: g.bits };
  });
  const v = r.resultValue;
  if (!/^\d{1,20}$/.test(v) || BigInt(v) >= 1n << 64n) bad(`exit result ${v.slice(0, 24)} is not a 64-bit value`);
  let result: ExitResult;
  switch (r.resultKind) {
    case RESULT.none:
      result = { kind: 'none' };
      break;
    case RESULT.i32:
      if (BigInt(v) >= 1n << 32n) bad(`exit result ${v} does not fit 32 bits`);
      result = { kind: 'i32', value: Number(v) | 0 };
      break;
    case RESULT.i64:
      result = { kind: 'i64', value: v };
      break;
    case RESULT.halt:
      result = { kind: 'halt' };
      break;
    default:
      return bad(`exit result kind ${r.resultKind} is not one this tsvisor knows`);
  }
  if (!(Number.isFinite(r.runtimeTicks) && r.runtimeTicks >= 0)) bad(`VP runtime ${r.runtimeTicks} is not a count of 100 ns units`);
  return {
    vp,
    state: 'captured',
    capture: {
      vp,
      entry: r.entryKind === 1 ? { kind: 'boot' } : { kind: 'ap', rip: r.entryRip | 0 },
      stack: r.stack,
      globals,
      result,
      interruptsEnabled: r.interruptsEnabled === true,
      runtime100ns: r.runtimeTicks,
    },
  };
}
