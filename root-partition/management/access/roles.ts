/**
 * Who may do what, as Hyper-V's two stances on the management service: members of Hyper-V
 * Administrators change VMs; a read-only principal may look (enumerate, get, GetClass,
 * associations, queries) and nothing more. A change attempted without `full` is refused with
 * CIM_ERR_ACCESS_DENIED (DSP0200: authenticated but not permitted is a CIM error, not an HTTP one).
 */
export const ROLES = ['read-only', 'full'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** The stronger of two roles (a principal matched by several entries gets the most it is given). */
export function strongerRole(a: Role | null, b: Role | null): Role | null {
  if (a === 'full' || b === 'full') return 'full';
  return a ?? b;
}

/** Intrinsic operations (DSP0200) that change the model; every other intrinsic operation only reads. */
const CHANGING_INTRINSICS = new Set([
  'createinstance',
  'modifyinstance',
  'deleteinstance',
  'setproperty',
  'createclass',
  'modifyclass',
  'deleteclass',
  'setqualifier',
  'deletequalifier',
]);

/** Extrinsic methods that only report: Msvm_VirtualSystemManagementService.GetSummaryInformation. */
const READING_METHODS = new Set(['getsummaryinformation']);

/** Whether a request of this kind and name needs the `full` role. Unknown extrinsic methods do. */
export function needsFullRole(kind: 'intrinsic' | 'extrinsic', method: string): boolean {
  const m = method.toLowerCase();
  return kind === 'intrinsic' ? CHANGING_INTRINSICS.has(m) : !READING_METHODS.has(m);
}
