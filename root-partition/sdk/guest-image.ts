/**
 * Building guest images for SDK projects that live outside this repository: the same compiler,
 * flags and child-SDK runtime as `scripts/build-guests.ts`, for any entry file, cached by the
 * hash of the project's guest sources, the child SDK and the flags.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import asc from 'assemblyscript/asc';
import { guestBuildFlags } from '../../scripts/build-guests.ts';

/** The repository root: where `child-sdk/` and `abi/` are. */
export const SDK_ROOT = resolve(import.meta.dirname, '..', '..');

function sources(dir: string, acc: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, acc);
    else if (p.endsWith('.ts')) acc.push(p);
  }
  return acc;
}

/**
 * Compiles the AssemblyScript guest at `entry` (a `main.ts` exporting `boot` and `interrupt`,
 * importing the child SDK by relative path) to `outFile`. Every `.ts` file beside the entry and
 * below is part of the cache key. Returns true when it compiled, false when the image was up to
 * date. Throws with the compiler's messages on an error.
 */
export async function buildGuestImage(entry: string, outFile: string): Promise<boolean> {
  const abs = resolve(entry);
  const out = resolve(outFile);
  const h = createHash('sha256');
  for (const f of [...sources(dirname(abs)), ...sources(join(SDK_ROOT, 'child-sdk')), ...sources(join(SDK_ROOT, 'abi'))].sort()) {
    h.update(f);
    h.update(readFileSync(f));
  }
  h.update(guestBuildFlags().join(' '));
  const key = h.digest('hex');
  const stamp = `${out}.key`;
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) return false;
  mkdirSync(dirname(out), { recursive: true });
  const cwd = process.cwd();
  // The build line names the runtime and the abort hook relative to the repository root.
  process.chdir(SDK_ROOT);
  try {
    const { error, stderr } = await asc.main([relative(SDK_ROOT, abs), '--outFile', out, ...guestBuildFlags()]);
    if (error) throw new Error(`building guest image ${entry} failed: ${error.message}\n${stderr.toString()}`);
  } finally {
    process.chdir(cwd);
  }
  writeFileSync(stamp, key);
  return true;
}
