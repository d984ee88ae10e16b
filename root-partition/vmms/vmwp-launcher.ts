/**
 * Starts a VM's worker process. Detached (a session of its own, not VMMS's process group) with
 * stdio going to a file, not to pipes: a pipe to a dead VMMS would break the worker's writes,
 * and fork's IPC channel dies with its parent. VMMS talks to the worker only over its socket.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkerLaunch } from '../vmwp/vm-worker.ts';
import { freshBundle } from '../vmwp/worker-bundles.ts';

const WORKER_MAIN = fileURLToPath(new URL('../vmwp/worker-main.ts', import.meta.url));

export interface LaunchedWorker {
  pid: number;
  /** True once the process is known to have exited (only known for VMMS's own children). */
  exited: () => boolean;
  exitCode: () => number | null;
}

export function launchWorker(launch: WorkerLaunch, outputFile: string): LaunchedWorker {
  const out = openSync(outputFile, 'a');
  try {
    // The prebuilt worker (worker-bundles.ts) when fresh: it starts without compiling TypeScript.
    const bundle = freshBundle('vmwp');
    const program = bundle ? [bundle] : ['--import', 'tsx', WORKER_MAIN];
    // The VM id in clear as well: a VMMS identifies its worker by its command line (worker-record.ts)
    // until the worker replaces it with its title.
    const child = spawn(process.execPath, [...program, Buffer.from(JSON.stringify(launch)).toString('base64'), launch.vmId], {
      detached: true,
      stdio: ['ignore', out, out],
      env: process.env,
    });
    let exited = false;
    let code: number | null = null;
    child.on('exit', (c, signal) => {
      exited = true;
      code = c ?? (signal ? 128 : null);
    });
    child.on('error', () => {
      exited = true;
    });
    child.unref();
    if (child.pid === undefined) throw new Error('the worker process could not be started');
    return { pid: child.pid, exited: () => exited, exitCode: () => code };
  } finally {
    closeSync(out);
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
