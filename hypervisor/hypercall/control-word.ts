/**
 * The hypercall input value (TLFS hypercall-interface.md, "Hypercall Inputs"), received as two
 * u32 halves: bits 15:0 call code, 16 fast, 26:17 variable header size, 30:27 RsvdZ, 31 nested,
 * 43:32 rep count, 47:44 RsvdZ, 59:48 rep start index, 63:60 RsvdZ.
 */
import {
  HV_HYPERCALL_FAST_BIT,
  HV_HYPERCALL_NESTED_BIT,
  HV_HYPERCALL_REP_COUNT_MASK,
  HV_HYPERCALL_REP_START_SHIFT,
  HV_HYPERCALL_RSVD_HI_MASK,
  HV_HYPERCALL_RSVD_LO_MASK,
  HV_HYPERCALL_VARHEAD_MASK,
  HV_HYPERCALL_VARHEAD_SHIFT,
  HV_RESULT_REPS_SHIFT,
} from '../../abi/hv-hypercall.ts';

export interface ControlWord {
  code: number;
  fast: boolean;
  varHeaderQwords: number;
  nested: boolean;
  repCount: number;
  repStart: number;
  reservedBitsSet: boolean;
}

export function decodeControl(lo: number, hi: number): ControlWord {
  lo >>>= 0;
  hi >>>= 0;
  return {
    code: lo & 0xffff,
    fast: (lo & HV_HYPERCALL_FAST_BIT) !== 0,
    varHeaderQwords: (lo >>> HV_HYPERCALL_VARHEAD_SHIFT) & HV_HYPERCALL_VARHEAD_MASK,
    nested: (lo & HV_HYPERCALL_NESTED_BIT) !== 0,
    repCount: hi & HV_HYPERCALL_REP_COUNT_MASK,
    repStart: (hi >>> HV_HYPERCALL_REP_START_SHIFT) & 0xfff,
    reservedBitsSet: (lo & HV_HYPERCALL_RSVD_LO_MASK) !== 0 || (hi & HV_HYPERCALL_RSVD_HI_MASK) !== 0,
  };
}

export function encodeControl(code: number, opts: { fast?: boolean; repCount?: number; repStart?: number; varHeaderQwords?: number } = {}): [number, number] {
  const lo = (code & 0xffff) | (opts.fast ? HV_HYPERCALL_FAST_BIT : 0) | ((opts.varHeaderQwords ?? 0) << HV_HYPERCALL_VARHEAD_SHIFT);
  const hi = ((opts.repCount ?? 0) & HV_HYPERCALL_REP_COUNT_MASK) | (((opts.repStart ?? 0) & 0xfff) << HV_HYPERCALL_REP_START_SHIFT);
  return [lo >>> 0, hi >>> 0];
}

/** The 32-bit result the platform returns: status in 15:0, reps completed in 27:16. */
export function encodeResult(status: number, repsCompleted = 0): number {
  return ((status & 0xffff) | ((repsCompleted & 0xfff) << HV_RESULT_REPS_SHIFT)) >>> 0;
}

export function resultStatus(result: number): number {
  return result & 0xffff;
}

export function resultReps(result: number): number {
  return (result >>> HV_RESULT_REPS_SHIFT) & 0xfff;
}
