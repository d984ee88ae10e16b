/**
 * Test-only crash points in VHDX metadata updates. With `TSVISOR_VHDX_FAULT_POINT=<point>` (or
 * `<point>@<n>` for its n-th passage) in the environment, the process kills itself (SIGKILL:
 * nothing more reaches the file) when it reaches that point. The crash-consistency test runs a
 * writer child with each point in turn and reopens the file. Unset, it does nothing.
 */
export type VhdxFaultPoint =
  | 'alloc:data-written' // guest data in the new block, not yet flushed
  | 'log:entry-written' // log entry written, not flushed
  | 'log:entry-synced' // log entry durable, LogGuid still 0
  | 'log:header-set' // header with the LogGuid durable: the entry is live
  | 'log:applied-partly' // the first of several metadata sectors written in place
  | 'log:applied' // metadata written in place, not flushed
  | 'log:applied-synced' // metadata durable, LogGuid still set
  | 'log:header-cleared' // LogGuid 0 again
  | 'session:header-1'; // first header of a session's GUID update durable, second not yet

export const VHDX_FAULT_POINTS: VhdxFaultPoint[] = [
  'session:header-1',
  'alloc:data-written',
  'log:entry-written',
  'log:entry-synced',
  'log:header-set',
  'log:applied-partly',
  'log:applied',
  'log:applied-synced',
  'log:header-cleared',
];

const passages = new Map<string, number>();

export function vhdxFaultPoint(point: VhdxFaultPoint): void {
  const spec = process.env.TSVISOR_VHDX_FAULT_POINT;
  if (!spec) return;
  const [name, nth] = spec.split('@');
  if (name !== point) return;
  const n = (passages.get(point) ?? 0) + 1;
  passages.set(point, n);
  if (n === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
