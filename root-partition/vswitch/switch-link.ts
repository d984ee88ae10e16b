import * as net from 'node:net';
import { FrameBatcher, FrameStreamDecoder } from './frame-stream.ts';
import { encodeHello, type SwitchHello } from './switch-hello.ts';
import { lengthPrefixed } from './switch-server.ts';

export interface SwitchLinkStats {
  framesSent: number;
  framesReceived: number;
}

/**
 * A NIC's connection to a switch (the VM worker's side): send frames, receive frames, batched
 * both ways. `onFrame` gets a view valid during the call. The link fails closed: after an error
 * or a close, frames are dropped and `closed` says why.
 */
export class SwitchLink {
  readonly stats: SwitchLinkStats = { framesSent: 0, framesReceived: 0 };
  onFrame: (frame: Uint8Array) => void = () => {};
  /** Called once when the connection ends (the switch went away, or close()). */
  onClose: (why: string) => void = () => {};
  closed: string | undefined = undefined;
  private readonly batcher: FrameBatcher;

  private constructor(
    private readonly socket: net.Socket,
    readonly port: number,
  ) {
    this.batcher = new FrameBatcher(socket);
  }

  static connect(path: string, hello: SwitchHello): Promise<SwitchLink> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      const decoder = new FrameStreamDecoder();
      let link: SwitchLink | undefined;
      socket.once('error', (e) => {
        if (!link) reject(e);
      });
      socket.on('connect', () => socket.write(lengthPrefixed(encodeHello(hello))));
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk, (record) => {
            if (link) {
              link.stats.framesReceived++;
              link.onFrame(record);
              return;
            }
            const answer = JSON.parse(new TextDecoder().decode(record)) as { port?: number; error?: string };
            if (typeof answer.port !== 'number') throw new Error(`switch refused the port: ${answer.error ?? 'no reason'}`);
            link = new SwitchLink(socket, answer.port);
            socket.on('close', () => {
              link!.closed ??= 'the switch closed the connection';
              link!.onClose(link!.closed);
            });
            socket.on('error', (e) => (link!.closed ??= e.message));
            resolve(link);
          });
        } catch (e) {
          socket.destroy();
          if (!link) reject(e);
          else link.closed = (e as Error).message;
        }
      });
    });
  }

  /** Queues a frame (copied). False when the link is closed or congested. */
  send(frame: Uint8Array): boolean {
    if (this.closed !== undefined) return false;
    if (!this.batcher.push(frame)) return false;
    this.stats.framesSent++;
    return true;
  }

  close(): void {
    this.batcher.flush();
    this.closed ??= 'closed';
    this.socket.end();
  }
}
