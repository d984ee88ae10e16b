/** Which tsvisor made a report: the package version and, in a git checkout, the commit (and whether it had local changes). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BuildIdentity {
  version: string;
  /** The commit, `<sha>-dirty` with uncommitted changes, or null outside a git checkout. */
  commit: string | null;
}

const ROOT = join(import.meta.dirname, '..', '..');

export function buildIdentity(): BuildIdentity {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const sha = git('rev-parse', 'HEAD');
    return { version, commit: git('status', '--porcelain', '--untracked-files=no') ? `${sha}-dirty` : sha };
  } catch {
    return { version, commit: null };
  }
}
