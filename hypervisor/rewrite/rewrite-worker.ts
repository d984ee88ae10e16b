/**
 * The rewrite worker: one thread per rewrite, so that a pathological image costs at most the
 * time bound (the loader terminates the thread) and binaryen's memory goes with the thread.
 * Posts the result on the port it was given, then raises the done flag the loader waits on.
 */
import { workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { rewriteModule } from './rewrite-module.ts';
import type { RewriteOptions } from './rewrite-abi.ts';

export interface RewriteJob {
  bytes: Uint8Array;
  options: RewriteOptions;
  port: MessagePort;
  /** Int32 flag: 1 = result posted, 2 = the thread ended without one. */
  done: SharedArrayBuffer;
}

export type RewriteResult = { ok: true; bytes: Uint8Array } | { ok: false; message: string };

const job = workerData as RewriteJob;
const done = new Int32Array(job.done);
const finish = (code: number) => {
  if (Atomics.compareExchange(done, 0, 0, code) === 0) Atomics.notify(done, 0);
};
process.on('exit', () => finish(2));
let result: RewriteResult;
try {
  result = { ok: true, bytes: rewriteModule(job.bytes, job.options).bytes };
} catch (e) {
  result = { ok: false, message: e instanceof Error ? e.message : String(e) };
}
job.port.postMessage(result);
finish(1);
