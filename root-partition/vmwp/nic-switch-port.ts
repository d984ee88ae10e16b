/**
 * One NIC of a VM on its switch port: frames the guest sends go to the switch link, frames the
 * switch sends go to the NIC. For a synthetic NIC the frames of one event-loop turn are handed
 * over together, so they reach the guest in one transfer-page packet and one signal; the batch is
 * bounded by the frames one packet carries (375), more start another batch. Nothing else is
 * queued: what the NIC cannot take is dropped and counted by the NIC.
 */
import type { Ne2000 } from '../devices/ne2000/ne2000.ts';
import { MAX_FRAMES_PER_RECEIVE_PACKET } from '../vsp/netvsp/netvsp-channel.ts';
import type { NetVsp } from '../vsp/netvsp/netvsp-vsp.ts';
import type { SwitchLink } from '../vswitch/switch-link.ts';

export type SwitchedNic = { kind: 'emulated'; card: Ne2000 } | { kind: 'synthetic'; vsp: NetVsp };

export class NicSwitchPort {
  private batch: Uint8Array[] = [];
  private flushQueued = false;
  private closed = false;

  constructor(
    readonly nic: SwitchedNic,
    readonly link: SwitchLink,
  ) {
    if (nic.kind === 'emulated') {
      nic.card.onTransmit = (f) => link.send(f);
      link.onFrame = (f) => nic.card.receive(f);
    } else {
      link.onFrame = (f) => this.queue(f);
    }
  }

  /** Frames the synthetic NIC's guest transmits: wired by the owner into NetVsp's onTransmit. */
  transmit(frame: Uint8Array): void {
    if (!this.closed) this.link.send(frame);
  }

  private queue(frame: Uint8Array): void {
    // The link's view is valid during the call only.
    this.batch.push(frame.slice());
    if (this.batch.length >= MAX_FRAMES_PER_RECEIVE_PACKET) return this.flush();
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const frames = this.batch;
    this.batch = [];
    if (frames.length > 0 && !this.closed && this.nic.kind === 'synthetic') this.nic.vsp.deliver(frames);
  }

  close(): void {
    this.closed = true;
    this.batch = [];
    if (this.nic.kind === 'emulated') this.nic.card.onTransmit = undefined;
    this.link.onFrame = () => {};
    this.link.close();
  }
}
