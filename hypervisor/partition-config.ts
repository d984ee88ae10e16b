/** How a partition is created, the states it goes through, and what a pause achieved. */
import type { WaitPolicy } from './adaptive-wait.ts';
import type { RewriteOptions } from './rewrite/rewrite-abi.ts';

/** What Partition.pause achieved: every VP parked, or the VPs that did not (the pause undone). */
export interface PauseOutcome {
  paused: boolean;
  notParked: number[];
}

export type PartitionState = 'created' | 'initialized' | 'active' | 'finalized' | 'deleted';

export interface PartitionConfig {
  id: number;
  name?: string;
  memoryBytes: number;
  vpCount: number;
  privileges?: { lo: number; hi: number };
  /** Spin budget of VP and root waits (adaptive wait); 0 sleeps at once. */
  waitPolicy?: WaitPolicy;
  /** How the image is prepared at load; default preemption points (TSVISOR_REWRITE=0: unmodified). */
  rewrite?: RewriteOptions;
  /** Fuel between two preemption points (hypervisor/rewrite/preempt-budget.ts). */
  preemptBudget?: number;
}
