/**
 * The push channel to one browser: a text/event-stream response (server-sent events, WHATWG HTML
 * §9.2) fed from the VMMS's events through a bounded ClientQueue. Frames leave the queue only
 * while the connection's write buffer is under HIGH_WATER_BYTES; a browser that reads slowly
 * gets coalesced state and, for the console, a dropped-bytes marker — the VMMS never waits for
 * it. A connection that has not drained for STALL_MS is closed (the browser reconnects by itself).
 */
import type { ServerResponse } from 'node:http';
import { ClientQueue, sseFrame } from './client-queue.ts';
import type { WebConsolePort, WebPortEvent } from './web-port.ts';

export const HIGH_WATER_BYTES = 64 * 1024;
const KEEPALIVE_MS = 15_000;
const STALL_MS = 120_000;

export interface EventStreamOptions {
  consoleVm: string | null;
  consoleQueueBytes?: number;
  /** The session's id, and whether it is still open with its role (checked at each keep-alive). */
  sessionId: string;
  sessionValid: () => boolean;
}

export class EventStream {
  readonly queue: ClientQueue;
  private readonly unsubscribe: () => void;
  private readonly unwatch: () => void;
  private readonly keepalive: NodeJS.Timeout;
  private waitingForDrain = false;
  private stalledSince: number | null = null;
  private closed = false;
  readonly sessionId: string;
  private readonly sessionValid: () => boolean;

  constructor(
    private readonly port: WebConsolePort,
    private readonly res: ServerResponse,
    o: EventStreamOptions,
    onClose: () => void,
  ) {
    this.sessionId = o.sessionId;
    this.sessionValid = o.sessionValid;
    this.queue = new ClientQueue(o.consoleVm, o.consoleQueueBytes);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write(': tsvisor\n\n');
    for (const vm of port.list()) this.queue.vm(vm.id, vm);
    for (const job of port.jobs()) this.queue.job(job);
    this.queue.bench(port.benchStatus());
    if (o.consoleVm) this.queue.console(o.consoleVm, port.consoleTail(o.consoleVm));
    this.unsubscribe = port.subscribe((e) => this.onEvent(e));
    this.unwatch = port.watchCounters();
    this.keepalive = setInterval(() => this.tick(), KEEPALIVE_MS);
    this.keepalive.unref();
    res.once('close', () => {
      this.dispose();
      onClose();
    });
    this.pump();
  }

  private onEvent(e: WebPortEvent): void {
    switch (e.kind) {
      case 'vm':
        this.queue.vm(e.vmId, this.port.list().find((v) => v.id === e.vmId) ?? null);
        break;
      case 'removed':
        this.queue.vm(e.vmId, null);
        break;
      case 'counters':
        this.queue.sample(e.vmId, e.sample);
        break;
      case 'job':
        this.queue.job(e.job);
        break;
      case 'bench':
        this.queue.bench(e.status);
        break;
      case 'console':
        this.queue.console(e.vmId, e.data);
        break;
    }
    this.pump();
  }

  private pump(): void {
    if (this.closed || this.waitingForDrain) return;
    while (this.res.writableLength < HIGH_WATER_BYTES) {
      const f = this.queue.next();
      if (!f) break;
      this.res.write(sseFrame(f));
    }
    if (this.res.writableLength >= HIGH_WATER_BYTES) {
      this.waitingForDrain = true;
      this.stalledSince ??= Date.now();
      this.res.once('drain', () => {
        this.waitingForDrain = false;
        this.stalledSince = null;
        this.pump();
      });
    }
  }

  private tick(): void {
    // A session that ended (logout, expiry, a role taken away) gets no more pushes.
    if (!this.sessionValid()) {
      this.end();
      return;
    }
    if (this.stalledSince !== null && Date.now() - this.stalledSince > STALL_MS) {
      this.res.destroy();
      return;
    }
    if (!this.waitingForDrain) this.res.write(': keep-alive\n\n');
  }

  /** Ends the stream (the browser's EventSource sees the end and asks again, with its session or without). */
  end(): void {
    this.dispose();
    this.res.destroy();
  }

  /** Bytes the connection holds unsent (never much above HIGH_WATER_BYTES). */
  get bufferedBytes(): number {
    return this.res.writableLength;
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.unsubscribe();
    this.unwatch();
  }
}
