/**
 * What the management core asks of whoever owns the objects (the VMMS later; an in-memory store
 * in tests). Adapters never call a provider directly: CimObjectManager validates classes, keys
 * and method parameters against the schema first, resolves inheritance and computes
 * associations generically from association instances.
 */
import type { CimInstance } from './instance.ts';
import type { CimObjectPath } from './object-path.ts';
import type { CimValue } from './types.ts';

export interface CimMethodResult {
  /** The method's uint32 return code (e.g. 0 done, 4096 job started, 32775 invalid state). */
  readonly returnValue: number;
  /** Out parameters by declared name; omit or null for NULL. */
  readonly out: Readonly<Record<string, CimValue>>;
}

/** Intrinsic events (WMI __InstanceCreationEvent, __InstanceModificationEvent, __InstanceDeletionEvent). */
export type CimInstanceEventKind = 'creation' | 'modification' | 'deletion';

export const InstanceEventClass: Readonly<Record<CimInstanceEventKind, string>> = {
  creation: '__InstanceCreationEvent',
  modification: '__InstanceModificationEvent',
  deletion: '__InstanceDeletionEvent',
};

export interface CimInstanceEvent {
  readonly kind: CimInstanceEventKind;
  /** The instance after the change; for a deletion, the instance as it was. */
  readonly target: CimInstance;
  /** Modification only: the instance before the change. */
  readonly previous?: CimInstance;
  readonly time: Date;
}

export type CimEventListener = (event: CimInstanceEvent) => void;

export interface CimProvider {
  /** Instances whose class is exactly `className` (the core adds subclasses itself). */
  enumerateInstances(className: string): readonly CimInstance[];
  /** The instance at `path` (keys typed and complete), or null. */
  getInstance(path: CimObjectPath): CimInstance | null;
  /**
   * Run an extrinsic method. `params` holds the in parameters by declared name, already typed;
   * embedded instances arrive as CimInstance. For a static method `path` has no keys.
   */
  invokeMethod(path: CimObjectPath, method: string, params: Readonly<Record<string, CimValue>>): Promise<CimMethodResult>;
  /** Push intrinsic events as instances change; returns the unsubscribe function. */
  subscribe(listener: CimEventListener): () => void;
}
