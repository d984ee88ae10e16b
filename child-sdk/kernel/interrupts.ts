// Interrupt dispatch: a table of 256 handlers in shared memory (one table for every VP). The
// image's exported `interrupt(vector)` calls dispatchInterrupt; handlers run with interrupts
// disabled and must not allocate.
const HANDLERS: usize = memory.data(256 * 4, 16);
const SPURIOUS: usize = memory.data(4 * 64, 16); // per-VP count of vectors with no handler

/** Installs `handler` for `vector` (0–255) on every VP, replacing any previous one; it runs with interrupts disabled. */
export function setInterruptHandler(vector: u32, handler: (vector: u32) => void): void {
  atomic.store<u32>(HANDLERS + ((vector & 0xff) << 2), changetype<u32>(handler));
}

/** Runs the handler of `vector`; without one, counts a spurious interrupt for VP `vp`. Call from the image's `interrupt` export. */
export function dispatchInterrupt(vector: u32, vp: i32): void {
  const h = atomic.load<u32>(HANDLERS + ((vector & 0xff) << 2));
  if (h == 0) {
    atomic.add<u32>(SPURIOUS + (<usize>vp << 2), 1);
    return;
  }
  changetype<(vector: u32) => void>(h)(vector);
}

/** Vectors dispatched on VP `vp` that had no handler. */
export function spuriousInterrupts(vp: i32): u32 {
  return atomic.load<u32>(SPURIOUS + (<usize>vp << 2));
}
