/**
 * Every fuzz target: a module under fuzz/targets exporting createTarget(). `knownFinding` names
 * findings already reported and being fixed elsewhere; they are reported as known, kept out of
 * the corpus, and do not fail CI. Remove an entry when its fix lands.
 */
import type { Finding } from '../engine/fuzz-loop.ts';

export interface TargetEntry {
  name: string;
  module: string;
  knownFinding?: (f: Finding, text: string) => string | null;
}

export const TARGETS: readonly TargetEntry[] = [
  { name: 'vmbus-channel', module: 'vmbus-channel.ts' },
  { name: 'vmbus-ring', module: 'vmbus-ring.ts' },
  { name: 'storvsp', module: 'storvsp.ts' },
  { name: 'ic', module: 'ic.ts' },
  { name: 'ide', module: 'ide.ts' },
  { name: 'uart', module: 'uart.ts' },
  { name: 'cimxml', module: 'cimxml.ts' },
  { name: 'wql', module: 'wql.ts' },
  { name: 'saved-state', module: 'saved-state.ts' },
  { name: 'vm-definition', module: 'vm-definition.ts' },
];

export const targetModuleUrl = (t: TargetEntry): string => new URL(`./${t.module}`, import.meta.url).href;
