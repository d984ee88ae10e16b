/**
 * Test-only fault injection. With `TSVISOR_FAULT_POINT=<point>` in its environment, VMMS kills
 * itself (SIGKILL: a crash, nothing flushed) when it reaches that point; `<point>:stop` stops it
 * (SIGSTOP) instead. The fault-injection suite (test/fault) uses it to crash VMMS in the middle of
 * a start, save, restore or reattach. Unset — always, outside tests — it does nothing.
 *
 * Points: start:launched (the worker is spawned and recorded, not yet connected),
 * save:requested (SAVE sent, not yet answered), restore:launched (as start, from a saved state),
 * reattach:connected (connected to a running worker, STATUS not yet asked).
 */
export type FaultPoint = 'start:launched' | 'save:requested' | 'restore:launched' | 'reattach:connected';

export function faultPoint(point: FaultPoint): void {
  const spec = process.env.TSVISOR_FAULT_POINT;
  if (!spec) return;
  const [name, action] = spec.split(':stop');
  if (name !== point) return;
  process.kill(process.pid, action === undefined ? 'SIGKILL' : 'SIGSTOP');
}
