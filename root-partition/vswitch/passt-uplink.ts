/**
 * The host's network stack on an internal or external switch: passt (https://passt.top, Debian
 * package `passt`; the user-mode networking QEMU, podman and libvirt use) in socket mode. VMMS
 * starts one passt per such switch, connects to its Unix socket as QEMU's `-netdev stream` does
 * (each frame preceded by its 32-bit big-endian length, the framing of the switch's own links) and
 * puts it on the switch as the internal port, or the external one (the uplink). passt answers ARP
 * and DHCP for the address it hands out, and forwards the switch's host ports to that address, so
 * a host process reaches a VM's service through it.
 *
 * What a VM reaches through it (passt(1) NATs the guest's flows onto host sockets): on an external
 * switch, whatever the host's sockets reach; on an internal one only the host itself — passt binds
 * its outbound sockets to 127.0.0.1 (`--outbound`), from which Linux routes only to the host's own
 * addresses (a loopback source leaving a real interface is refused, net/ipv4/route.c), and runs
 * IPv4 only so no IPv6 flow escapes that. A passt that exits, or whose socket closes, is started again after a delay that
 * doubles up to 10 s while it keeps failing; stop() ends it with the switch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { FrameBatcher, FrameStreamDecoder } from './frame-stream.ts';
import { passtForwardArgs, type PortForward } from './passt-forward.ts';
import { SwitchPortKind } from './switch-port.ts';
import type { VirtualSwitch } from './virtual-switch.ts';

export interface PasstOptions {
  /** Where passt listens (it creates the socket). */
  socketPath: string;
  /** The address passt hands the guest (DHCP) and forwards to, with its prefix length. */
  guestAddress: string;
  prefixLength: number;
  /** The gateway passt answers for (its own address on the switch). */
  gateway: string;
  forwards: readonly PortForward[];
  /** `host`: the host's own addresses only (internal switch); `networks`: wherever the host routes (external). */
  reach: 'host' | 'networks';
  /** The passt binary (default: `passt` on PATH). */
  command?: string;
  log?: (message: string) => void;
}

/** A connected socket, or undefined when the connection was refused. */
function connectOnce(path: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = net.createConnection(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(undefined);
    });
  });
}

export type PasstState = 'starting' | 'running' | 'restarting' | 'stopped';

const FIRST_RESTART_MS = 500;
const MAX_RESTART_MS = 10_000;
const SOCKET_WAIT_MS = 10_000;

export class PasstUplink {
  state: PasstState = 'starting';
  /** Times passt was started again after it exited or its socket closed. */
  restarts = 0;
  /** Why passt last stopped or failed to start (its last line of output, or the exit). */
  lastError: string | undefined;
  pid: number | undefined;
  private child: ChildProcess | undefined;
  private socket: net.Socket | undefined;
  private port: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = FIRST_RESTART_MS;
  private stopping = false;
  private readonly exited = new Set<Promise<void>>();

  constructor(
    private readonly sw: VirtualSwitch,
    private readonly o: PasstOptions,
  ) {}

  /** The command line passt runs with (the uid it keeps: passt run by root otherwise drops to nobody). */
  args(): string[] {
    const runas = typeof process.getuid === 'function' ? [`--runas`, `${process.getuid()}:${process.getgid!()}`] : [];
    const reach = this.o.reach === 'host' ? ['--outbound', '127.0.0.1', '--ipv4-only'] : [];
    return [
      '--foreground',
      '--quiet',
      ...runas,
      '--socket',
      this.o.socketPath,
      '--address',
      this.o.guestAddress,
      '--netmask',
      String(this.o.prefixLength),
      '--gateway',
      this.o.gateway,
      '--no-dhcpv6',
      '--no-ndp',
      ...reach,
      ...passtForwardArgs(this.o.forwards),
    ];
  }

  start(): void {
    if (this.stopping) return;
    this.state = this.restarts > 0 ? 'restarting' : 'starting';
    rmSync(this.o.socketPath, { force: true });
    let stderr = '';
    const child = spawn(this.o.command ?? 'passt', this.args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.pid = child.pid;
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2048)));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    this.exited.add(exited);
    void exited.then(() => this.exited.delete(exited));
    child.once('error', (e) => this.failed(child, `passt: ${e.message}`));
    child.once('exit', (code, signal) => {
      const last = stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('Failed to send'))
        .at(-1);
      this.failed(child, `passt exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ''}`);
    });
    void this.connectWhenListening(child);
  }

  private async connectWhenListening(child: ChildProcess): Promise<void> {
    // passt creates the socket file when it binds and accepts only once it listens: a connection
    // refused in between is tried again until the deadline.
    const end = Date.now() + SOCKET_WAIT_MS;
    let socket: net.Socket | undefined;
    while (!socket) {
      if (this.child !== child) return;
      if (Date.now() > end) return this.failed(child, `passt did not accept on ${this.o.socketPath} in ${SOCKET_WAIT_MS} ms`);
      if (existsSync(this.o.socketPath)) socket = await connectOnce(this.o.socketPath);
      if (!socket) await new Promise((r) => setTimeout(r, 20));
    }
    if (this.child !== child) return void socket.destroy();
    this.socket = socket;
    const decoder = new FrameStreamDecoder();
    const batcher = new FrameBatcher(socket);
    try {
      const uplink = this.o.reach === 'networks';
      this.port = this.sw.addPort(
        { kind: uplink ? SwitchPortKind.External : SwitchPortKind.Internal, name: uplink ? 'passt (uplink)' : 'passt (host)', allowMacSpoofing: true },
        (frame) => batcher.push(frame),
      ).id;
    } catch (e) {
      return this.failed(child, `the switch refused passt's port: ${(e as Error).message}`);
    }
    this.state = 'running';
    this.delayMs = FIRST_RESTART_MS;
    this.o.log?.(`passt ${child.pid} serves switch ${this.sw.name} (guest ${this.o.guestAddress}/${this.o.prefixLength}, gateway ${this.o.gateway})`);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          if (this.port !== undefined) this.sw.ingress(this.port, frame);
        });
      } catch (e) {
        this.failed(child, `passt's stream: ${(e as Error).message}`);
      }
    });
    socket.on('error', (e) => this.failed(child, `passt's socket: ${e.message}`));
    socket.on('close', () => this.failed(child, 'passt closed its socket'));
  }

  /** Ends this instance (once) and, unless stopping, starts another after the delay. */
  private failed(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.detach();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (this.stopping) return;
    this.lastError = why;
    this.state = 'restarting';
    this.o.log?.(`switch ${this.sw.name}: ${why}; starting passt again in ${this.delayMs} ms`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.restarts++;
      this.start();
    }, this.delayMs);
    this.delayMs = Math.min(MAX_RESTART_MS, this.delayMs * 2);
  }

  private detach(): void {
    if (this.port !== undefined) this.sw.removePort(this.port);
    this.port = undefined;
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** Stops passt for good (the switch is going away or VMMS is closing). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.state = 'stopped';
    clearTimeout(this.timer);
    const child = this.child;
    this.child = undefined;
    this.detach();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 2000);
      await Promise.all([...this.exited]);
      clearTimeout(hard);
    }
    await Promise.all([...this.exited]);
    rmSync(this.o.socketPath, { force: true });
  }
}
