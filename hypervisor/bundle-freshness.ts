/**
 * Prebuilt JavaScript bundles of thread and process entry points start without the TypeScript
 * loader (tens of milliseconds instead of hundreds). Next to each bundle lies the list of source
 * files it was built from (`<bundle>.inputs.json`, paths relative to the repository root); a
 * bundle counts only while it is newer than every one of them, so a stale bundle never runs.
 * TSVISOR_BUNDLES=0 turns bundles off.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * `npm pack` writes this beside the bundles it ships (and removes it after): an installed package
 * holds the very sources its bundles were built from, but npm extracts files in no particular
 * order, so their times say nothing there.
 */
export const PACKED_MARKER = 'packed.json';

export function freshBundlePath(bundle: string): string | null {
  if (process.env.TSVISOR_BUNDLES === '0' || process.env.TSVISOR_WORKER_BUNDLES === '0') return null;
  try {
    if (existsSync(join(dirname(bundle), PACKED_MARKER))) return existsSync(bundle) ? bundle : null;
    const built = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(`${bundle}.inputs.json`, 'utf8')) as string[];
    return inputs.every((f) => statSync(join(REPO_ROOT, f)).mtimeMs < built) ? bundle : null;
  } catch {
    return null;
  }
}
