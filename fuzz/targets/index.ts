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

const stackOverflow = (f: Finding) => f.kind === 'crash' && /Maximum call stack/.test(f.summary);

export const TARGETS: readonly TargetEntry[] = [
  { name: 'vmbus-channel', module: 'vmbus-channel.ts' },
  { name: 'vmbus-ring', module: 'vmbus-ring.ts' },
  { name: 'storvsp', module: 'storvsp.ts' },
  { name: 'ic', module: 'ic.ts' },
  { name: 'ide', module: 'ide.ts' },
  { name: 'uart', module: 'uart.ts' },
  {
    name: 'cimxml', module: 'cimxml.ts',
    knownFinding: (f) => (stackOverflow(f) ? 'XML nesting depth is not limited (XML limits fix)' : null),
  },
  {
    name: 'wql', module: 'wql.ts',
    knownFinding: (f, text) =>
      (f.kind === 'slow' || f.kind === 'hang') && /LIKE/i.test(text) ? 'LIKE pattern matching backtracks exponentially (WQL LIKE fix)'
        : stackOverflow(f) ? 'WQL expression nesting depth is not limited (WQL nesting fix)' : null,
  },
  { name: 'saved-state', module: 'saved-state.ts' },
  { name: 'vm-definition', module: 'vm-definition.ts' },
];

export const targetModuleUrl = (t: TargetEntry): string => new URL(`./${t.module}`, import.meta.url).href;
