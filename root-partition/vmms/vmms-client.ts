/** A client of a running VMMS over its socket (used by the CLI's `vm` verbs). */
import { connect, type Socket } from 'node:net';
import { DataDir } from '../host/data-dir.ts';
import type { ClientMethod } from './client-server.ts';
import type { MigrationClientMethod } from '../migration/migration-client-methods.ts';

export class VmmsClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class VmmsClient {
  private nextId = 1;
  private buf = '';
  /** Console output pushed after a `console-follow` request. */
  onConsole: ((data: Buffer) => void) | null = null;
  /** The followed VM stopped (its state: Off or Saved); no more console output will come. */
  onConsoleEnd: ((state: string) => void) | null = null;
  /** A long request's progress (`move`), pushed before its answer. */
  onProgress: ((progress: Record<string, unknown>) => void) | null = null;
  /** The connection ended (VMMS stopped or dropped it). */
  onClose: (() => void) | null = null;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(this.buf.slice(0, nl)) as {
          id: number;
          result?: unknown;
          error?: { code: string; message: string };
          console?: { vm: string; data?: string; ended?: string };
          progress?: Record<string, unknown>;
        };
        this.buf = this.buf.slice(nl + 1);
        // Pushed, not answered: console output after `console-follow`.
        if (m.console?.ended) {
          this.onConsoleEnd?.(m.console.ended);
          continue;
        }
        if (m.console) {
          this.onConsole?.(Buffer.from(m.console.data ?? '', 'base64'));
          continue;
        }
        if (m.progress) {
          this.onProgress?.(m.progress);
          continue;
        }
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) w?.reject(new VmmsClientError(m.error.code, m.error.message));
        else w?.resolve(m.result);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new VmmsClientError('VMMS_ERR_GONE', 'the management service closed the connection'));
      this.waiting.clear();
      this.onClose?.();
    });
  }

  static connect(dataDir: string): Promise<VmmsClient> {
    const path = new DataDir(dataDir).vmmsSocket;
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new VmmsClient(s)));
      s.once('error', (e) =>
        reject(new VmmsClientError('VMMS_ERR_UNREACHABLE', `no management service at ${path} (${e.message}); start one with \`tsvisor serve\``)),
      );
    });
  }

  call<T = unknown>(method: ClientMethod | MigrationClientMethod, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
  }
}
