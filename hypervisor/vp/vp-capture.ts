/**
 * A VP's execution state, captured at a park point of a capturable image (rewrite option
 * `capturable`: Asyncify on the exits and preemption points) so that it continues later in a
 * fresh instance, thread or process exactly where it stopped (docs/guest-abi.md §9).
 *
 * What makes up the state: the Wasm call stack as Asyncify unwinds it (each frame's live locals
 * and where it was in its function), the image's mutable globals (Asyncify saves locals only),
 * the value the exit was about to return to the guest (the exit had done its work before the VP
 * parked, so on rewind it returns that value without doing the work again), the interrupt flag,
 * and the export the VP had entered (the rewind calls it again). Everything else a VP has lives
 * in the control block (SynIC, timers, pending vectors, registers) or in guest memory.
 *
 * Asyncify writes and reads its buffer in the guest's own linear memory. The VP borrows the
 * capture area for the moment of an unwind or rewind: its bytes are copied aside first and put
 * back before any guest code runs again, while every other VP is parked and the devices hold still.
 */
import type { VpEntry } from './vp-events.ts';

/** Guest-physical start of the capture area: above the boot page; any RAM works as it is put back. */
export const CAPTURE_AREA_GPA = 0x10000;
/**
 * The capture area's size at most. A VP's Wasm stack is bounded by its thread's native stack
 * (4 MiB for a worker thread by default), and Asyncify keeps less per frame than V8's frame, so
 * the unwound stack always fits.
 */
export const CAPTURE_AREA_MAX = 8 * 1024 * 1024;

/** The platform imports a VP can park in (they end in afterExit or halt): where a capture can happen. */
export const PARK_POINTS = [
  'cpuid',
  'rdmsr',
  'wrmsr',
  'hypercall',
  'hypercall_fast',
  'inb',
  'inw',
  'inl',
  'outb',
  'outw',
  'outl',
  'insb',
  'insw',
  'insl',
  'outsb',
  'outsw',
  'outsl',
  'mmio_read',
  'mmio_write',
  'halt',
] as const;

/** What the exit the VP parked in returns to the guest when the VP continues. */
export type ExitResult =
  | { kind: 'none' }
  | { kind: 'i32'; value: number }
  | { kind: 'i64'; value: string }
  /** Parked inside halt: on continuing the VP halts again until an interrupt. */
  | { kind: 'halt' };

export interface CapturedGlobal {
  /** The rewrite's export name (`__tsvisor_global_<index>`). */
  name: string;
  type: 'i32' | 'i64' | 'f32' | 'f64';
  /** The value's bits, little-endian, 8 bytes (exact for NaN payloads too). */
  bits: Uint8Array;
}

export interface VpCapture {
  vp: number;
  entry: VpEntry;
  /** Asyncify's unwound frames (the buffer from its data start to its final position). */
  stack: Uint8Array;
  globals: CapturedGlobal[];
  result: ExitResult;
  interruptsEnabled: boolean;
  /** HV_X64_MSR_VP_RUNTIME at the capture (100 ns the VP ran, not halted). */
  runtime100ns: number;
}

/** A VP as captured with its partition: continued from its capture, or not running at all. */
export type VpExecution =
  | { vp: number; state: 'captured'; capture: VpCapture }
  /** Never started (an AP the guest did not start). */
  | { vp: number; state: 'not-started' }
  /** Left the guest before the capture (returned, halted with interrupts off, faulted). */
  | { vp: number; state: 'exited' };

/** Thrown out of a park point to begin the unwind; caught by the exit it happened in. */
export class CaptureRequested extends Error {
  constructor() {
    super('capture requested');
    this.name = 'CaptureRequested';
  }
}

/** The Asyncify exports a capturable image has (binaryen's Asyncify pass). */
export interface AsyncifyExports {
  asyncify_start_unwind(dataGpa: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(dataGpa: number): void;
  asyncify_stop_rewind(): void;
  asyncify_get_state(): number;
}

export function asyncifyOf(exports: WebAssembly.Exports): AsyncifyExports | null {
  const names = ['asyncify_start_unwind', 'asyncify_stop_unwind', 'asyncify_start_rewind', 'asyncify_stop_rewind', 'asyncify_get_state'] as const;
  return names.every((n) => typeof exports[n] === 'function') ? (exports as unknown as AsyncifyExports) : null;
}

export function captureAreaSize(memoryBytes: number): number {
  return Math.max(0, Math.min(CAPTURE_AREA_MAX, memoryBytes - CAPTURE_AREA_GPA));
}

const scratch = new DataView(new ArrayBuffer(8));

export function readGlobal(name: string, g: WebAssembly.Global, type: CapturedGlobal['type']): CapturedGlobal {
  scratch.setBigUint64(0, 0n, true);
  const v = g.value as number | bigint;
  if (type === 'i32') scratch.setInt32(0, v as number, true);
  else if (type === 'i64') scratch.setBigInt64(0, v as bigint, true);
  else if (type === 'f32') scratch.setFloat32(0, v as number, true);
  else scratch.setFloat64(0, v as number, true);
  return { name, type, bits: new Uint8Array(scratch.buffer.slice(0)) };
}

export function writeGlobal(g: WebAssembly.Global, c: CapturedGlobal): void {
  const dv = new DataView(c.bits.buffer, c.bits.byteOffset, 8);
  if (c.type === 'i32') g.value = dv.getInt32(0, true);
  else if (c.type === 'i64') g.value = dv.getBigInt64(0, true);
  else if (c.type === 'f32') g.value = dv.getFloat32(0, true);
  else g.value = dv.getFloat64(0, true);
}
