/**
 * The synthetic NIC on a VM's VMBus: offers HV_NIC_GUID, runs one NetVspChannel per open primary
 * channel and connects it to the rings (guest packets in, completions and transfer-page packets
 * out) and to whatever carries its frames (a switch port). The sub-channels the guest asks for
 * (NVSP SUBCHANNEL) are offered through the VMBus server and served by the same NetVspChannel, each
 * with its own rings. Frames for the guest are delivered in one transfer-page packet per channel
 * per call, so a batch from the switch costs one signal per channel at most.
 */
import { availableParallelism } from 'node:os';
import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import { HvError } from '../../../hypervisor/hv-error.ts';
import { VmbusPacketType, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, type ReceivedPacket } from '../../../vmbus/ring/index.ts';
import type { PacketBatch, VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { Vsp } from '../../../vmbus/host/vsp.ts';
import {
  NetVspChannel,
  MAX_RNDIS_TRANSFER_BYTES,
  type NetVspChannelOptions,
  type NetVspIncoming,
  type NetVspSink,
  type NetVspStats,
} from './netvsp-channel.ts';
import { NETVSP_INTERFACE_GUID } from './nvsp-protocol.ts';
import { decodeNetVspChannel, decodeNetVspSubChannel, encodeNetVspChannel, encodeNetVspSubChannel, netvspStateError } from './netvsp-saved-state.ts';

/** What NetVsp needs from the VMBus host to offer sub-channels and take them back (VmbusHost.server satisfies it). */
export interface NetSubChannelOfferer {
  offerSubchannel(primaryRelid: number): number;
  /** RESCIND_CHANNELOFFER for every sub-channel of the primary; the next offer is index 1 again. */
  rescindSubchannels(primaryRelid: number): number[];
}

/** Channels per NIC unless configured (Linux's VRSS_CHANNEL_DEFAULT). */
export const DEFAULT_NETVSP_CHANNELS = 8;
/** OPENCHANNEL_RESULT for a sub-channel this NIC did not grant (STATUS_INVALID_DEVICE_STATE). */
const STATUS_INVALID_DEVICE_STATE = 0xc0000184;

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
  /** Whether the VM is paused (its VPs parked): frames for it are then dropped and counted. */
  paused?: () => boolean;
  /** Who offers sub-channels (pass `vmbusHost.server`); without it SUBCHANNEL is refused. */
  subChannels?: NetSubChannelOfferer;
  /**
   * Channels (receive queues) this NIC runs at most, the primary included: default 8, never more
   * than the host's cores (a queue per core is what spreads the load) nor 64.
   */
  maxChannels?: number;
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
  /** The open sub-channels of the primary, with their sub_channel_index. */
  private readonly subs = new Map<VspChannel, number>();
  /** A primary being restored (between its restoreChannel check and its step): its sub-channels check against it. */
  private restoring: { relid: number; net: NetVspChannel } | null = null;
  private current: ReceivedPacket | null = null;
  /** The channel `current` came on (a completion for it is written there). */
  private currentChannel: VspChannel | null = null;
  /** Channels this NIC runs at most (see NetVspOptions.maxChannels). */
  readonly maxChannels: number;
  private subChannelsOffered = 0;
  private subChannelsRescinded = 0;
  private linkUp = true;
  /**
   * False while the link is still being established (the worker is connecting the NIC to its
   * switch): a restored channel keeps the link state its guest was told until the connection
   * succeeds or fails, so a restore does not flap the guest's link.
   */
  private linkSettled = true;
  /** Saving (quiesce .. resumeAfterSave): the rings and the receive buffer are left alone. */
  private quiet = false;
  /** Counters of the channels that closed, summed, so the NIC's totals survive a guest's reconnect. */
  private readonly closedStats: Record<string, number> = {};

  constructor(private readonly opts: NetVspOptions) {
    this.offer = { interfaceType: NETVSP_INTERFACE_GUID, interfaceInstance: opts.instanceId };
    this.maxChannels = opts.subChannels ? Math.max(1, Math.min(opts.maxChannels ?? DEFAULT_NETVSP_CHANNELS, availableParallelism(), 64)) : 1;
  }

  get mac(): Uint8Array {
    return this.opts.mac;
  }

  /** The open channel's state machine (tests, counters), or null. */
  get net(): NetVspChannel | null {
    return this.channel?.net ?? null;
  }

  onOpen(channel: VspChannel): number {
    if (channel.subChannelIndex !== 0) {
      // A sub-channel of the open primary, one it granted (the guest cannot open more than were offered).
      const primary = this.channel;
      if (primary?.vsp.relid !== channel.primaryRelid || !primary.net.attachSubChannel(channel.subChannelIndex, this.sink(channel))) {
        this.opts.log?.(`netvsp: sub-channel ${channel.subChannelIndex} (relid ${channel.relid}) refused: not granted on an open primary`);
        return STATUS_INVALID_DEVICE_STATE;
      }
      this.subs.set(channel, channel.subChannelIndex);
      return 0;
    }
    if (this.channel) this.closeChannel();
    const net = new NetVspChannel(this.channelOptions(channel));
    net.rndis.linkUp = this.linkUp;
    this.channel = { vsp: channel, net };
    return 0;
  }

  private channelOptions(channel: VspChannel): NetVspChannelOptions {
    return {
      memory: channel.mem as GuestMemory,
      mac: this.opts.mac,
      allowJumbo: this.opts.allowJumbo,
      resolveGpadl: (handle) => channelGpadlPages(this.opts.gpadls, handle, channel.primaryRelid),
      sink: this.sink(channel),
      onTransmit: (frame, vlanId) => this.opts.onTransmit(frame, vlanId),
      maxChannels: this.maxChannels,
      onSubChannelsGranted: (count) => this.offerSubChannels(channel, count),
    };
  }

  private sink(channel: VspChannel): NetVspSink {
    const split = (id: bigint) => [Number(id & 0xffffffffn), Number(id >> 32n)] as const;
    return {
      complete: (transactionId, payload) => {
        const p = this.current;
        if (p && this.currentChannel === channel && p.transactionId === transactionId) return channel.complete(p, payload);
        return channel.send(VmbusPacketType.Completion, 0, ...split(transactionId), null, payload);
      },
      sendTransferPages: (transactionId, header, payload) =>
        channel.send(VmbusPacketType.DataUsingTransferPages, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, ...split(transactionId), header, payload),
      sendInband: (payload) => channel.sendInband(0, 0, payload),
    };
  }

  /**
   * SUBCHANNEL granted `count`: offered once its completion is on its way, as the server must not
   * be re-entered from a ring drain (the pattern StorVsp follows for CREATE_SUB_CHANNELS), with
   * sub_channel_index 1..count: the sub-channels of an earlier open were rescinded when it closed.
   */
  private offerSubChannels(primary: VspChannel, count: number): void {
    const offerer = this.opts.subChannels;
    if (!offerer) return;
    queueMicrotask(() => {
      if (this.channel?.vsp !== primary || primary.state !== 'open') return;
      for (let i = 0; i < count; i++) {
        try {
          offerer.offerSubchannel(primary.relid);
          this.subChannelsOffered++;
        } catch (e) {
          this.opts.log?.(`netvsp relid ${primary.relid}: sub-channel not offered: ${e instanceof Error ? e.message : String(e)}`);
          return;
        }
      }
    });
  }

  /** Sub-channels offered so far (they are offered once per grant). */
  get offeredSubChannels(): number {
    return this.subChannelsOffered;
  }

  onPackets(channel: VspChannel, batch: PacketBatch): void {
    const queue = channel.subChannelIndex === 0 ? (this.channel?.vsp === channel ? 0 : undefined) : this.subs.get(channel);
    const net = queue === undefined ? null : this.channel!.net;
    for (let p = batch.next(); p !== null; p = batch.next()) {
      if (!net) continue;
      const incoming = this.incoming(channel, p);
      if (!incoming) {
        net.stats.refused++;
        continue;
      }
      this.current = p;
      this.currentChannel = channel;
      try {
        net.handle(incoming, queue);
      } finally {
        this.current = null;
        this.currentChannel = null;
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

  /** Saving: frames from the switch are dropped and counted, link changes wait for resumeAfterSave. */
  quiesce(): void {
    this.quiet = true;
  }

  /** The save was not used: frames flow again, and the guest learns a link change it missed. */
  resumeAfterSave(): void {
    this.quiet = false;
    if (this.linkSettled) this.channel?.net.setLink(this.linkUp);
  }

  /** The channel's NVSP, NDIS, RNDIS and buffer state with the receive packets in flight (netvsp-saved-state.ts). */
  saveChannel(channel: VspChannel): Uint8Array {
    const sub = this.subs.get(channel);
    const net = this.channel?.vsp === channel || sub !== undefined ? this.channel!.net : null;
    if (!net) throw new HvError('NETVSP_SAVE', `relid ${channel.relid} is not served by this adapter`);
    if (channel.isDraining) throw new HvError('NETVSP_SAVE', `relid ${channel.relid}: a save inside a drain would miss the packet being handled`);
    return sub !== undefined ? encodeNetVspSubChannel(sub) : encodeNetVspChannel(net.saveState());
  }

  /**
   * Checks the saved channel against this adapter and guest memory (throws NETVSP_BAD_SAVED_STATE,
   * having changed nothing); the step installs it. The guest is told nothing unless the link is
   * settled and differs from what it was told (an adapter without a switch); otherwise the
   * uplink's connection, or its failure, settles it.
   */
  restoreChannel(channel: VspChannel, state: Uint8Array | undefined): () => void {
    if (state === undefined) throw netvspStateError(`none for open relid ${channel.relid}`);
    if (channel.subChannelIndex !== 0) return this.restoreSubChannel(channel, state);
    const net = NetVspChannel.restored(this.channelOptions(channel), decodeNetVspChannel(state));
    this.restoring = { relid: channel.relid, net };
    return () => {
      if (this.channel) this.closeChannel();
      this.channel = { vsp: channel, net };
      this.restoring = null;
      if (this.linkSettled) net.setLink(this.linkUp);
    };
  }

  /** A sub-channel: its record names its index, which its primary (restored just before) granted. */
  private restoreSubChannel(channel: VspChannel, state: Uint8Array): () => void {
    const index = decodeNetVspSubChannel(state);
    if (index !== channel.subChannelIndex) throw netvspStateError(`relid ${channel.relid} is sub-channel ${channel.subChannelIndex}; its record says ${index}`);
    const primary = this.restoring;
    if (primary?.relid !== channel.primaryRelid)
      throw netvspStateError(`sub-channel relid ${channel.relid}: its primary (relid ${channel.primaryRelid}) is not open`);
    if (index > primary.net.grantedSubChannels)
      throw netvspStateError(`sub-channel ${index} (relid ${channel.relid}); its primary granted ${primary.net.grantedSubChannels}`);
    const net = primary.net;
    return () => {
      net.attachSubChannel(index, this.sink(channel));
      this.subs.set(channel, index);
    };
  }

  onClose(channel: VspChannel): void {
    const sub = this.subs.get(channel);
    if (sub !== undefined) {
      this.subs.delete(channel);
      this.channel?.net.detachSubChannel(sub);
    }
    if (this.channel?.vsp === channel) {
      const granted = this.channel.net.grantedSubChannels;
      this.closeChannel();
      if (granted > 0) this.rescindSubChannels(channel.relid);
    }
  }

  /**
   * The primary closed: its sub-channels go with it (RESCIND_CHANNELOFFER each, as Hyper-V does;
   * the guest releases their relids), and a reopened primary that asks again is offered fresh
   * ones. Deferred: this runs inside the server's CLOSECHANNEL, which must not be re-entered.
   */
  private rescindSubChannels(primaryRelid: number): void {
    const offerer = this.opts.subChannels;
    if (!offerer) return;
    queueMicrotask(() => {
      const rescinded = offerer.rescindSubchannels(primaryRelid);
      this.subChannelsRescinded += rescinded.length;
    });
  }

  /** Sub-channels taken back when their primary closed. */
  get rescindedSubChannels(): number {
    return this.subChannelsRescinded;
  }

  private closeChannel(): void {
    if (this.channel) for (const [k, v] of Object.entries(this.channel.net.stats)) this.closedStats[k] = (this.closedStats[k] ?? 0) + v;
    this.channel = null;
    // Sub-channels still open serve nothing now (their packets are ignored until they are rescinded or closed).
    this.subs.clear();
  }

  /**
   * Frames from the switch for the guest, in one transfer-page packet (375 frames at most each).
   * Returns how many were delivered; the rest are dropped and counted by reason (nothing is queued).
   */
  deliver(frames: readonly Uint8Array[]): number {
    const c = this.channel;
    if (c?.vsp.state !== 'open') return 0;
    return c.net.deliver(frames, this.quiet || this.opts.paused?.() === true);
  }

  /** Whether a frame would pass the guest's packet filter now (the switch's `filtered` count). */
  admits(frame: Uint8Array): boolean {
    const net = this.channel?.net;
    return net?.receiving === true && net.admits(frame);
  }

  /**
   * Link state as the guest sees it (MEDIA_CONNECT / MEDIA_DISCONNECT when it changes).
   * `settled` false: down for now while a connection is being made (see linkSettled).
   */
  setLink(up: boolean, settled = true): void {
    this.linkUp = up;
    this.linkSettled = settled;
    if (settled && !this.quiet) this.channel?.net.setLink(up);
  }

  /** Totals over every channel this NIC has had. */
  get stats(): NetVspStats {
    const sum: Record<string, number> = { ...this.closedStats };
    if (this.channel) for (const [k, v] of Object.entries(this.channel.net.stats)) sum[k] = (sum[k] ?? 0) + v;
    return sum as unknown as NetVspStats;
  }
}
