/**
 * An x86 VM seen from the process that owns it: starts its VP thread (x86-vp-thread.ts), streams
 * its console, feeds it input, and stops it. The thread is always ended by `stop()`, including
 * when the guest or v86 failed.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { FromX86Vp, ToX86Vp, X86VmThreadData } from './x86-vm-messages.ts';

export interface X86VmStopReport {
  instructions: number;
  hostPortAccesses: number;
}

export class X86Vm extends EventEmitter<{ console: [bytes: Uint8Array]; error: [err: Error] }> {
  private readonly worker: Worker;
  private readonly started: Promise<void>;
  private stopping: Promise<X86VmStopReport> | undefined;
  private stopReport: ((r: X86VmStopReport) => void) | undefined;
  private failure: Error | undefined;

  constructor(data: X86VmThreadData) {
    super();
    this.worker = new Worker(new URL('./x86-vp-worker.mjs', import.meta.url), { workerData: data });
    this.started = new Promise((resolve, reject) => {
      this.worker.on('message', (m: FromX86Vp) => {
        if (m.type === 'started') resolve();
        else if (m.type === 'console') this.emit('console', m.bytes);
        else if (m.type === 'stopped') this.stopReport?.({ instructions: m.instructions, hostPortAccesses: m.hostPortAccesses });
        else if (m.type === 'error') this.fail(new Error(`x86 VP thread: ${m.message}`), reject);
      });
      this.worker.on('error', (e) => this.fail(e, reject));
      this.worker.on('exit', (code) => {
        if (!this.stopping) this.fail(new Error(`x86 VP thread ended (exit code ${code})`), reject);
        this.stopReport?.({ instructions: 0, hostPortAccesses: 0 });
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

  /** Stops the processor and ends the VP thread (turn-off: the guest is not asked). */
  stop(): Promise<X86VmStopReport> {
    this.stopping ??= new Promise<X86VmStopReport>((resolve) => {
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
