/**
 * Runs a rewrite in its own worker thread and waits for it synchronously (image loading is
 * synchronous). The wait is bounded: binaryen cannot be interrupted, so a rewrite that overruns
 * its time has its thread terminated and the image is refused; the host runs on.
 */
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { HvError } from '../hv-error.ts';
import type { RewriteOptions } from './rewrite-abi.ts';
import { rewriteWorkerUrl } from './rewrite-bundle.ts';
import type { RewriteJob, RewriteResult } from './rewrite-worker.ts';

/** Default bound on one rewrite, start of the worker and loading binaryen included. */
export const DEFAULT_REWRITE_TIMEOUT_MS = 30_000;

export function rewriteTimeoutMs(): number {
  const env = Number(process.env.TSVISOR_REWRITE_TIMEOUT_MS);
  return Number.isFinite(env) && env > 0 ? env : DEFAULT_REWRITE_TIMEOUT_MS;
}

export function runRewrite(bytes: Uint8Array, options: RewriteOptions, timeoutMs = rewriteTimeoutMs()): Uint8Array {
  const done = new SharedArrayBuffer(4);
  const flag = new Int32Array(done);
  const { port1, port2 } = new MessageChannel();
  const job: RewriteJob = { bytes, options, port: port2, done };
  const worker = new Worker(rewriteWorkerUrl(), {
    workerData: job,
    transferList: [port2],
    name: 'image-rewrite',
    stdout: true,
    stderr: true,
  });
  worker.unref();
  try {
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(flag, 0) === 0) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(flag, 0, 0, left) === 'timed-out') {
        throw new HvError('HV_ERR_BAD_IMAGE', `guest image refused: preparing it took longer than ${timeoutMs} ms`);
      }
    }
    const message = receiveMessageOnPort(port1)?.message as RewriteResult | undefined;
    if (!message) throw new HvError('HV_ERR_BAD_IMAGE', 'guest image refused: the rewriter ended without a result (out of memory or a crash)');
    if (!message.ok) throw new HvError('HV_ERR_BAD_IMAGE', `guest image refused by the rewriter: ${message.message}`);
    return message.bytes;
  } finally {
    port1.close();
    void worker.terminate();
  }
}
