/**
 * The layers point one way: root-partition → vmbus → hypervisor → abi, and the child SDK shares
 * only the abi/ wire formats with the host. This test reads every import in the tree and fails on
 * one against the arrows.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

const ALLOWED: Record<string, string[]> = {
  abi: ['abi'],
  hypervisor: ['hypervisor', 'abi'],
  vmbus: ['vmbus', 'hypervisor', 'abi'],
  'root-partition': ['root-partition', 'vmbus', 'hypervisor', 'abi', 'scripts', 'bench'],
  'child-sdk': ['child-sdk', 'abi'],
  bench: ['bench', 'root-partition', 'vmbus', 'hypervisor', 'abi', 'scripts'],
};

function files(dir: string, acc: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) files(p, acc);
    else if (/\.(ts|mts|mjs|js)$/.test(p) && !p.endsWith('.d.ts')) acc.push(p);
  }
  return acc;
}

export function importViolations(): string[] {
  const bad: string[] = [];
  for (const layer of Object.keys(ALLOWED)) {
    let list: string[];
    try {
      list = files(join(ROOT, layer));
    } catch {
      continue;
    }
    for (const file of list) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]|import\s+['"]([^'"]+)['"]/g)) {
        const spec = m[1] ?? m[2] ?? m[3];
        if (!spec.startsWith('.')) continue;
        const target = relative(ROOT, resolve(dirname(file), spec));
        const top = target.split('/')[0];
        if (!ALLOWED[layer].includes(top)) bad.push(`${relative(ROOT, file)} imports ${spec} (${layer} → ${top})`);
      }
    }
  }
  return bad;
}

describe('layering', () => {
  it('has no import against the arrows', () => {
    expect(importViolations()).toEqual([]);
  });
});
