/**
 * Builds the host's entry-point bundles (VP thread, VM worker process, device thread, CLI) that
 * are missing or stale; see root-partition/vmwp/worker-bundles.ts. Usage: tsx scripts/build-host.ts [--force]
 */
import { buildWorkerBundles } from '../root-partition/vmwp/worker-bundles.ts';

export async function buildHost(force = false): Promise<boolean> {
  return (await buildWorkerBundles(force)).length > 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const built = await buildWorkerBundles(process.argv.includes('--force'));
  console.log(`host bundles: ${built.length ? `built ${built.join(', ')}` : 'up to date'}`);
}
