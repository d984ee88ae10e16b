/** Plain-text tables and JSON for the CLI: columns padded to their widest cell. */
import type { CimInstance } from '../management/cim/instance.ts';
import { encodeValue } from '../management/client/wire.ts';
import type { CimValue } from '../management/cim/types.ts';

export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(headers));
  for (const r of rows) console.log(line(r));
}

export function valueText(v: CimValue | undefined): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => valueText(x)).join(',');
  if (typeof v === 'object' && 'className' in v && 'keys' in v) return `${v.className}.${v.keys.map((k) => `${k.name}="${String(k.value)}"`).join(',')}`;
  if (typeof v === 'object' && 'properties' in v) return `<${v.className}>`;
  return String(v);
}

/** An instance as a JSON object of its non-NULL properties (uint64 as strings, paths as objects). */
export function instanceJson(i: CimInstance): Record<string, unknown> {
  const out: Record<string, unknown> = { __CLASS: i.className };
  for (const p of i.properties) if (p.value !== null) out[p.name] = encodeValue(p.value);
  return out;
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}
