/**
 * What `npm pack` ships, read from npm itself (`npm pack --dry-run --json`): the command, the
 * sources it runs from, the prebuilt host bundles and guest images (npm test builds them first;
 * `prepack` builds them when packing for real), the license — and nothing of the development
 * tree (tests, fuzz corpus, benchmark results, CI files).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildGuests } from '../../scripts/build-guests.ts';
import { buildHost } from '../../scripts/build-host.ts';
import { buildMan } from '../../scripts/build-man.ts';

const ROOT = join(import.meta.dirname, '..', '..');

it('npm pack ships the command, prebuilt bundles and guest images, and a license, and nothing else', async () => {
  await buildHost();
  await buildGuests();
  buildMan();
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
  ) as [{ files: { path: string }[] }];
  const files = pack.files.map((f) => f.path);
  for (const f of [
    'LICENSE',
    'README.md',
    'package.json',
    'bin/tsvisor.mjs',
    'root-partition/cli/main.ts',
    'build/host/cli.mjs',
    'build/host/vmwp.mjs',
    'build/host/cli.mjs.inputs.json',
    'build/guests/hello.wasm',
    'build/guests/ref-enlightened.wasm',
    'build/man/tsvisor.1',
  ]) {
    expect(files).toContain(f);
  }
  // Every guest image built is shipped, so an installed tsvisor never compiles one.
  const images = readdirSync(join(ROOT, 'build', 'guests'))
    .filter((f) => f.endsWith('.wasm'))
    .map((f) => `build/guests/${f}`);
  expect(images.filter((f) => !files.includes(f))).toEqual([]);
  const allowed =
    /^(LICENSE|README\.md|package\.json|tsconfig\.json|bin\/|abi\/|hypervisor\/|vmbus\/|root-partition\/|child-sdk\/|scripts\/|bench\/[^/]+\.(ts|mjs)$|bench\/io\/|bench\/net\/|build\/(host|guests|image-cache|man)\/|docs\/)/;
  expect(files.filter((f) => !allowed.test(f))).toEqual([]);
  expect(files.filter((f) => /^(test|fuzz|\.ci|node_modules|scratch)\/|bench\/results\/|package-lock\.json/.test(f))).toEqual([]);
}, 300_000);
