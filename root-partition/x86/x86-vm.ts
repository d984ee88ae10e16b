/**
 * An x86 VM seen from the process that owns it: starts its VP thread (x86-vp-thread.ts), streams
 * its console, feeds it input, and stops it. The thread always ends: at `stop()`, when the guest
 * powers off, or when it fails (the first error is kept and reported).
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { KvpGuestItems } from '../vmwp/kvp-guest-watch.ts';
import type { X86IcReply, X86IcRequest } from './x86-ic-requests.ts';
import type { FromX86Vp, ToX86Vp, X86VmThreadData, X86VpStatus } from './x86-vm-messages.ts';

export interface X86VmEnd {
  reason: 'stop' | 'poweroff' | 'error';
  /** The VP's last status; absent when the thread ended without reporting (an error). */
  status?: X86VpStatus;
}

export class X86Vm extends EventEmitter<{
  console: [bytes: Uint8Array];
  log: [message: string];
  error: [err: Error];
  end: [end: X86VmEnd];
  heartbeat: [status: number];
  kvp: [items: KvpGuestItems];
}> {
  private readonly worker: Worker;
  private readonly started: Promise<void>;
  private readonly endedPromise: Promise<X86VmEnd>;
  private endWith!: (e: X86VmEnd) => void;
  private stopAsked = false;
  private failure: Error | undefined;
  private readonly statusWaiters: ((s: X86VpStatus) => void)[] = [];
  private readonly shutdownWaiters: ((outcome: string) => void)[] = [];
  private readonly icWaiters = new Map<number, (r: X86IcReply) => void>();
  private nextIcId = 1;

  constructor(data: X86VmThreadData) {
    super();
    this.endedPromise = new Promise((resolve) => (this.endWith = resolve));
    this.worker = new Worker(new URL('./x86-vp-worker.mjs', import.meta.url), { workerData: data });
    this.started = new Promise((resolve, reject) => {
      this.worker.on('message', (m: FromX86Vp) => {
        if (m.type === 'started') resolve();
        else if (m.type === 'console') this.emit('console', m.bytes);
        else if (m.type === 'status') this.statusWaiters.shift()?.(m.status);
        else if (m.type === 'shutdown-result') this.shutdownWaiters.shift()?.(m.outcome);
        else if (m.type === 'log') this.emit('log', m.message);
        else if (m.type === 'ic-reply') {
          const w = this.icWaiters.get(m.id);
          this.icWaiters.delete(m.id);
          w?.(m.reply);
        } else if (m.type === 'heartbeat') this.emit('heartbeat', m.status);
        else if (m.type === 'kvp') this.emit('kvp', m.items);
        else if (m.type === 'stopped') this.end({ reason: m.reason, status: m.status });
        else if (m.type === 'error') this.fail(new Error(`x86 VP thread: ${m.message}`), reject);
      });
      this.worker.on('error', (e) => this.fail(e, reject));
      this.worker.on('exit', (code) => {
        if (!this.stopAsked) this.fail(new Error(`x86 VP thread ended (exit code ${code})`), reject);
        this.end({ reason: 'error' });
      });
    });
    this.started.catch(() => undefined); // reported through whenStarted() and 'error'
  }

  /** Resolves once the processor runs; rejects if the VP thread could not start it. */
  whenStarted(): Promise<void> {
    return this.started;
  }

  /** Resolves when the VM has ended, for whatever reason; the thread is gone by then. */
  whenEnded(): Promise<X86VmEnd> {
    return this.endedPromise;
  }

  /** The first failure of the VP thread, if any (sticky). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Bytes for COM1's receiver (the console's keyboard). */
  input(bytes: Uint8Array): void {
    if (this.stopAsked) return;
    this.worker.postMessage({ type: 'input', bytes } satisfies ToX86Vp);
  }

  /** The VP's counters and enlightenment state, from its thread. */
  status(): Promise<X86VpStatus> {
    if (this.stopAsked) return Promise.reject(new Error('x86 VM: stopped'));
    return new Promise((resolve) => {
      this.statusWaiters.push(resolve);
      this.worker.postMessage({ type: 'status' } satisfies ToX86Vp);
    });
  }

  /**
   * Asks the guest to shut down through the shutdown integration service (hv_utils in Linux).
   * Resolves with the outcome (`shut-down`: the guest accepted; `refused`, `unavailable`,
   * `timed-out`); the VM ends on its own when the guest powers off.
   */
  shutdown(timeoutMs = 30_000): Promise<string> {
    if (this.stopAsked) return Promise.reject(new Error('x86 VM: stopped'));
    return new Promise((resolve) => {
      this.shutdownWaiters.push(resolve);
      this.worker.postMessage({ type: 'shutdown', timeoutMs } satisfies ToX86Vp);
    });
  }

  /** An integration-service request served on the VP thread (x86-ic-requests.ts); a VM that has ended answers with an error. */
  ic(request: X86IcRequest): Promise<X86IcReply> {
    if (this.stopAsked) return Promise.resolve({ ok: false, code: 'VMWP_ERR_STOPPED', error: 'the VM has stopped' });
    const id = this.nextIcId++;
    return new Promise((resolve) => {
      this.icWaiters.set(id, resolve);
      this.worker.postMessage({ type: 'ic', id, request } satisfies ToX86Vp);
    });
  }

  /** Stops the processor and ends the VP thread (turn-off: the guest is not asked). */
  stop(): Promise<X86VmEnd> {
    if (!this.stopAsked) {
      this.stopAsked = true;
      this.worker.postMessage({ type: 'stop' } satisfies ToX86Vp);
      const timer = setTimeout(() => void this.worker.terminate(), 5000);
      void this.endedPromise.then(() => clearTimeout(timer));
    }
    return this.endedPromise;
  }

  private end(e: X86VmEnd): void {
    this.stopAsked = true;
    for (const w of this.shutdownWaiters.splice(0)) w('unavailable');
    for (const w of this.icWaiters.values()) w({ ok: false, code: 'VMWP_ERR_STOPPED', error: 'the VM has stopped' });
    this.icWaiters.clear();
    this.endWith(e);
    void this.worker.terminate();
    this.emit('end', e);
  }

  private fail(e: Error, reject: (e: Error) => void): void {
    if (this.failure) return;
    this.failure = e;
    reject(e);
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
