/**
 * The VMMS daemon without the rest of the CLI:
 * `node --import tsx daemon-main.ts [--data-dir DIR] [--cim-port N|none] [--cim-host ADDR]`.
 * Same service as `tsvisor serve`, for service managers and tests: it loads only VMMS's own
 * modules, so it starts in a fraction of the CLI's time.
 */
import { resolve } from 'node:path';
import { defaultDataDir } from './data-dir.ts';
import { runDaemon } from './daemon.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--data-dir');
const dataDir = resolve(at >= 0 && args[at + 1] ? args[at + 1] : defaultDataDir());
const option = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const cimPort = option('--cim-port');
const cimHost = option('--cim-host');
runDaemon({
  dataDir,
  ...(cimPort !== undefined ? { cimPort: cimPort === 'none' ? null : Number(cimPort) } : {}),
  ...(cimHost ? { cimHost } : {}),
}).catch((e: Error) => {
  process.stderr.write(`tsvisor: ${e.message}\n`);
  process.exit(1);
});
