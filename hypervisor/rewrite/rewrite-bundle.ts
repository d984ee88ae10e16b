/**
 * The rewrite worker runs as one JavaScript file. The loader blocks its thread while it waits for
 * the rewrite (loading is synchronous), and a worker that runs TypeScript through tsx's loader
 * hook needs that thread to load: it would never start. So the worker always starts from a
 * bundle (build/host/rewrite-worker.mjs, with the same freshness rule as the other bundles:
 * bundle-freshness.ts); when the bundle is missing or older than a source, it is rebuilt here,
 * synchronously, with esbuild (a few hundred ms, once).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freshBundlePath, REPO_ROOT } from '../bundle-freshness.ts';
import { HvError } from '../hv-error.ts';

export const REWRITE_BUNDLE = join(REPO_ROOT, 'build', 'host', 'rewrite-worker.mjs');
const ENTRY = join(REPO_ROOT, 'hypervisor', 'rewrite', 'rewrite-worker.ts');

type BuildSync = (o: Record<string, unknown>) => { metafile?: { inputs: Record<string, unknown> }; errors: unknown[] };

export function rewriteWorkerUrl(): URL {
  const fresh = freshBundlePath(REWRITE_BUNDLE);
  if (fresh) return pathToFileURL(fresh);
  buildRewriteBundle();
  return pathToFileURL(REWRITE_BUNDLE);
}

/** Builds the worker bundle; written under a temporary name and renamed, as processes may race. */
export function buildRewriteBundle(): void {
  try {
    const { buildSync } = createRequire(join(REPO_ROOT, 'package.json'))('esbuild') as { buildSync: BuildSync };
    const tmp = `${REWRITE_BUNDLE}.${process.pid}.tmp.mjs`;
    mkdirSync(dirname(REWRITE_BUNDLE), { recursive: true });
    const result = buildSync({
      entryPoints: [ENTRY],
      outfile: tmp,
      absWorkingDir: REPO_ROOT,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile!.inputs)
      .filter((f) => !f.startsWith('node_modules/'))
      .map((f) => relative(REPO_ROOT, join(REPO_ROOT, f)));
    renameSync(tmp, REWRITE_BUNDLE);
    writeFileSync(`${REWRITE_BUNDLE}.inputs.json`, JSON.stringify(inputs));
  } catch (e) {
    throw new HvError('HV_ERR_REWRITER', `cannot build the image rewriter (${REWRITE_BUNDLE}): ${e instanceof Error ? e.message : String(e)}`);
  }
}
