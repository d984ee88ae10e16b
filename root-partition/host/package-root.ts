/**
 * The tsvisor package a process runs from: the nearest directory above `from` whose package.json
 * is named "tsvisor". Found by walking up, so it holds from the sources, from the built bundles
 * (`build/host/…`) and from an installed package alike.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function packageRoot(from = import.meta.dirname): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'tsvisor') return dir;
    } catch {
      /* not here */
    }
    if (dirname(dir) === dir) return null;
  }
}
