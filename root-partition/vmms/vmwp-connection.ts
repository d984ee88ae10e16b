/**
 * VMMS's end of one worker's socket: requests with ids and timeouts, and the worker's
 * notifications and bulk records as events. 'close' fires once when the socket goes away —
 * which is how VMMS learns at once that a worker died (the kernel closes a killed process's
 * sockets), whether or not the worker is VMMS's own child.
 *
 * Events: 'notification' (ControlNotification), 'console' (Uint8Array), 'counters'
 * (WorkerCounters), 'cpu-demand' (CpuDemandRecord), 'close' ().
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { decodeBulk, encodeBulk, type BulkRecord, type WorkerCounters } from '../ipc/bulk-codec.ts';
import { encodeFrame, FrameChannel, FrameReader } from '../ipc/frame-codec.ts';
import {
  CONTROL_PROTOCOL_VERSION,
  decodeControl,
  encodeControl,
  type ControlRequest,
  type ControlResponse,
  type Operation,
} from '../ipc/vmwp-control-schema.ts';

export class WorkerRequestError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export class VmwpConnection extends EventEmitter {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ControlResponse) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private closed = false;
  lastCounters: WorkerCounters | null = null;

  private constructor(private readonly socket: Socket) {
    super();
    const reader = new FrameReader();
    socket.on('data', (chunk) => {
      try {
        for (const f of reader.push(chunk)) {
          if (f.channel === FrameChannel.Bulk) {
            const b = decodeBulk(f.payload);
            if (b.kind === 'console') this.emit('console', b.data);
            else if (b.kind === 'counters') {
              this.lastCounters = b.counters;
              this.emit('counters', b.counters);
            } else if (b.kind === 'cpu-demand') this.emit('cpu-demand', b);
            continue;
          }
          const m = decodeControl(f.payload);
          if ('response' in m) this.settle(m.response);
          else if ('notification' in m) this.emit('notification', m.notification);
        }
      } catch (e) {
        // A worker that speaks garbage is treated like one that died.
        socket.destroy(e as Error);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new WorkerRequestError('the worker closed its socket', 'VMWP_ERR_GONE'));
      }
      this.pending.clear();
      this.emit('close');
    });
  }

  /** Connects, retrying while the worker is still starting, until `timeoutMs`. */
  static async open(path: string, timeoutMs: number, stillStarting: () => boolean = () => true): Promise<VmwpConnection> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const s = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        return new VmwpConnection(s);
      } catch (e) {
        if (Date.now() >= deadline || !stillStarting())
          throw new WorkerRequestError(`cannot reach the worker at ${path}: ${(e as Error).message}`, 'VMWP_ERR_UNREACHABLE');
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** `fields`: the saved-state path (SAVE), or the operation's other request fields. */
  request(
    operation: Operation,
    timeoutMs: number,
    fields?: string | Omit<Partial<ControlRequest>, 'version' | 'requestId' | 'operation'>,
  ): Promise<ControlResponse> {
    const extra = typeof fields === 'string' ? { savedStatePath: fields } : (fields ?? {});
    if (this.closed) return Promise.reject(new WorkerRequestError('the worker is gone', 'VMWP_ERR_GONE'));
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new WorkerRequestError(`the worker did not answer ${operation} within ${timeoutMs} ms`, 'VMWP_ERR_TIMEOUT'));
      }, timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      this.socket.write(encodeFrame(FrameChannel.Control, encodeControl({ request: { ...extra, version: CONTROL_PROTOCOL_VERSION, requestId, operation } })));
    });
  }

  private settle(r: ControlResponse): void {
    const p = this.pending.get(r.requestId);
    if (!p) return;
    this.pending.delete(r.requestId);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r);
    else p.reject(new WorkerRequestError(r.error || 'the worker refused the request', r.errorCode || 'VMWP_ERR_OPERATION'));
  }

  /**
   * Sends a bulk record unless the worker has not read the last `maxBacklog` bytes (a worker that
   * stopped reading must not grow VMMS); returns whether it was sent.
   */
  sendBulk(record: BulkRecord, maxBacklog = 64 * 1024): boolean {
    if (this.closed || this.socket.writableLength > maxBacklog) return false;
    this.socket.write(encodeFrame(FrameChannel.Bulk, encodeBulk(record)));
    return true;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves when the socket is closed (now, or when the worker exits). */
  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.once('close', () => r()));
  }
}
