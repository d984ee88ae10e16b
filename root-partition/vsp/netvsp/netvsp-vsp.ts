/**
 * The synthetic NIC on a VM's VMBus: offers HV_NIC_GUID, runs one NetVspChannel per open channel
 * and connects it to the rings (guest packets in, completions and transfer-page packets out) and
 * to whatever carries its frames (a switch port). Frames for the guest are delivered in one
 * transfer-page packet per call, so a batch from the switch costs one signal at most.
 */
import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { VmbusPacketType, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, type ReceivedPacket } from '../../../vmbus/ring/index.ts';
import type { PacketBatch, VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { Vsp } from '../../../vmbus/host/vsp.ts';
import { NetVspChannel, MAX_RNDIS_TRANSFER_BYTES, type NetVspIncoming, type NetVspStats } from './netvsp-channel.ts';
import { NETVSP_INTERFACE_GUID } from './nvsp-protocol.ts';

/** What the VSP needs to look up a GPADL the guest created (the VMBus server's table). */
export interface GpadlLookup {
  gpadl(handle: number): { relid: number; pages: readonly number[]; complete: boolean; usedByRelid: number } | undefined;
}

export interface NetVspOptions {
  /** Instance GUID of the NIC's channel (one per adapter). */
  instanceId: string;
  mac: Uint8Array;
  allowJumbo?: boolean;
  gpadls: GpadlLookup;
  /** A frame the guest sent (valid during the call only). */
  onTransmit(frame: Uint8Array, vlanId: number | undefined): void;
  log?: (message: string) => void;
}

/** NVSP messages in-band are at most 40 bytes; a GPA-direct SEND_RNDIS_PKT names ≤ 128 KiB (33 pages per range). */
const MAX_GUEST_PACKET_BYTES = 4096;

/**
 * The pages of GPADL `handle` when the guest created it, completely, on channel `relid` (Linux and
 * FreeBSD create the receive and send buffers on the NIC's own channel); otherwise undefined, so
 * a buffer cannot be another device's GPADL, half described, or the rings themselves.
 */
export function channelGpadlPages(gpadls: GpadlLookup, handle: number, relid: number): readonly number[] | undefined {
  const g = gpadls.gpadl(handle);
  return g?.complete && g.relid === relid && g.usedByRelid === 0 ? g.pages : undefined;
}

export class NetVsp implements Vsp {
  readonly offer: { interfaceType: string; interfaceInstance: string };
  /** One packet can cause a completion (40 bytes) and a control transfer-page packet (header + 40). */
  readonly maxReplyBytes = 256;
  readonly maxPacketBytes = MAX_GUEST_PACKET_BYTES;
  private channel: { vsp: VspChannel; net: NetVspChannel } | null = null;
  private current: ReceivedPacket | null = null;
  private linkUp = true;
  /** Counters of the channels that closed, summed, so the NIC's totals survive a guest's reconnect. */
  private readonly closedStats: Record<string, number> = {};

  constructor(private readonly opts: NetVspOptions) {
    this.offer = { interfaceType: NETVSP_INTERFACE_GUID, interfaceInstance: opts.instanceId };
  }

  get mac(): Uint8Array { return this.opts.mac; }

  /** The open channel's state machine (tests, counters), or null. */
  get net(): NetVspChannel | null { return this.channel?.net ?? null; }

  onOpen(channel: VspChannel): number {
    // Sub-channels are never offered (SUBCHANNEL is refused), so this is the primary.
    if (this.channel) this.closeChannel();
    const net = new NetVspChannel({
      memory: channel.mem as GuestMemory,
      mac: this.opts.mac,
      allowJumbo: this.opts.allowJumbo,
      resolveGpadl: (handle) => channelGpadlPages(this.opts.gpadls, handle, channel.primaryRelid),
      sink: {
        complete: (transactionId, payload) => {
          const p = this.current;
          if (p && p.transactionId === transactionId) return channel.complete(p, payload);
          return channel.send(VmbusPacketType.Completion, 0, Number(transactionId & 0xffffffffn), Number(transactionId >> 32n), null, payload);
        },
        sendTransferPages: (transactionId, header, payload) =>
          channel.send(VmbusPacketType.DataUsingTransferPages, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, Number(transactionId & 0xffffffffn), Number(transactionId >> 32n), header, payload),
      },
      onTransmit: (frame, vlanId) => this.opts.onTransmit(frame, vlanId),
    });
    net.rndis.linkUp = this.linkUp;
    this.channel = { vsp: channel, net };
    return 0;
  }

  onPackets(channel: VspChannel, batch: PacketBatch): void {
    const net = this.channel?.vsp === channel ? this.channel.net : null;
    for (let p = batch.next(); p !== null; p = batch.next()) {
      if (!net) continue;
      const incoming = this.incoming(channel, p);
      if (!incoming) {
        net.stats.refused++;
        continue;
      }
      this.current = p;
      try {
        net.handle(incoming);
      } finally {
        this.current = null;
      }
      if (net.lastError) {
        this.opts.log?.(`netvsp: ${net.lastError}`);
        net.lastError = '';
      }
    }
  }

  private incoming(channel: VspChannel, p: ReceivedPacket): NetVspIncoming | null {
    const completionRequested = (p.flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) !== 0;
    const payload = p.bytes.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength);
    switch (p.type) {
      case VmbusPacketType.DataInband:
        return { kind: 'inband', transactionId: p.transactionId, completionRequested, payload };
      case VmbusPacketType.Completion:
        return { kind: 'completion', transactionId: p.transactionId, completionRequested: false, payload };
      case VmbusPacketType.DataUsingGpaDirect: {
        const found = channel.gpaDirect(p);
        const segments = found.ok && found.buffer.byteCount <= MAX_RNDIS_TRANSFER_BYTES ? found.buffer.segments : null;
        return { kind: 'gpa-direct', transactionId: p.transactionId, completionRequested, payload, gpaSegments: segments };
      }
      default:
        return null;
    }
  }

  /**
   * Not built: the channel's NVSP/RNDIS state and the receive slots in flight are not saved, so a
   * VM whose guest opened a synthetic NIC refuses to be saved (the VM runs on; VMMS's automatic
   * save then turns it off) rather than write a state that could never be restored.
   */
  saveChannel(channel: VspChannel): Uint8Array {
    throw new HvError('NETVSP_NO_SAVED_STATE', `relid ${channel.relid}: a synthetic network adapter's channel cannot be saved (not built); turn the VM off instead`);
  }

  onClose(channel: VspChannel): void {
    if (this.channel?.vsp === channel) this.closeChannel();
  }

  private closeChannel(): void {
    if (this.channel) for (const [k, v] of Object.entries(this.channel.net.stats)) this.closedStats[k] = (this.closedStats[k] ?? 0) + v;
    this.channel = null;
  }

  /**
   * Frames from the switch for the guest, in one transfer-page packet (375 frames at most each).
   * Returns how many were delivered; the rest are dropped and counted by reason (nothing is queued).
   */
  deliver(frames: readonly Uint8Array[]): number {
    const c = this.channel;
    if (c?.vsp.state !== 'open') return 0;
    return c.net.deliver(frames);
  }

  /** Whether a frame would pass the guest's packet filter now (the switch's `filtered` count). */
  admits(frame: Uint8Array): boolean {
    const net = this.channel?.net;
    return net?.receiving === true && net.admits(frame);
  }

  /** Link state as the guest sees it (MEDIA_CONNECT / MEDIA_DISCONNECT when it changes). */
  setLink(up: boolean): void {
    this.linkUp = up;
    this.channel?.net.setLink(up);
  }

  /** Totals over every channel this NIC has had. */
  get stats(): NetVspStats {
    const sum: Record<string, number> = { ...this.closedStats };
    if (this.channel) for (const [k, v] of Object.entries(this.channel.net.stats)) sum[k] = (sum[k] ?? 0) + v;
    return sum as unknown as NetVspStats;
  }
}
