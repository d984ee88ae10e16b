/**
 * v86.wasm prepared for the x86 VP kind (v86-hyperv-rewrite.ts), cached on disk by a hash of the
 * input, the rewrite version and binaryen's version, so only the first start pays the rewrite
 * (seconds, most of it loading binaryen). The cache is build/image-cache in the repository or TSVISOR_IMAGE_CACHE, as for
 * guest images; an entry is written under a temporary name and renamed, and one that does not
 * compile to a prepared module is rewritten again.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../bundle-freshness.ts';
import { isPreparedV86, V86_REWRITE_VERSION } from './v86-hook-abi.ts';
import { packagedV86Wasm } from './x86-vp.ts';

function binaryenVersion(): string {
  try {
    return JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'binaryen', 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function cacheDir(): string {
  return process.env.TSVISOR_IMAGE_CACHE ?? join(REPO_ROOT, 'build', 'image-cache');
}

export function preparedV86Key(bytes: Uint8Array): string {
  return createHash('sha256').update(`v86-hyperv/${V86_REWRITE_VERSION}/${binaryenVersion()}/`).update(bytes).digest('hex');
}

/** The prepared v86.wasm for `bytes` (default: the installed package's), compiled, from the cache or rewritten now. */
export async function preparedV86(bytes: Uint8Array = packagedV86Wasm()): Promise<{ module: WebAssembly.Module; cached: boolean }> {
  const file = join(cacheDir(), `v86-${preparedV86Key(bytes)}.wasm`);
  try {
    const module = new WebAssembly.Module(readFileSync(file));
    if (isPreparedV86(module)) return { module, cached: true };
  } catch {
    // absent or damaged: rewrite
  }
  // binaryen is loaded only here, on a cache miss (the build step fills the cache).
  const { rewriteV86 } = await import('./v86-hyperv-rewrite.ts');
  const out = rewriteV86(bytes);
  try {
    mkdirSync(cacheDir(), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, out);
    renameSync(tmp, file);
  } catch {
    // a read-only cache only costs the next start a rewrite
  }
  return { module: new WebAssembly.Module(out as Uint8Array<ArrayBuffer>), cached: false };
}
