// npm pack's prepack and postpack: marks the host bundles in build/host as built from the sources
// packed beside them (hypervisor/bundle-freshness.ts trusts them in an installed package, where
// file times mean nothing), and removes the mark again so the development tree keeps checking.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const marker = join(fileURLToPath(new URL('..', import.meta.url)), 'build', 'host', 'packed.json');
if (process.argv[2] === 'remove') rmSync(marker, { force: true });
else writeFileSync(marker, JSON.stringify({ packedAt: new Date().toISOString() }) + '\n');
