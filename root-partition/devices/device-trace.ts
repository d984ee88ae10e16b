/**
 * Per-component tracing switched on by environment variable, e.g. `TSVISOR_TRACE=ide,pic`
 * (`all` for everything). A component whose trace is off gets `undefined`, so a hot path pays one
 * comparison: `trace?.(…)` builds no message at all.
 */
export type Trace = (message: string) => void;

const enabled = new Set(
  (typeof process !== 'undefined' ? (process.env.TSVISOR_TRACE ?? '') : '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0),
);

/** Where trace lines go; tests and the VMWP may redirect it (default: stderr). */
export let traceSink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setTraceSink(sink: (line: string) => void): void {
  traceSink = sink;
}

export function tracer(component: string, forceOn = false): Trace | undefined {
  if (!forceOn && !enabled.has(component) && !enabled.has('all')) return undefined;
  return (message) => traceSink(`[${component}] ${message}`);
}
