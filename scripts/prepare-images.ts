/**
 * Fills the prepared-image cache (hypervisor/rewrite/prepared-image-cache.ts) for every built
 * guest image, so that the first VM start of each image does not pay the rewrite. Runs binaryen
 * in this process once for all images (the images are the project's own build output; the
 * loader still rewrites untrusted images in a bounded worker).
 * Usage: tsx scripts/prepare-images.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseGuestImage } from '../hypervisor/image-loader.ts';
import { cacheKey, readCached, writeCached } from '../hypervisor/rewrite/prepared-image-cache.ts';
import { DEFAULT_REWRITE } from '../hypervisor/rewrite/rewrite-abi.ts';
import { freshBundlePath } from '../hypervisor/bundle-freshness.ts';
import { buildRewriteBundle, REWRITE_BUNDLE } from '../hypervisor/rewrite/rewrite-bundle.ts';

const dir = join(import.meta.dirname, '..', 'build', 'guests');
if (!freshBundlePath(REWRITE_BUNDLE)) buildRewriteBundle();
const pending: { name: string; key: string; stripped: Uint8Array }[] = [];
for (const f of readdirSync(dir)
  .filter((n) => n.endsWith('.wasm'))
  .sort()) {
  const { stripped } = parseGuestImage(readFileSync(join(dir, f)));
  const key = cacheKey(stripped, DEFAULT_REWRITE);
  if (!readCached(key)) pending.push({ name: f.replace(/\.wasm$/, ''), key, stripped });
}
if (pending.length > 0) {
  const { rewriteModule } = await import('../hypervisor/rewrite/rewrite-module.ts');
  for (const t of pending) writeCached(t.key, rewriteModule(t.stripped, DEFAULT_REWRITE).bytes);
}
console.log(`prepared images: ${pending.length ? `rewrote ${pending.map((t) => t.name).join(', ')}` : 'up to date'}`);
