import * as net from 'node:net';
import { rmSync } from 'node:fs';
import { FrameBatcher, FrameStreamDecoder } from './frame-stream.ts';
import { decodeHello, encodeHello, portKindOf } from './switch-hello.ts';
import { VirtualSwitch, type VirtualSwitchOptions } from './virtual-switch.ts';

export interface SwitchServerStats {
  connections: number;
  /** Connections closed for a protocol error (bad hello, oversize record). */
  protocolErrors: number;
}

/**
 * A virtual switch reachable on a Unix socket: each connection is one port, announced by its
 * hello record, then frames both ways in batched records (frame-stream.ts). A connection that
 * closes or errors — its VM worker exited or was killed — takes only its port down; the switch
 * and every other port go on. Runs in VMMS (or any host process that owns the switch).
 */
export class SwitchServer {
  readonly switch: VirtualSwitch;
  readonly stats: SwitchServerStats = { connections: 0, protocolErrors: 0 };
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private agingTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly path: string,
    opts: VirtualSwitchOptions,
  ) {
    this.switch = new VirtualSwitch(opts);
    this.server = net.createServer((s) => this.accept(s));
  }

  static async listen(path: string, opts: VirtualSwitchOptions): Promise<SwitchServer> {
    const s = new SwitchServer(path, opts);
    rmSync(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(path, () => resolve());
    });
    s.agingTimer = setInterval(() => s.switch.age(), 10_000);
    s.agingTimer.unref();
    return s;
  }

  async close(): Promise<void> {
    clearInterval(this.agingTimer);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private accept(socket: net.Socket): void {
    this.stats.connections++;
    this.sockets.add(socket);
    const decoder = new FrameStreamDecoder();
    const batcher = new FrameBatcher(socket);
    let port: number | undefined;
    let dead = false;
    const drop = () => {
      dead = true;
      this.sockets.delete(socket);
      if (port !== undefined) this.switch.removePort(port);
      port = undefined;
    };
    socket.on('close', drop);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (dead) return;
      try {
        decoder.push(chunk, (record) => {
          if (port !== undefined) {
            this.switch.ingress(port, record);
            return;
          }
          const hello = decodeHello(record);
          port = this.switch.addPort(
            { kind: portKindOf(hello), mac: hello.mac, name: hello.name, vlanId: hello.vlanId, mtu: hello.mtu, allowMacSpoofing: hello.allowMacSpoofing },
            (frame) => batcher.push(frame),
          ).id;
          socket.write(lengthPrefixed(encodeHello({ port })));
        });
      } catch (e) {
        this.stats.protocolErrors++;
        socket.end(lengthPrefixed(encodeHello({ error: (e as Error).message })));
        socket.destroySoon?.();
        drop();
      }
    });
  }
}

export function lengthPrefixed(record: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4 + record.length);
  b.writeUInt32BE(record.length, 0);
  b.set(record, 4);
  return b;
}
