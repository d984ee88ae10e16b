/**
 * Bundles the VP thread (hypervisor/vp/vp-thread.ts and what it imports) into one JavaScript
 * file, so a VP worker starts without compiling TypeScript: with the tsx loader a worker takes
 * hundreds of milliseconds to start, the bundle tens. Partition uses the bundle only while it is
 * newer than every hypervisor and abi source, so a stale bundle is never run.
 */
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
export const VP_BUNDLE = join(ROOT, 'build', 'host', 'vp-thread.mjs');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : /\.(ts|mjs)$/.test(e.name) ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

export async function buildHost(force = false): Promise<boolean> {
  const sources = Math.max(newestSource(join(ROOT, 'hypervisor')), newestSource(join(ROOT, 'abi')));
  let bundled = 0;
  try { bundled = statSync(VP_BUNDLE).mtimeMs; } catch { /* not built yet */ }
  if (!force && bundled > sources) return false;
  await build({
    entryPoints: [join(ROOT, 'hypervisor', 'vp', 'vp-thread.ts')],
    outfile: VP_BUNDLE,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const built = await buildHost(process.argv.includes('--force'));
  console.log(`VP thread bundle: ${built ? 'built' : 'up to date'}`);
}
