/**
 * Orders kernel modules so that each one's dependencies load first. Debian's kernel package
 * ships no modules.dep (depmod makes it at install time), so the dependencies are read where
 * depmod reads them: the `depends=` string in each module's .modinfo section.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KernelModule {
  name: string;
  path: string;
}

function indexModules(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) indexModules(p, out);
    else if (e.name.endsWith('.ko')) out.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
  }
  return out;
}

/** The `depends=` entry of a module's .modinfo strings ("" when it has none). */
export function moduleDepends(ko: Uint8Array): string[] {
  const text = Buffer.from(ko).toString('latin1');
  const m = /\0depends=([^\0]*)\0/.exec(text);
  return m?.[1] ? m[1].split(',').map((d) => d.replace(/-/g, '_')) : [];
}

export function moduleLoadOrder(modulesDir: string, wanted: readonly string[]): KernelModule[] {
  const index = indexModules(join(modulesDir, 'kernel'));
  const order: KernelModule[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    const key = name.replace(/-/g, '_');
    if (seen.has(key)) return;
    if (chain.includes(key)) throw new Error(`module dependency cycle: ${[...chain, key].join(' -> ')}`);
    const path = index.get(key);
    if (!path) throw new Error(`kernel module not found: ${name} (needed by ${chain.join(' -> ') || 'the guest'})`);
    for (const d of moduleDepends(readFileSync(path))) visit(d, [...chain, key]);
    seen.add(key);
    order.push({ name: key, path });
  };
  for (const w of wanted) visit(w, []);
  return order;
}
