/**
 * The VMMS daemon without the rest of the CLI:
 * `node --import tsx daemon-main.ts [--data-dir DIR] [--cim-port N|none] [--cim-https-port N|none]
 * [--cim-host ADDR] [--tls-cert FILE --tls-key FILE] [--storage-root DIR]… [--web-port N|none]
 * [--web-host ADDR] [--web-http] [--migration-port N|none] [--migration-host ADDR]`.
 * Same service as `tsvisor serve`, for service managers and tests: it loads only VMMS's own
 * modules, so it starts in a fraction of the CLI's time.
 */
import { resolve } from 'node:path';
import { defaultDataDir } from '../host/data-dir.ts';
import { runDaemon } from './daemon.ts';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const port = (text: string | undefined) => (text === undefined ? {} : { value: text === 'none' ? null : Number(text) });
const dataDir = resolve(option('--data-dir') ?? defaultDataDir());
const cimPort = port(option('--cim-port'));
const httpsPort = port(option('--cim-https-port'));
const cimHost = option('--cim-host');
const tlsCert = option('--tls-cert');
const tlsKey = option('--tls-key');
const webPort = port(option('--web-port'));
const webHost = option('--web-host');
const migrationPort = port(option('--migration-port'));
const migrationHost = option('--migration-host');
const hostCpus = option('--host-cpus');
const storageRoots = args.flatMap((a, i) => (a === '--storage-root' && args[i + 1] ? [resolve(args[i + 1]!)] : []));
runDaemon({
  dataDir,
  ...('value' in cimPort ? { cimPort: cimPort.value } : {}),
  ...('value' in httpsPort ? { cimHttpsPort: httpsPort.value } : {}),
  ...(cimHost ? { cimHost } : {}),
  ...(tlsCert ? { tlsCertFile: resolve(tlsCert) } : {}),
  ...(tlsKey ? { tlsKeyFile: resolve(tlsKey) } : {}),
  storageRoots,
  ...('value' in webPort ? { webPort: webPort.value } : {}),
  ...(webHost ? { webHost } : {}),
  ...(args.includes('--web-http') ? { webHttp: true } : {}),
  ...('value' in migrationPort ? { migrationPort: migrationPort.value } : {}),
  ...(migrationHost ? { migrationHost } : {}),
  ...(hostCpus !== undefined ? { hostCpus: Number(hostCpus) } : {}),
}).catch((e: Error) => {
  process.stderr.write(`tsvisor: ${e.message}\n`);
  process.exit(1);
});
