/**
 * Builds every guest image (child-sdk/guests/<name>/main.ts → build/guests/<name>.wasm) with the
 * platform's build line, skipping images whose inputs have not changed: the cache key is a hash
 * of every child-SDK and ABI source, the compiler version and the flags.
 * Usage: tsx scripts/build-guests.ts [--force] [name…]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { IMAGE_BASE } from '../abi/platform.ts';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, 'build', 'guests');
/** The runtime heap ends here; the page allocator's pool starts above it. */
export const GUEST_HEAP_LIMIT = 4 * 1024 * 1024;

export function guestBuildFlags(): string[] {
  return [
    '--importMemory',
    '--sharedMemory',
    '--zeroFilledMemory',
    '--enable',
    'threads',
    '--maximumMemory',
    '65536',
    '--memoryBase',
    String(IMAGE_BASE),
    '--runtime',
    './child-sdk/runtime/runtime',
    '--use',
    `GUEST_HEAP_LIMIT=${GUEST_HEAP_LIMIT}`,
    '--use',
    'abort=child-sdk/runtime/panic/guestAbort',
    '--exportStart',
    '_start',
    '-O3',
    '--debug',
  ];
}

function sources(dir: string, acc: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, acc);
    else if (p.endsWith('.ts')) acc.push(p);
  }
  return acc;
}

export function listGuests(): string[] {
  const dir = join(ROOT, 'child-sdk', 'guests');
  return readdirSync(dir)
    .filter((n) => existsSync(join(dir, n, 'main.ts')))
    .sort();
}

function cacheKey(): string {
  const h = createHash('sha256');
  for (const f of [...sources(join(ROOT, 'child-sdk')), ...sources(join(ROOT, 'abi'))].sort()) {
    h.update(relative(ROOT, f));
    h.update(readFileSync(f));
  }
  h.update(JSON.parse(readFileSync(join(ROOT, 'node_modules', 'assemblyscript', 'package.json'), 'utf8')).version);
  h.update(guestBuildFlags().join(' '));
  return h.digest('hex');
}

export async function buildGuests(names: string[] = listGuests(), force = false): Promise<{ built: string[]; cached: string[] }> {
  mkdirSync(OUT, { recursive: true });
  const key = cacheKey();
  const built: string[] = [],
    cached: string[] = [];
  for (const name of names) {
    const wasm = join(OUT, `${name}.wasm`);
    const stamp = join(OUT, `${name}.key`);
    if (!force && existsSync(wasm) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) {
      cached.push(name);
      continue;
    }
    const cwd = process.cwd();
    process.chdir(ROOT); // --runtime and --use abort= are resolved against the working directory
    try {
      const { error, stderr } = await (await loadCompiler()).main([`child-sdk/guests/${name}/main.ts`, '--outFile', wasm, ...guestBuildFlags()]);
      if (error) throw new Error(`building guest image ${name} failed: ${error.message}\n${stderr.toString()}`);
    } finally {
      process.chdir(cwd);
    }
    writeFileSync(stamp, key);
    built.push(name);
  }
  return { built, cached };
}

export function guestImagePath(name: string): string {
  return join(OUT, `${name}.wasm`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const names = args.filter((a) => !a.startsWith('--'));
  const r = await buildGuests(names.length ? names : undefined, force);
  console.log(`guest images: ${r.built.length} built${r.built.length ? ` (${r.built.join(', ')})` : ''}, ${r.cached.length} up to date`);
}

/** The compiler loads binaryen (about a second): only a build that compiles pays for it, not every command. */
async function loadCompiler(): Promise<typeof import('assemblyscript/asc')> {
  return import('assemblyscript/asc');
}
