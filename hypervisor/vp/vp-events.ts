/**
 * What a VP thread tells its partition: events while it runs, where it entered the image, and why
 * it left (the exit reason, which for a captured VP carries the state to continue it from).
 */
import type { VpCapture } from './vp-capture.ts';

export type VpEvent =
  | { type: 'start-vp'; vp: number; target: number; rip: number }
  /** The image instantiated and its entry is about to run: the VP is past what can fail at load. */
  | { type: 'entered'; vp: number }
  /** A VP started from a capture is back at the exit it was captured in (and parks there if paused). */
  | { type: 'rewound'; vp: number }
  | { type: 'reset'; vp: number }
  /** A prestarted thread instantiated the image and waits for the state to continue from. */
  | { type: 'prepared'; vp: number }
  | { type: 'crash'; vp: number; params: string[] };

export type VpExitReason =
  | { reason: 'returned'; value: number }
  | { reason: 'halted' | 'stopped' | 'reset' }
  /** Unwound at a park point on request (Partition.captureVps): the state to continue it from. */
  | { reason: 'captured'; capture: VpCapture }
  | { reason: 'fault'; kind: string; message: string };

/** Where a VP enters the image: boot (VP 0) or vp_start (an AP). A captured VP re-enters the same way, rewinding. */
export type VpEntry = { kind: 'boot' } | { kind: 'ap'; rip: number };
