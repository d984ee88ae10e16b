/**
 * The host's entry points as single JavaScript files (esbuild), so they start without the tsx
 * loader compiling TypeScript: with the loader a process or worker thread takes hundreds of
 * milliseconds to start (seconds for the CLI on a busy machine); bundled, a fraction of that.
 *
 *   vp-thread      a VP's worker thread (hypervisor/vp/vp-thread.ts), started by Partition
 *   vmwp           the worker process (worker-main.ts), spawned by VMMS
 *   device-thread  the device thread (device-thread-main.ts)
 *   storvsp-queue-thread  a storvsp sub-channel's queue thread (storvsp-queue-thread-main.ts)
 *   cli            the tsvisor command (bin/tsvisor.mjs runs it when fresh)
 *   vmms           the daemon alone (daemon-main.ts), for service managers and test harnesses
 *
 * Next to each bundle, the list of every source file it was built from: a bundle is used only
 * while it is newer than each of them, so a stale bundle never runs. Inside a bundle each module
 * keeps its own `import.meta.url`, `dirname` and `filename` (the source file's), so what a module finds relative to itself
 * — the VP thread's code, the device thread's — is found as it is from the sources.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { freshBundlePath } from '../../hypervisor/bundle-freshness.ts';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const WORKER_BUNDLES = {
  'vp-thread': 'hypervisor/vp/vp-thread.ts',
  vmwp: 'root-partition/vmwp/worker-main.ts',
  'device-thread': 'root-partition/vmwp/device-thread-main.ts',
  'storvsp-queue-thread': 'root-partition/vsp/storvsp/storvsp-queue-thread-main.ts',
  cli: 'root-partition/cli/main.ts',
  vmms: 'root-partition/vmms/daemon-main.ts',
} as const;
export type WorkerBundle = keyof typeof WORKER_BUNDLES;

/** Packages left as imports: they read their own files (wasm, native add-ons) or are build tools. */
const BUNDLE_EXTERNAL = ['binaryen', 'v86', 'esbuild', 'tsx', 'assemblyscript', 'msgpackr-extract', 'playwright-core', 'vitest'];

export function bundlePath(name: WorkerBundle): string {
  return join(ROOT, 'build', 'host', `${name}.mjs`);
}

/** The bundle's path if it exists and is newer than every source it holds; null otherwise. */
export function freshBundle(name: WorkerBundle): string | null {
  return freshBundlePath(bundlePath(name));
}

/** Builds the bundles that are missing or stale. Returns the names built. */
export async function buildWorkerBundles(force = false): Promise<WorkerBundle[]> {
  const built: WorkerBundle[] = [];
  for (const name of Object.keys(WORKER_BUNDLES) as WorkerBundle[]) {
    if (!force && freshBundle(name)) continue;
    await buildBundle(name);
    built.push(name);
  }
  return built;
}

/** Spelled in parts: this file is bundled too, and its own text must not be rewritten. */
const META = ['import', 'meta'].join('.');

async function buildBundle(name: WorkerBundle): Promise<void> {
  // esbuild is a build tool: loaded only when a build is needed, never on a worker's start path.
  const { build } = await import('esbuild');
  const path = bundlePath(name);
  const result = await build({
    entryPoints: [join(ROOT, WORKER_BUNDLES[name])],
    outfile: path,
    absWorkingDir: ROOT,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Packages are bundled too: resolving and loading each of their files at start (winston,
    // protobufjs, msgpackr, fast-xml-parser: hundreds of files) cost a CLI run more than half its
    // time. Those that load files of their own at run time (wasm, native add-ons, compilers) or
    // only build things stay imports of node_modules.
    external: BUNDLE_EXTERNAL,
    // Their CommonJS code calls require() for Node's modules; an ES module has none of its own.
    banner: { js: `import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(${META}.url);` },
    // Beside the bundle, not inside it: Node reads a map only under --enable-source-maps, and an
    // inline one tripled the bytes every start decodes.
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, (args) => {
            const source = readFileSync(args.path, 'utf8');
            if (!source.includes(`${META}.`)) return undefined;
            // Relative to the bundle's own place at run time, so an installed copy (npm install -g)
            // finds the files beside it, not those of the tree it was built in.
            const own = `new URL(${JSON.stringify(relative(dirname(path), args.path).split(sep).join('/'))}, ${META}.url)`;
            const contents = source
              .replaceAll(`${META}.url`, `${own}.href`)
              .replaceAll(`${META}.dirname`, `decodeURIComponent(new URL('.', ${own}).pathname).replace(/\\/$/, '')`)
              .replaceAll(`${META}.filename`, `decodeURIComponent(${own}.pathname)`);
            return { contents, loader: 'ts' };
          });
        },
      },
    ],
  });
  const inputs = Object.keys(result.metafile.inputs)
    .filter((f) => !f.startsWith('node_modules/'))
    .map((f) => relative(ROOT, join(ROOT, f)));
  // The bundled packages change with the lock file (an installed copy has none, and never rebuilds).
  if (existsSync(join(ROOT, 'package-lock.json'))) inputs.push('package-lock.json');
  writeFileSync(`${path}.inputs.json`, JSON.stringify(inputs));
}
