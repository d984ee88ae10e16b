/**
 * One end of a migration stream (a TLS socket or a Unix socket) as frames: `send` waits while the
 * socket's buffer is full (back-pressure: the sender never holds more than the socket's high-water
 * mark plus one frame), `next` returns the next frame and pauses the socket while unread frames
 * pile up. A closed or failed socket fails every waiter with the reason.
 */
import type { Duplex } from 'node:stream';
import { FrameReader, MigrationFrame, type Frame, type MigrationFrameType } from './migration-wire.ts';

/** Frames read ahead at most before the socket is paused. */
const READ_AHEAD_FRAMES = 8;

export class MigrationChannelError extends Error {
  constructor(
    readonly code: 'MIGRATION_ERR_CONNECTION' | 'MIGRATION_ERR_ABORTED',
    message: string,
  ) {
    super(message);
  }
}

export class MigrationChannel {
  private readonly reader = new FrameReader();
  private readonly queue: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  bytesSent = 0;
  bytesReceived = 0;

  constructor(
    readonly socket: Duplex,
    initial?: Buffer,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(new MigrationChannelError('MIGRATION_ERR_CONNECTION', `the migration connection failed: ${e.message}`)));
    socket.on('close', () => this.fail(new MigrationChannelError('MIGRATION_ERR_CONNECTION', 'the migration connection closed')));
    if (initial?.length) this.onData(initial);
  }

  private onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      this.fail(e as Error);
      this.socket.destroy();
      return;
    }
    for (const f of frames) {
      // The peer's reason, at once: a sender busy with pre-copy reads nothing, and would otherwise
      // learn only of the broken pipe that follows.
      if (f.type === MigrationFrame.Abort && !this.waiter) {
        this.fail(new MigrationChannelError('MIGRATION_ERR_ABORTED', `the peer aborted the migration: ${f.body.toString('utf8')}`));
        continue;
      }
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(f);
      } else {
        this.queue.push(f);
      }
    }
    if (this.queue.length >= READ_AHEAD_FRAMES) this.socket.pause();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  /** The next frame; an ABORT from the peer rejects with its reason, as does a peer silent for `idleMs`. */
  async next(idleMs = 0): Promise<Frame> {
    const f = idleMs > 0 ? await this.withIdleLimit(idleMs) : await this.nextRaw();
    if (f.type === MigrationFrame.Abort) throw new MigrationChannelError('MIGRATION_ERR_ABORTED', `the peer aborted the migration: ${f.body.toString('utf8')}`);
    return f;
  }

  private withIdleLimit(ms: number): Promise<Frame> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.nextRaw().finally(() => clearTimeout(timer)),
      new Promise<Frame>((_, reject) => {
        timer = setTimeout(() => {
          const e = new MigrationChannelError('MIGRATION_ERR_CONNECTION', `the peer sent nothing for ${ms} ms`);
          this.fail(e);
          this.socket.destroy();
          reject(e);
        }, ms);
      }),
    ]);
  }

  private nextRaw(): Promise<Frame> {
    const f = this.queue.shift();
    if (this.queue.length < READ_AHEAD_FRAMES / 2 && this.socket.isPaused()) this.socket.resume();
    if (f) return Promise.resolve(f);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The next frame, which must be of `type`. */
  async expect(type: MigrationFrameType, what: string, idleMs = 0): Promise<Frame> {
    const f = await this.next(idleMs);
    if (f.type !== type) throw new MigrationChannelError('MIGRATION_ERR_CONNECTION', `expected ${what}, the peer sent frame type ${f.type}`);
    return f;
  }

  async send(frame: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.bytesSent += frame.length;
    if (this.socket.write(frame)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.failure ? reject(this.failure) : resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Tells the peer why, then closes (best effort: the peer may be gone). */
  abort(reason: string): void {
    if (!this.failure && !this.socket.destroyed) {
      const body = Buffer.from(reason.slice(0, 4000), 'utf8');
      const head = Buffer.allocUnsafe(5);
      head.writeUInt32LE(body.length + 1, 0);
      head.writeUInt8(MigrationFrame.Abort, 4);
      this.socket.end(Buffer.concat([head, body]));
    }
    this.fail(new MigrationChannelError('MIGRATION_ERR_ABORTED', reason));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  close(): void {
    this.fail(new MigrationChannelError('MIGRATION_ERR_CONNECTION', 'the migration connection was closed'));
    this.socket.destroy();
  }
}
