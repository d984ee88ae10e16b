/**
 * The quick I/O benchmark in a process of its own, for the web console's "Run" button: the
 * benchmark keeps a core busy for a while, which must not be the VMMS's. Progress goes to the
 * parent on the IPC channel (`{ kind: 'step', done, total, next }`), the report to the file named
 * first on the command line (written whole, then renamed), then `{ kind: 'done' }` or
 * `{ kind: 'error', message }`. `--tiny`: the benchmark's smallest run, synthetic path only (tests).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { runIoBench } from '../../bench/io.ts';

const out = process.argv[2]!;
const send = (m: object) => new Promise<void>((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()));
try {
  const tiny = process.argv.includes('--tiny');
  const report = await runIoBench({
    quick: true,
    tiny,
    ...(tiny ? { paths: ['storvsc'] } : {}),
    progress: false,
    onStep: (done, total, next) => void send({ kind: 'step', done, total, next }),
  });
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(tmp, out);
  await send({ kind: 'done' });
} catch (e) {
  await send({ kind: 'error', message: (e as Error).message });
  process.exitCode = 1;
}
process.disconnect?.();
