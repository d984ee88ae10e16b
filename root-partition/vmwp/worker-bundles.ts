/**
 * The device thread's code as one JavaScript file (esbuild), so the thread starts without the
 * tsx loader compiling its TypeScript — with the loader a worker thread takes hundreds of
 * milliseconds to start, the bundle tens (the same approach as the VP thread's bundle,
 * scripts/build-host.ts). Next to the bundle, a list of every source file it was built from:
 * the bundle is used only while it is newer than each of them, so a stale bundle never runs.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEVICE_THREAD_BUNDLE = join(ROOT, 'build', 'host', 'device-thread.mjs');
const INPUTS = `${DEVICE_THREAD_BUNDLE}.inputs.json`;

/** The bundle if it exists and is newer than every source it holds; null otherwise. */
export function freshDeviceThreadBundle(): string | null {
  if (process.env.TSVISOR_DEVICE_BUNDLE === '0') return null;
  try {
    const built = statSync(DEVICE_THREAD_BUNDLE).mtimeMs;
    const inputs = JSON.parse(readFileSync(INPUTS, 'utf8')) as string[];
    // A source that was removed or changed since makes the bundle stale; a new source can only
    // enter through an import in one of these, which then changed too.
    return inputs.every((f) => statSync(join(ROOT, f)).mtimeMs < built) ? DEVICE_THREAD_BUNDLE : null;
  } catch {
    return null;
  }
}

/** Builds the bundle unless it is fresh. Returns true when it built. */
export async function buildDeviceThreadBundle(force = false): Promise<boolean> {
  if (!force && freshDeviceThreadBundle()) return false;
  // esbuild is a build tool: loaded only when a build is needed, never on a worker's start path.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(ROOT, 'root-partition', 'vmwp', 'device-thread-main.ts')],
    outfile: DEVICE_THREAD_BUNDLE,
    absWorkingDir: ROOT,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Packages stay imports of node_modules (resolved from the bundle's place under the root).
    packages: 'external',
    sourcemap: 'inline',
    metafile: true,
    logLevel: 'warning',
  });
  writeFileSync(INPUTS, JSON.stringify(Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node_modules/'))));
  return true;
}
