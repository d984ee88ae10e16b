/**
 * Writes build/man/tsvisor.1 from the built CLI's command tree (`tsvisor man`), so the page that
 * `npm install -g` links into man(1)'s path says what this build's `--help` says. Skipped while
 * the page is newer than the CLI bundle.
 * Usage: tsx scripts/build-man.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const MAN_PAGE = join(ROOT, 'build', 'man', 'tsvisor.1');
const CLI_BUNDLE = join(ROOT, 'build', 'host', 'cli.mjs');

export function buildMan(): boolean {
  try {
    if (statSync(MAN_PAGE).mtimeMs > statSync(CLI_BUNDLE).mtimeMs) return false;
  } catch {
    /* not built yet */
  }
  mkdirSync(join(ROOT, 'build', 'man'), { recursive: true });
  execFileSync(process.execPath, [CLI_BUNDLE, 'man', '--output', MAN_PAGE], { stdio: ['ignore', 'ignore', 'inherit'] });
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) buildMan();
