/**
 * The VMWP's end of its Unix socket (`vmwp-<id>.sock` in the data directory). VMMS connects,
 * sends protobuf requests and receives responses, notifications and bulk records (console,
 * counters). Any number of connections may come and go — a VMMS that restarts reconnects —
 * and the VM runs on whether or not anyone is connected. The last CONSOLE_BACKLOG bytes of
 * console output are replayed to each new connection, so output from before VMMS connected
 * (early boot, or while VMMS restarted) is not lost within that window.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { decodeBulk, encodeBulk, type BulkRecord } from '../ipc/bulk-codec.ts';
import { encodeFrame, FrameChannel, FrameReader } from '../ipc/frame-codec.ts';
import {
  CONTROL_PROTOCOL_VERSION,
  decodeControl,
  encodeControl,
  type ControlNotification,
  type ControlRequest,
  type ControlResponse,
} from '../ipc/vmwp-control-schema.ts';
import type { Logger } from '../host/log.ts';
import { tracing } from '../host/log.ts';

export type RequestHandler = (r: ControlRequest, reply: (extra?: Partial<ControlResponse>) => void, fail: (e: unknown) => void) => void;

export const CONSOLE_BACKLOG = 64 * 1024;
/** Console bytes per bulk frame: far below MAX_FRAME_BYTES however much the guest wrote at once. */
export const CONSOLE_FRAME_BYTES = 64 * 1024;
const MAX_CLIENT_BACKLOG = 4 * 1024 * 1024;

export class ControlServer {
  private backlog: Uint8Array[] = [];
  private backlogBytes = 0;
  /** Console bytes not sent to a client that was too far behind. */
  dropped = 0;
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  /**
   * Console output held back from a client that lags: its newest CONSOLE_BACKLOG bytes, written
   * when its socket drains, so the last thing the guest printed always reaches it in the end.
   */
  private readonly lagging = new Map<Socket, { chunks: Uint8Array[]; bytes: number }>();
  private readonly trace = tracing('vmwp-ipc');
  /** Bulk records a client sends (VMMS's CPU budgets). */
  onBulk: (r: BulkRecord) => void = () => {};

  constructor(
    readonly path: string,
    private readonly onRequest: RequestHandler,
    private readonly log: Logger,
  ) {
    this.server = createServer((s) => this.accept(s));
  }

  listen(): Promise<void> {
    // A socket file left by a worker that died is stale: VMMS never starts two workers for one VM.
    rmSync(this.path, { force: true });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => resolve());
    });
  }

  private accept(s: Socket): void {
    this.clients.add(s);
    if (this.backlogBytes > 0) s.write(encodeFrame(FrameChannel.Bulk, encodeBulk({ kind: 'console', port: 'com1', data: Buffer.concat(this.backlog) })));
    const reader = new FrameReader();
    s.on('data', (chunk) => {
      try {
        for (const f of reader.push(chunk)) {
          if (f.channel === FrameChannel.Bulk) {
            this.onBulk(decodeBulk(f.payload));
            continue;
          }
          if (f.channel !== FrameChannel.Control) continue;
          const m = decodeControl(f.payload);
          if ('request' in m) this.handle(s, m.request);
        }
      } catch (e) {
        this.log.warn(`dropping a client that sent a malformed frame: ${(e as Error).message}`);
        s.destroy();
      }
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      this.clients.delete(s);
      this.lagging.delete(s);
    });
  }

  private handle(s: Socket, r: ControlRequest): void {
    if (this.trace) this.log.debug(`request ${r.requestId} ${r.operation}`);
    const send = (resp: Partial<ControlResponse>) => {
      if (!s.destroyed)
        s.write(
          encodeFrame(FrameChannel.Control, encodeControl({ response: { version: CONTROL_PROTOCOL_VERSION, requestId: r.requestId, ok: false, ...resp } })),
        );
    };
    if (r.version !== CONTROL_PROTOCOL_VERSION) {
      send({ error: `control protocol version ${r.version} is not spoken here (version ${CONTROL_PROTOCOL_VERSION})`, errorCode: 'IPC_ERR_VERSION' });
      return;
    }
    this.onRequest(
      r,
      (extra) => send({ ok: true, ...extra }),
      (e) => send({ error: e instanceof Error ? e.message : String(e), errorCode: (e as { code?: string }).code ?? 'VMWP_ERR_OPERATION' }),
    );
  }

  notify(n: Omit<ControlNotification, 'version'>): void {
    const frame = encodeFrame(FrameChannel.Control, encodeControl({ notification: { version: CONTROL_PROTOCOL_VERSION, ...n } }));
    for (const c of this.clients) if (!c.destroyed) c.write(frame);
  }

  console(data: Uint8Array): void {
    for (let at = 0; at < data.length; at += CONSOLE_FRAME_BYTES) this.consolePiece(data.subarray(at, at + CONSOLE_FRAME_BYTES));
  }

  private consolePiece(data: Uint8Array): void {
    this.backlog.push(data);
    this.backlogBytes += data.length;
    while (this.backlogBytes - this.backlog[0].length >= CONSOLE_BACKLOG) this.backlogBytes -= this.backlog.shift()!.length;
    if (this.clients.size === 0) return;
    const frame = encodeFrame(FrameChannel.Bulk, encodeBulk({ kind: 'console', port: 'com1', data }));
    for (const c of this.clients) {
      // A reader that falls this far behind loses console output rather than growing this
      // process without bound (the guest is never slowed down by its console's reader); it keeps
      // the newest bytes, which it gets once it has caught up, after what it had been sent.
      if (c.destroyed) continue;
      const held = this.lagging.get(c);
      if (held || c.writableLength > MAX_CLIENT_BACKLOG) this.holdBack(c, held, data);
      else c.write(frame);
    }
  }

  private holdBack(c: Socket, held: { chunks: Uint8Array[]; bytes: number } | undefined, data: Uint8Array): void {
    if (!held) {
      held = { chunks: [], bytes: 0 };
      this.lagging.set(c, held);
      c.once('drain', () => {
        const tail = this.lagging.get(c);
        this.lagging.delete(c);
        if (tail && !c.destroyed) c.write(encodeFrame(FrameChannel.Bulk, encodeBulk({ kind: 'console', port: 'com1', data: Buffer.concat(tail.chunks) })));
      });
    }
    held.chunks.push(Uint8Array.from(data));
    held.bytes += data.length;
    while (held.bytes > CONSOLE_BACKLOG) {
      const first = held.chunks[0];
      const cut = Math.min(first.length, held.bytes - CONSOLE_BACKLOG);
      this.dropped += cut;
      held.bytes -= cut;
      if (cut === first.length) held.chunks.shift();
      else held.chunks[0] = first.subarray(cut);
    }
  }

  bulk(record: BulkRecord): void {
    if (this.clients.size === 0) return;
    const frame = encodeFrame(FrameChannel.Bulk, encodeBulk(record));
    for (const c of this.clients) if (!c.destroyed) c.write(frame);
  }

  /** Flushes what was written to every client, then closes the server and the socket file. */
  async close(): Promise<void> {
    // Stop accepting first: a VMMS reattaching now must find no worker, not one on its way out.
    rmSync(this.path, { force: true });
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    await Promise.all(
      [...this.clients].map(
        (c) =>
          new Promise<void>((r) => {
            if (c.destroyed) r();
            else c.end(r);
          }),
      ),
    );
    await closed;
  }
}
