#!/usr/bin/env node
// Entry point of the tsvisor command: the prebuilt CLI bundle while it is newer than every
// source it was built from (npm run build makes it), else the TypeScript sources through tsx.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'build', 'host', 'cli.mjs');

function fresh() {
  if (process.env.TSVISOR_BUNDLES === '0') return false;
  // An installed package: its bundles were built from the sources beside them (scripts/pack-marker.mjs).
  if (existsSync(join(root, 'build', 'host', 'packed.json'))) return existsSync(bundle);
  try {
    const built = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(`${bundle}.inputs.json`, 'utf8'));
    return inputs.every((f) => statSync(join(root, f)).mtimeMs < built);
  } catch {
    return false;
  }
}

if (fresh()) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../root-partition/cli/main.ts');
}
