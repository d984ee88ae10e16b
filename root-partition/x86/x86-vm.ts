/**
 * An x86 VM seen from the process that owns it: starts its VP thread (x86-vp-thread.ts), streams
 * its console, feeds it input, and stops it. The thread is always ended by `stop()`, including
 * when the guest or v86 failed.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { FromX86Vp, ToX86Vp, X86VmThreadData, X86VpStatus } from './x86-vm-messages.ts';

export class X86Vm extends EventEmitter<{ console: [bytes: Uint8Array]; error: [err: Error] }> {
  private readonly worker: Worker;
  private readonly started: Promise<void>;
  private stopping: Promise<X86VpStatus | undefined> | undefined;
  private stopReport: ((r: X86VpStatus | undefined) => void) | undefined;
  private failure: Error | undefined;
  private readonly statusWaiters: ((s: X86VpStatus) => void)[] = [];

  constructor(data: X86VmThreadData) {
    super();
    this.worker = new Worker(new URL('./x86-vp-worker.mjs', import.meta.url), { workerData: data });
    this.started = new Promise((resolve, reject) => {
      this.worker.on('message', (m: FromX86Vp) => {
        if (m.type === 'started') resolve();
        else if (m.type === 'console') this.emit('console', m.bytes);
        else if (m.type === 'status') this.statusWaiters.shift()?.(m.status);
        else if (m.type === 'stopped') this.stopReport?.(m.status);
        else if (m.type === 'error') this.fail(new Error(`x86 VP thread: ${m.message}`), reject);
      });
      this.worker.on('error', (e) => this.fail(e, reject));
      this.worker.on('exit', (code) => {
        if (!this.stopping) this.fail(new Error(`x86 VP thread ended (exit code ${code})`), reject);
        this.stopReport?.(undefined);
      });
    });
  }

  /** Resolves once the processor runs; rejects if the VP thread could not start it. */
  whenStarted(): Promise<void> {
    return this.started;
  }

  /** The first failure of the VP thread, if any (sticky). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Bytes for COM1's receiver (the console's keyboard). */
  input(bytes: Uint8Array): void {
    if (this.stopping) return;
    this.worker.postMessage({ type: 'input', bytes } satisfies ToX86Vp);
  }

  /** The VP's counters and enlightenment state, from its thread. */
  status(): Promise<X86VpStatus> {
    if (this.stopping) return Promise.reject(new Error('x86 VM: stopped'));
    return new Promise((resolve) => {
      this.statusWaiters.push(resolve);
      this.worker.postMessage({ type: 'status' } satisfies ToX86Vp);
    });
  }

  /**
   * Stops the processor and ends the VP thread (turn-off: the guest is not asked). Resolves with
   * the final status, or undefined when the thread had already ended.
   */
  stop(): Promise<X86VpStatus | undefined> {
    this.stopping ??= new Promise<X86VpStatus | undefined>((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate(), 5000);
      this.stopReport = (r) => {
        clearTimeout(timer);
        this.stopReport = undefined;
        resolve(r);
      };
      this.worker.postMessage({ type: 'stop' } satisfies ToX86Vp);
    }).then(async (r) => {
      await this.worker.terminate();
      return r;
    });
    return this.stopping;
  }

  private fail(e: Error, reject: (e: Error) => void): void {
    if (this.failure) return;
    this.failure = e;
    reject(e);
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
