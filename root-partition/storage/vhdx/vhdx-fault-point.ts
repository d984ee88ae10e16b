/**
 * Test-only crash points in VHDX metadata updates. With `TSVISOR_VHDX_FAULT_POINT=<point>` (or
 * `<point>@<n>` for its n-th passage) in the environment, the process kills itself (SIGKILL:
 * nothing more reaches the file) when it reaches that point. The crash-consistency test runs a
 * writer child with each point in turn and reopens the file. `trace` names every passage on
 * stderr instead. Unset, it does nothing.
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
  | 'session:header-1' // first header of a session's GUID update durable, second not yet
  | 'merge:copied-partly' // a merge into a parent that keeps its name: the first piece written
  | 'merge:copied' // all the child's own sectors in the parent, flushed
  | 'repoint:relinked' // one more grandchild's locator names the base (vhdx-repoint.ts)
  | 'repoint:identity-1' // the base's new DataWriteGuid in one header slot
  | 'repoint:identity' // ... in both
  | 'repoint:linkage2-dropped'; // one more grandchild without parent_linkage2

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

/** The points of a merge into a base disk (vhdx-repoint.ts), in their order. */
export const REPOINT_FAULT_POINTS: VhdxFaultPoint[] = [
  'merge:copied-partly',
  'merge:copied',
  'repoint:relinked',
  'repoint:identity-1',
  'repoint:identity',
  'repoint:linkage2-dropped',
];

const passages = new Map<string, number>();

export function vhdxFaultPoint(point: VhdxFaultPoint): void {
  const spec = process.env.TSVISOR_VHDX_FAULT_POINT;
  if (!spec) return;
  // `trace`: every passage named on stderr, so a test can count the passages to crash at.
  if (spec === 'trace') {
    process.stderr.write(`vhdx-fault-point ${point}\n`);
    return;
  }
  const [name, nth] = spec.split('@');
  if (name !== point) return;
  const n = (passages.get(point) ?? 0) + 1;
  passages.set(point, n);
  if (n === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
