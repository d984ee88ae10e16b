/**
 * Bundles the web console's single-page app (root-partition/management/web/app/) with esbuild
 * into build/web/: app.js (the app and xterm.js, one file), app.css (the app's and xterm's
 * styles) and index.html. Nothing is fetched from elsewhere at run time: no CDN. Skipped while
 * the bundle is newer than every source it holds (listed in build/web/inputs.json).
 * Usage: tsx scripts/build-web.ts [--force]
 */
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const APP = join(ROOT, 'root-partition', 'management', 'web', 'app');
export const WEB_OUT = join(ROOT, 'build', 'web');

function fresh(): boolean {
  try {
    const built = statSync(join(WEB_OUT, 'app.js')).mtimeMs;
    const inputs = JSON.parse(readFileSync(join(WEB_OUT, 'inputs.json'), 'utf8')) as string[];
    return inputs.every((f) => statSync(join(ROOT, f)).mtimeMs < built);
  } catch {
    return false;
  }
}

export async function buildWeb(force = false): Promise<boolean> {
  if (!force && fresh()) return false;
  const { build } = await import('esbuild');
  mkdirSync(WEB_OUT, { recursive: true });
  const result = await build({
    entryPoints: { app: join(APP, 'main.ts') },
    outdir: WEB_OUT,
    absWorkingDir: ROOT,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    // Current Chromium and Firefox; nothing older is promised.
    target: ['chrome120', 'firefox120'],
    minify: true,
    sourcemap: false,
    metafile: true,
    logLevel: 'warning',
    legalComments: 'linked',
  });
  const inputs = [...Object.keys(result.metafile.inputs), 'root-partition/management/web/app/index.html'];
  copyFileSync(join(APP, 'index.html'), join(WEB_OUT, 'index.html'));
  writeFileSync(join(WEB_OUT, 'inputs.json'), JSON.stringify(inputs, null, 1));
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const built = await buildWeb(process.argv.includes('--force'));
  console.log(`web console: ${built ? `built ${WEB_OUT}` : 'up to date'}`);
}
