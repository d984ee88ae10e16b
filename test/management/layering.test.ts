import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Imports inside root-partition/management point one way: cimxml → wql → cim
 * (root-partition/management/README.md). The core stays protocol-neutral: it
 * imports nothing of an adapter, and nothing of the project outside management.
 */
const ROOT = resolve(import.meta.dirname, '../../root-partition/management');
const LAYER_ALLOWS: Record<string, readonly string[]> = {
  cim: ['cim'],
  wql: ['cim', 'wql'],
  cimxml: ['cim', 'wql', 'cimxml', 'access'],
  access: ['access'],
  provider: ['cim', 'provider'],
  client: ['cim', 'client'],
  web: ['cim', 'access', 'cimxml', 'web'],
};
/** Packages one layer may use beyond PACKAGES: the web console's app bundles xterm.js (for the browser). */
const LAYER_PACKAGES: Record<string, readonly string[]> = { web: ['@xterm/xterm'] };
const PACKAGES = [
  'node:http',
  'node:https',
  'node:net',
  'node:crypto',
  'node:events',
  'node:fs',
  'node:os',
  'node:path',
  'node:worker_threads',
  'fast-xml-parser',
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('management layering', () => {
  it('every import stays within the layers its folder may use', () => {
    const violations: string[] = [];
    for (const file of files(ROOT)) {
      const layer = relative(ROOT, file).split('/')[0]!;
      const allowed = LAYER_ALLOWS[layer];
      if (!allowed) {
        violations.push(`${file}: folder ${layer} has no layer rule`);
        continue;
      }
      for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) {
          const target = relative(ROOT, resolve(file, '..', spec));
          const targetLayer = target.split('/')[0]!;
          if (target.startsWith('..') || !allowed.includes(targetLayer)) violations.push(`${relative(ROOT, file)} imports ${spec}`);
        } else if (!PACKAGES.includes(spec) && !(LAYER_PACKAGES[layer] ?? []).includes(spec)) {
          violations.push(`${relative(ROOT, file)} imports package ${spec}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
