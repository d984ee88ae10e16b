/**
 * Keeps one NIC connected to its switch for the life of the VM: connects, and when the
 * connection ends (VMMS, which serves the switch, stopped or restarted) reports link down to a
 * synthetic NIC's guest and tries again every half second, so a restarted VMMS finds its running
 * VMs back on their switches without asking them. Until the first attempt ends the link is
 * "being established": a restored guest keeps the link state it was told at the save, and learns
 * only what the attempt found (nothing, if it connects and the link was up).
 */
import type { SwitchHello } from '../vswitch/switch-hello.ts';
import { SwitchLink } from '../vswitch/switch-link.ts';
import { NicSwitchPort, type SwitchedNic } from './nic-switch-port.ts';

const RETRY_MS = 500;

export class NicUplink {
  private port: NicSwitchPort | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Connections made (1 after the first; more after reconnects). */
  connections = 0;

  constructor(
    readonly nic: SwitchedNic,
    private readonly socket: string,
    private readonly hello: SwitchHello,
    private readonly log: (m: string) => void,
  ) {
    this.setLink(false, false);
    void this.connect();
  }

  get connected(): boolean {
    return this.port !== null;
  }

  /** A frame the NIC's guest sent (synthetic NICs; an emulated card is wired by its port). */
  transmit(frame: Uint8Array): void {
    this.port?.transmit(frame);
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    let link: SwitchLink;
    try {
      link = await SwitchLink.connect(this.socket, this.hello);
    } catch (e) {
      if (this.connections === 0 && !this.timer) this.log(`nic ${this.hello.mac}: switch ${this.socket} not reachable (${(e as Error).message}); retrying`);
      this.setLink(false);
      return this.retry();
    }
    if (this.closed) return link.close();
    this.connections++;
    const port = new NicSwitchPort(this.nic, link);
    this.port = port;
    link.onClose = (why) => {
      if (this.port !== port) return;
      this.port = null;
      port.close();
      this.setLink(false);
      this.log(`nic ${this.hello.mac}: switch connection ended (${why}); reconnecting`);
      this.retry();
    };
    this.setLink(true);
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => void this.connect(), RETRY_MS);
    this.timer.unref?.();
  }

  private setLink(up: boolean, settled = true): void {
    if (this.nic.kind === 'synthetic') this.nic.vsp.setLink(up, settled);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.port?.close();
    this.port = null;
  }
}
