/**
 * Building guest images for SDK projects that live outside this repository: the same compiler,
 * flags and child-SDK runtime as `scripts/build-guests.ts`, for any entry file, cached by the
 * hash of the project's guest sources, the child SDK and the flags.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
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
  // The compiler names every file by its path from the working directory, and the build line
  // names the runtime and the abort hook by such paths. Compiling from the common ancestor of
  // the project and the repository keeps each SDK file under one name (a project's
  // "../../sdk/child-sdk/…" import and the runtime flag then meet), with the two flags rebased.
  const base = commonAncestor(dirname(abs), SDK_ROOT);
  const sdk = relative(base, SDK_ROOT);
  const flags = guestBuildFlags().map((f) =>
    f.startsWith('./child-sdk/') ? `./${join(sdk, f.slice(2))}` : f.startsWith('abort=child-sdk/') ? `abort=${join(sdk, f.slice(6))}` : f,
  );
  process.chdir(base);
  try {
    const { error, stderr } = await (await loadCompiler()).main([relative(base, abs), '--outFile', out, ...flags]);
    if (error) throw new Error(`building guest image ${entry} failed: ${error.message}\n${stderr.toString()}`);
  } finally {
    process.chdir(cwd);
  }
  writeFileSync(stamp, key);
  return true;
}

function commonAncestor(a: string, b: string): string {
  const x = a.split(sep),
    y = b.split(sep);
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  return x.slice(0, i).join(sep) || sep;
}

/** The compiler loads binaryen (about a second): only a build that compiles pays for it, not every command. */
async function loadCompiler(): Promise<typeof import('assemblyscript/asc')> {
  return import('assemblyscript/asc');
}
