/**
 * Prepared (rewritten) images, cached by a hash of the image and of the rewrite options, so a VM
 * start pays the rewrite once per image: in memory for this process, and on disk for the next
 * ones (TSVISOR_IMAGE_CACHE, else build/image-cache in the repository, else the user's cache
 * directory). A cache entry is only ever a hint: it is compiled and checked like any image, and
 * a file that fails is rewritten again. Entries are written to a temporary name and renamed, so
 * processes preparing the same image at once never see half a file.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../bundle-freshness.ts';
import { isRewritten, type RewriteOptions } from './rewrite-abi.ts';
import { runRewrite, rewriteTimeoutMs } from './run-rewrite.ts';

/**
 * Bumped whenever the rewrite's output changes for the same input, so stale entries are never
 * used. Part of every cache key, with the binaryen version.
 */
export const REWRITE_VERSION = 3;

const MEMORY_ENTRIES = 32;
const memory = new Map<string, WebAssembly.Module>();

let binaryenVersion: string | undefined;
function rewriterVersion(): string {
  binaryenVersion ??= (() => {
    try {
      return JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'binaryen', 'package.json'), 'utf8')).version as string;
    } catch {
      return 'unknown';
    }
  })();
  return `${REWRITE_VERSION}/${binaryenVersion}`;
}

export function cacheKey(bytes: Uint8Array, options: RewriteOptions): string {
  return createHash('sha256').update(rewriterVersion()).update(JSON.stringify(options)).update(bytes).digest('hex');
}

function cacheDirs(): string[] {
  if (process.env.TSVISOR_IMAGE_CACHE) return [process.env.TSVISOR_IMAGE_CACHE];
  const user = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return [join(REPO_ROOT, 'build', 'image-cache'), join(user, 'tsvisor', 'images')];
}

export function readCached(key: string): WebAssembly.Module | null {
  for (const dir of cacheDirs()) {
    try {
      const module = new WebAssembly.Module(readFileSync(join(dir, `${key}.wasm`)));
      if (isRewritten(module)) return module;
    } catch {
      // absent, unreadable or damaged: try the next place, then rewrite
    }
  }
  return null;
}

export function writeCached(key: string, bytes: Uint8Array): void {
  for (const dir of cacheDirs()) {
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `${key}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
      writeFileSync(tmp, bytes);
      renameSync(tmp, join(dir, `${key}.wasm`));
      return;
    } catch {
      // not writable here: try the next place; no cache at all only costs time
    }
  }
}

export interface PrepareOptions {
  rewrite: RewriteOptions;
  timeoutMs?: number;
}

/** The prepared module for `bytes` (a valid module without data segments). */
export function preparedModule(bytes: Uint8Array, opts: PrepareOptions): WebAssembly.Module {
  const key = cacheKey(bytes, opts.rewrite);
  const hit = memory.get(key) ?? readCached(key);
  if (hit) return remember(key, hit);
  const rewritten = runRewrite(bytes, opts.rewrite, opts.timeoutMs ?? rewriteTimeoutMs());
  const module = new WebAssembly.Module(rewritten as Uint8Array<ArrayBuffer>);
  writeCached(key, rewritten);
  return remember(key, module);
}

function remember(key: string, module: WebAssembly.Module): WebAssembly.Module {
  memory.delete(key);
  memory.set(key, module);
  if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value!);
  return module;
}

/** Empties this process's in-memory cache (the disk cache stays). */
export function forgetPreparedModules(): void {
  memory.clear();
}
