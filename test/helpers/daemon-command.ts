/**
 * How tests start the VMMS daemon alone: its prebuilt bundle while it is newer than every source
 * it was built from (as bin/tsvisor.mjs does for the CLI), else daemon-main.ts through tsx. Under
 * tsx each daemon compiles its modules again at start: several seconds on a loaded 2-core host.
 */
import { fileURLToPath } from 'node:url';
import { freshBundle } from '../../root-partition/vmwp/worker-bundles.ts';

export const DAEMON_SOURCE = fileURLToPath(new URL('../../root-partition/vmms/daemon-main.ts', import.meta.url));

/** Node's arguments before the daemon's own: `[bundle]` or `['--import', 'tsx', source]`. */
export function daemonNodeArgs(): string[] {
  const bundle = freshBundle('vmms');
  return bundle ? [bundle] : ['--import', 'tsx', DAEMON_SOURCE];
}
