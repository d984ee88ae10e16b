/**
 * The VP's interrupt request register: 256 pending-vector bits per VP in the control buffer.
 * Any thread may assert a vector (a SINT, a timer, the root's emulated PIC); the VP thread takes
 * the highest pending vector at the next delivery point (halt, or return from an exit with
 * interrupts enabled). Edge-triggered with automatic EOI: a second assertion of a vector that is
 * still pending merges with the first, as with a real IRR bit.
 */
import { type PartitionControl, VP_PENDING_SUMMARY, VP_PENDING_VECTORS, VP_WAKE, vpBase } from './partition-control.ts';

export function assertVector(ctl: PartitionControl, vp: number, vector: number): void {
  const base = vpBase(vp);
  Atomics.or(ctl.i32, ((base + VP_PENDING_VECTORS) >> 2) + (vector >>> 5), 1 << (vector & 31));
  Atomics.store(ctl.i32, (base + VP_PENDING_SUMMARY) >> 2, 1);
  ctl.ring(base + VP_WAKE);
}

/** Takes the highest pending vector, or returns -1. Called on the VP's own thread. */
export function takeHighestVector(ctl: PartitionControl, vp: number): number {
  const base = vpBase(vp);
  const summary = (base + VP_PENDING_SUMMARY) >> 2;
  if (Atomics.load(ctl.i32, summary) === 0) return -1;
  Atomics.store(ctl.i32, summary, 0);
  const first = (base + VP_PENDING_VECTORS) >> 2;
  for (let w = 7; w >= 0; w--) {
    for (;;) {
      const bits = Atomics.load(ctl.i32, first + w);
      if (bits === 0) break;
      const bit = 31 - Math.clz32(bits);
      const mask = 1 << bit;
      if ((Atomics.and(ctl.i32, first + w, ~mask) & mask) !== 0) {
        // Others may still be pending: keep the summary set so the next check scans again.
        Atomics.store(ctl.i32, summary, 1);
        return (w << 5) | bit;
      }
    }
  }
  return -1;
}

export function hasPendingVector(ctl: PartitionControl, vp: number): boolean {
  return Atomics.load(ctl.i32, (vpBase(vp) + VP_PENDING_SUMMARY) >> 2) !== 0;
}
