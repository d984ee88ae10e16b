/**
 * The Linux guest for the tests: built from Debian packages when it is not built yet. The tests
 * skip only when the packages could not be fetched (the build step says why).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadLinuxGuest } from '../../root-partition/x86/linux-guest-files.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export function linuxGuestUnavailable(): string | undefined {
  let g = loadLinuxGuest();
  if ('manifest' in g) return undefined;
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'build-linux-guest.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  g = loadLinuxGuest();
  if ('manifest' in g) return undefined;
  if (r.status === 2) return g.unavailable;
  throw new Error(`building the Linux guest failed (exit ${r.status}):\n${r.stderr}`);
}
