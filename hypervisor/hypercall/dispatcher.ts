/**
 * The hypercall dispatcher of a child partition's VP (TLFS hypercall-interface.md). Order of the
 * checks: unknown code; privilege (ACCESS_DENIED wins when several errors apply); control-word
 * rules (reserved bits, variable header, rep count and start index, fast form); then the GPA
 * rules for memory-based calls (8-byte alignment, no page crossing, no overlap, inside RAM →
 * otherwise INVALID_ALIGNMENT). Input is copied out of guest memory into a private scratch page
 * before any handler looks at it; output is copied back only for what completed.
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { HV_PAGE_SIZE } from '../../abi/hv-hypercall.ts';
import type { GuestMemory } from '../guest-memory.ts';
import { CALLS, hasPrivilege, type CallSpec } from './call-table.ts';
import { decodeControl, encodeResult } from './control-word.ts';

export type SimpleHandler = (input: DataView, output: DataView) => HvStatus;
/** Processes element `rep`; input header at 0, element at header + rep × size; output element at rep × size. */
export type RepHandler = (input: DataView, rep: number, output: DataView) => HvStatus;

export type HandlerTable = Map<number, { simple?: SimpleHandler; rep?: RepHandler }>;

const align8 = (n: number) => (n + 7) & ~7;

export class HypercallDispatcher {
  private readonly inBytes = new Uint8Array(HV_PAGE_SIZE);
  private readonly outBytes = new Uint8Array(HV_PAGE_SIZE);
  private readonly inView = new DataView(this.inBytes.buffer);
  private readonly outView = new DataView(this.outBytes.buffer);

  constructor(
    private readonly mem: GuestMemory,
    private readonly handlers: HandlerTable,
    private readonly privileges: () => [lo: number, hi: number],
  ) {}

  /** Memory-based call (or a fast call whose two inputs fit in 32 bits each). */
  call(ctlLo: number, ctlHi: number, inputGpa: number, outputGpa: number): number {
    const c = decodeControl(ctlLo, ctlHi);
    if (c.fast) return this.callFast(ctlLo, ctlHi, inputGpa, 0, outputGpa, 0);
    const pre = this.precheck(c.code, c);
    if (typeof pre === 'number') return encodeResult(pre);
    const s = pre;
    const reps = s.rep ? c.repCount : 0;
    const inSize = align8(s.inputHeader + (s.rep ? reps * s.inputElement : 0));
    const outSize = align8(s.rep ? reps * s.output : s.output);
    inputGpa >>>= 0;
    outputGpa >>>= 0;
    if (inSize > 0 && !this.blockOk(inputGpa, inSize)) return encodeResult(HvStatus.InvalidAlignment);
    if (outSize > 0 && !this.blockOk(outputGpa, outSize)) return encodeResult(HvStatus.InvalidAlignment);
    if (inSize > 0 && outSize > 0 && inputGpa < outputGpa + outSize && outputGpa < inputGpa + inSize) return encodeResult(HvStatus.InvalidAlignment);
    if (inSize > 0) this.inBytes.set(this.mem.u8.subarray(inputGpa, inputGpa + inSize));
    this.inBytes.fill(0, inSize, Math.min(HV_PAGE_SIZE, inSize + 256));
    return this.run(s, c.repStart, reps, outputGpa, outSize);
  }

  /** Fast call: up to 16 bytes of input in two 64-bit registers (RDX, R8), no output. */
  callFast(ctlLo: number, ctlHi: number, in0Lo: number, in0Hi: number, in1Lo: number, in1Hi: number): number {
    const c = decodeControl(ctlLo, ctlHi);
    const pre = this.precheck(c.code, c);
    if (typeof pre === 'number') return encodeResult(pre);
    const s = pre;
    if (!c.fast || !s.fastOk) return encodeResult(HvStatus.InvalidHypercallInput);
    this.inBytes.fill(0, 0, 256);
    this.inView.setUint32(0, in0Lo >>> 0, true);
    this.inView.setUint32(4, in0Hi >>> 0, true);
    this.inView.setUint32(8, in1Lo >>> 0, true);
    this.inView.setUint32(12, in1Hi >>> 0, true);
    return this.run(s, c.repStart, s.rep ? c.repCount : 0, 0, 0);
  }

  private precheck(code: number, c: ReturnType<typeof decodeControl>): CallSpec | HvStatus {
    const s = CALLS.get(code);
    const h = this.handlers.get(code);
    if (!s || (!h && !s.rootOnly)) return HvStatus.InvalidHypercallCode;
    const [lo, hi] = this.privileges();
    if (s.rootOnly || !hasPrivilege(s, lo, hi)) return HvStatus.AccessDenied;
    if (c.reservedBitsSet || c.varHeaderQwords !== 0 || c.nested) return HvStatus.InvalidHypercallInput;
    if (s.rep ? c.repCount === 0 || c.repStart >= c.repCount : c.repCount !== 0 || c.repStart !== 0) return HvStatus.InvalidHypercallInput;
    if (c.fast && !s.fastOk) return HvStatus.InvalidHypercallInput;
    if (!h) return HvStatus.InvalidHypercallCode;
    return s;
  }

  private blockOk(gpa: number, size: number): boolean {
    return (gpa & 7) === 0 && (gpa & 0xfff) + size <= HV_PAGE_SIZE && this.mem.contains(gpa, size);
  }

  private run(s: CallSpec, repStart: number, reps: number, outputGpa: number, outSize: number): number {
    const h = this.handlers.get(s.code)!;
    if (!s.rep) {
      const status = h.simple!(this.inView, this.outView);
      if (status === HvStatus.Success && outSize > 0) this.mem.u8.set(this.outBytes.subarray(0, outSize), outputGpa);
      return encodeResult(status);
    }
    let done = repStart;
    let status: HvStatus = HvStatus.Success;
    for (; done < reps; done++) {
      status = h.rep!(this.inView, done, this.outView);
      if (status !== HvStatus.Success) break;
    }
    if (s.output > 0 && done > repStart) {
      const from = repStart * s.output,
        to = done * s.output;
      this.mem.u8.set(this.outBytes.subarray(from, to), outputGpa + from);
    }
    return encodeResult(status, done);
  }
}
