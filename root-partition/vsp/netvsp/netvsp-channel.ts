import { encodeTransferPageHeader } from '../../../vmbus/ring/index.ts';
import {
  MAX_FRAMES_PER_RECEIVE_PACKET,
  MAX_NETVSP_CHANNELS,
  NETVSC_RECEIVE_BUFFER_ID,
  type NvspError,
  NvspMessageType as T,
  NvspStatus,
  RECEIVE_HEADER_ROOM,
  RECEIVE_TAIL_UNUSABLE,
  RESERVED_CONTROL_SUBALLOCS,
  RndisChannelType,
  SEND_SECTION_SIZE,
  SUPPORTED_NVSP_VERSIONS,
  SubchannelOperation,
  NvspVersion,
  decodeNvsp,
  encodeInitComplete,
  encodeNvsp,
  encodeReceiveBufferComplete,
  encodeRndisPacketComplete,
  encodeRndisPacketForReceive,
  encodeSendBufferComplete,
  encodeSendIndirectionTable,
  encodeSubchannelComplete,
  maxMessageTypeFor,
  nvspMessageSize,
  type NvspMessage,
} from './nvsp-protocol.ts';
import { RndisDevice } from './rndis-device.ts';
import { NdisStatus, type RndisError, RndisMessageType, encodeIndicateStatus, parseRndisPackets } from './rndis-protocol.ts';
import {
  emptyNetVspStats,
  MAX_PACKETS_PER_MESSAGE,
  MAX_RNDIS_TRANSFER_BYTES,
  type NetVspChannelOptions,
  type NetVspIncoming,
  type NetVspSink,
  type NetVspStats,
  type ReceiveBufferState,
  type SendBufferState,
} from './netvsp-channel-types.ts';
import { frameAdmitted, spreadByRss, writeReceiveSlots } from './netvsp-receive-path.ts';
import { receiveBufferOver, restoredReceive, restoredSend, savedReceive, savedSend, sendBufferOver } from './netvsp-buffers.ts';
import { gatherRndisBytes } from './netvsp-transmit.ts';
import { applyTransmitChecksums } from './checksum-offload.ts';
import { JUMBO_FRAME_BYTES, STANDARD_FRAME_BYTES, netvspStateError, type NetVspSavedChannel } from './netvsp-saved-state.ts';

export type { NetVspChannelOptions, NetVspIncoming, NetVspSink, NetVspStats } from './netvsp-channel-types.ts';
export { MAX_FRAMES_PER_RECEIVE_PACKET, MAX_RNDIS_TRANSFER_BYTES };

/**
 * One netvsc channel's NVSP and RNDIS state (Linux hyperv_net.h, rndis.h): INIT and version, NDIS config and
 * version, receive and send buffers over GPADLs with host-chosen geometry, RNDIS control through
 * the reserved receive slots, transmit from a send-buffer section and/or GPA ranges, receive in
 * transfer-page packets with one guest completion per packet. Pure: packets in, sink calls out.
 */
export class NetVspChannel {
  readonly stats: NetVspStats = emptyNetVspStats();
  /** The last refusal, for diagnostics. */
  lastError = '';
  version = 0;
  ndisVersion: { major: number; minor: number } | undefined = undefined;
  /** Frame size from SEND_NDIS_CONFIG (MTU + 14), 1514 until told. */
  maxFrameBytes = 1514;
  private ndisConfigSeen = false;
  private receive: ReceiveBufferState | undefined = undefined;
  private send: SendBufferState | undefined = undefined;
  /** Sub-channels SUBCHANNEL granted (their sub_channel_index is 1..this). */
  grantedSubChannels = 0;
  /** The rings of the sub-channels the guest has opened, by sub_channel_index. */
  private readonly subSinks = new Map<number, NetVspSink>();
  /** For each receive packet in flight, by its first slot: the channel it went out on (its completion must come back there). */
  private slotChannel: Uint8Array = new Uint8Array(0);
  readonly rndis: RndisDevice;
  private readonly opts: NetVspChannelOptions;
  private readonly one = [new Uint8Array(0)];

  constructor(opts: NetVspChannelOptions) {
    this.opts = opts;
    this.rndis = new RndisDevice({ mac: opts.mac, maxFrameBytes: STANDARD_FRAME_BYTES, maxQueues: this.maxChannels });
  }

  /** Channels this NIC may run (the primary included). */
  get maxChannels(): number {
    return Math.max(1, Math.min(MAX_NETVSP_CHANNELS, Math.floor(this.opts.maxChannels ?? 1)));
  }

  /** Sub-channel `index` is open: it carries transmissions and the frames RSS sends it. */
  attachSubChannel(index: number, sink: NetVspSink): boolean {
    if (index < 1 || index > this.grantedSubChannels) return false;
    this.subSinks.set(index, sink);
    return true;
  }

  /**
   * Sub-channel `index` closed: the receive packets still out on it can no longer be completed
   * there, so their slots come back now (the guest cannot strand the shared buffer by closing).
   */
  detachSubChannel(index: number): void {
    if (!this.subSinks.delete(index)) return;
    const r = this.receive;
    if (r) for (const [first] of r.slots.inFlightPackets()) if (this.slotChannel[first!] === index) r.slots.complete(first!);
  }

  /** Sub-channels open now, by index (tests, counters). */
  get openSubChannels(): number[] {
    return [...this.subSinks.keys()].sort((a, b) => a - b);
  }

  private sinkOf(channel: number): NetVspSink {
    return channel === 0 ? this.opts.sink : this.subSinks.get(channel)!;
  }

  /** Everything the channel keeps between packets, for a saved VM (netvsp-saved-state.ts). */
  saveState(): NetVspSavedChannel {
    const r = this.receive,
      s = this.send;
    return {
      version: this.version,
      ndisConfigSeen: this.ndisConfigSeen,
      maxFrameBytes: this.maxFrameBytes,
      ndisVersion: this.ndisVersion && { ...this.ndisVersion },
      receive: r && savedReceive(r, this.slotChannel),
      send: s && savedSend(s),
      rndis: { state: this.rndis.state, packetFilter: this.rndis.packetFilter, linkUp: this.rndis.linkUp },
      mac: this.rndis.mac.slice(),
      subChannelsGranted: this.grantedSubChannels,
      rss: this.rndis.rss && { hashTypes: this.rndis.rss.hashTypes, key: this.rndis.rss.key.slice(), table: this.rndis.rss.table.slice() },
    };
  }

  /**
   * A channel as a saved state (decoded and checked by decodeNetVspChannel) left it, over this
   * VM's memory: the MAC must be this adapter's, jumbo frames allowed on its port if the state
   * has them, and every buffer page inside guest memory. Throws NETVSP_BAD_SAVED_STATE otherwise;
   * sends nothing (the guest is told nothing new: it continues where it was).
   */
  static restored(opts: NetVspChannelOptions, s: NetVspSavedChannel): NetVspChannel {
    const mac = opts.mac;
    if (s.mac.some((b, i) => b !== mac[i])) throw netvspStateError(`MAC ${hexMac(s.mac)} is not this adapter's (${hexMac(mac)})`);
    if (s.maxFrameBytes > STANDARD_FRAME_BYTES && !opts.allowJumbo) throw netvspStateError(`${s.maxFrameBytes}-byte frames on a port without jumbo frames`);
    const c = new NetVspChannel(opts);
    if (s.subChannelsGranted >= c.maxChannels)
      throw netvspStateError(`${s.subChannelsGranted} sub-channels granted; this adapter runs ${c.maxChannels} channel(s) on this host`);
    c.grantedSubChannels = s.subChannelsGranted;
    c.rndis.channels = 1 + s.subChannelsGranted;
    c.rndis.rss = s.rss && { hashTypes: s.rss.hashTypes, key: s.rss.key.slice(), table: s.rss.table.slice() };
    c.version = s.version;
    c.ndisConfigSeen = s.ndisConfigSeen;
    c.ndisVersion = s.ndisVersion && { ...s.ndisVersion };
    c.maxFrameBytes = s.maxFrameBytes;
    (c.rndis as { maxFrameBytes: number }).maxFrameBytes = s.maxFrameBytes;
    c.rndis.state = s.rndis.state;
    c.rndis.packetFilter = s.rndis.packetFilter;
    c.rndis.linkUp = s.rndis.linkUp;
    if (s.receive) ({ receive: c.receive, slotChannel: c.slotChannel } = restoredReceive(opts.memory, s.receive));
    if (s.send) c.send = restoredSend(opts.memory, s.send);
    return c;
  }

  private get msgSize(): number {
    return nvspMessageSize(this.version);
  }

  /** Receive buffer geometry once set up (tests, counters). */
  get receiveGeometry(): { subAllocSize: number; count: number; freeData: number; freeControl: number } | undefined {
    const r = this.receive;
    return r && { subAllocSize: r.subAllocSize, count: r.slots.count, freeData: r.slots.freeDataSlots, freeControl: r.slots.freeControlSlots };
  }

  get sendSections(): number {
    return this.send?.sections ?? 0;
  }

  /** Frames flow to the guest: receive buffer in place, RNDIS initialised, a packet filter set. */
  get receiving(): boolean {
    return this.receive !== undefined && this.rndis.state === 'initialized' && this.rndis.packetFilter !== 0;
  }

  /**
   * A packet from the guest on the primary channel (`channel` 0) or on sub-channel `channel`, which
   * carries only data: SEND_RNDIS_PKT of PACKET_MSGs and completions of its own receive packets.
   */
  handle(p: NetVspIncoming, channel = 0): void {
    if (channel !== 0) return this.subChannelPacket(p, channel);
    if (p.kind === 'completion') return this.guestCompletion(p, 0);
    this.stats.nvspMessages++;
    let msg: NvspMessage;
    try {
      msg = decodeNvsp(p.payload);
    } catch (e) {
      return this.refuse(p, (e as NvspError).message);
    }
    const code = msg.type === T.None ? msg.code : msg.type;
    if (this.version === 0 && code !== T.Init) return this.refuse(p, `NVSP message ${code} before INIT`);
    if (this.version !== 0 && code > maxMessageTypeFor(this.version))
      return this.refuse(p, `NVSP message ${code} is not allowed at version 0x${this.version.toString(16)}`);
    if (p.kind === 'gpa-direct' && code !== T.SendRndisPacket) return this.refuse(p, `GPA-direct packet carrying NVSP message ${code}`);
    switch (msg.type) {
      case T.Init:
        return this.init(p, msg);
      case T.SendNdisConfig: {
        if (this.ndisConfigSeen || this.receive) return this.refuse(p, 'NDIS config repeated or after the receive buffer');
        this.ndisConfigSeen = true;
        const mtu = msg.mtu;
        // OpenVMM replaces an MTU outside 1514..9216 by 1514; jumbo only where the port allows it.
        this.maxFrameBytes = mtu >= STANDARD_FRAME_BYTES && mtu <= 9216 && this.opts.allowJumbo ? Math.min(mtu, JUMBO_FRAME_BYTES) : STANDARD_FRAME_BYTES;
        (this.rndis as { maxFrameBytes: number }).maxFrameBytes = this.maxFrameBytes;
        return this.emptyCompletion(p);
      }
      case T.SendNdisVersion:
        if (this.ndisVersion) return this.refuse(p, 'NDIS version repeated');
        this.ndisVersion = { major: msg.major, minor: msg.minor };
        return this.emptyCompletion(p);
      case T.SendReceiveBuffer:
        return this.receiveBuffer(p, msg.gpadlHandle, msg.id);
      case T.SendSendBuffer:
        return this.sendBuffer(p, msg.gpadlHandle);
      case T.RevokeReceiveBuffer:
        this.receive = undefined; // frames stop; slots in flight are forgotten with the buffer
        return this.emptyCompletion(p);
      case T.RevokeSendBuffer:
        this.send = undefined;
        return this.emptyCompletion(p);
      case T.SendRndisPacket:
        return this.rndisPacket(p, msg.sectionIndex, msg.sectionSize, 0);
      case T.None:
        return this.other(p, msg.code);
      case T.Subchannel:
        return this.allocateSubChannels(p, msg.operation, msg.count);
      default:
        return this.refuse(p, `NVSP message type ${code} is not handled`);
    }
  }

  private subChannelPacket(p: NetVspIncoming, channel: number): void {
    if (!this.subSinks.has(channel)) {
      this.stats.refused++;
      return this.note(`a packet on sub-channel ${channel}, which is not open`);
    }
    if (p.kind === 'completion') return this.guestCompletion(p, channel);
    this.stats.nvspMessages++;
    let msg: NvspMessage;
    try {
      msg = decodeNvsp(p.payload);
    } catch (e) {
      return this.refuse(p, (e as NvspError).message, channel);
    }
    if (msg.type !== T.SendRndisPacket || msg.channelType !== RndisChannelType.Data)
      return this.refuse(p, `NVSP message ${msg.type === T.None ? msg.code : msg.type} on sub-channel ${channel} (data only)`, channel);
    return this.rndisPacket(p, msg.sectionIndex, msg.sectionSize, channel);
  }

  /**
   * SUBCHANNEL ALLOCATE (Linux rndis_set_subchannel): granted once per primary open, after the
   * receive buffer (the sub-channels share it), up to the NIC's channels − 1; a larger request
   * gets the most there are (the response says how many). Anything else: FAIL with 0, as
   * OpenVMM answers. The host then tells the guest its send indirection table (entry i → i mod
   * channels) and offers the sub-channels.
   */
  private allocateSubChannels(p: NetVspIncoming, operation: number, requested: number): void {
    const fail = (why: string) => {
      this.note(`SUBCHANNEL: ${why}`);
      this.stats.refused++;
      this.reply(p, encodeSubchannelComplete(this.msgSize, NvspStatus.Fail, 0));
    };
    if (operation !== SubchannelOperation.Allocate) return fail(`operation ${operation} (only ALLOCATE, 1)`);
    if (!this.receive) return fail('before the receive buffer');
    if (this.grantedSubChannels > 0) return fail('repeated (sub-channels were granted already)');
    if (requested === 0) return fail('for no sub-channel');
    // Every channel needs a receive slot of its own beyond the reserved ones (OpenVMM's rule).
    const byBuffer = this.receive.slots.count - RESERVED_CONTROL_SUBALLOCS - 1;
    const granted = Math.min(requested, this.maxChannels - 1, byBuffer);
    if (granted <= 0) return fail(`this NIC runs ${this.maxChannels} channel(s)`);
    this.grantedSubChannels = granted;
    this.rndis.channels = 1 + granted;
    this.reply(p, encodeSubchannelComplete(this.msgSize, NvspStatus.Success, granted));
    this.opts.sink.sendInband(encodeSendIndirectionTable(1 + granted));
    this.opts.onSubChannelsGranted?.(granted);
  }

  /** Message types without a body this host reads. */
  private other(p: NetVspIncoming, code: number): void {
    switch (code) {
      case T.OidQueryEx:
        return this.reply(p, encodeNvsp(this.msgSize, T.OidQueryExComplete, NdisStatus.NotSupported, 0));
      case T.SwitchDataPath:
        return this.emptyCompletion(p); // no VF: the synthetic path stays active
      default:
        return this.refuse(p, `NVSP message type ${code} is not handled`);
    }
  }

  /**
   * Frames for the guest, in one transfer-page packet (up to 375) per channel they go to: with
   * RSS set and sub-channels open, each frame goes to the channel its flow's Toeplitz hash picks
   * in the guest's indirection table (a channel not open: the primary). Returns how many were
   * delivered; the rest were dropped and counted by reason.
   */
  deliver(frames: readonly Uint8Array[], paused = false): number {
    if (paused) {
      this.stats.rxDropPaused += frames.length;
      return 0;
    }
    const r = this.receive;
    if (!r || !this.receiving || !this.rndis.linkUp) {
      this.stats.rxDropNotReady += frames.length;
      return 0;
    }
    const room = r.subAllocSize - RECEIVE_HEADER_ROOM - RECEIVE_TAIL_UNUSABLE;
    const accepted: Uint8Array[] = [];
    for (const f of frames) {
      if (f.length < 14 || f.length > Math.min(room, this.maxFrameBytes)) this.stats.rxDropTooBig++;
      else if (!this.admits(f)) this.stats.rxDropFiltered++;
      else accepted.push(f);
    }
    let delivered = 0;
    const spread = spreadByRss(accepted, this.rndis.rss, this.subSinks.size > 0, (c) => this.subSinks.has(c));
    for (const [channel, frames] of spread) delivered += this.deliverOn(channel, frames);
    return delivered;
  }

  private deliverOn(channel: number, accepted: Uint8Array[]): number {
    const r = this.receive!;
    const sink = this.sinkOf(channel);
    let delivered = 0;
    for (let i = 0; i < accepted.length; i += MAX_FRAMES_PER_RECEIVE_PACKET) {
      const batch = accepted.slice(i, i + MAX_FRAMES_PER_RECEIVE_PACKET);
      const slots = r.slots.takeData(batch.length);
      this.stats.rxDropNoBuffer += batch.length - slots.length;
      if (slots.length === 0) continue;
      this.slotChannel[slots[0]!] = channel;
      const ranges = writeReceiveSlots(r, batch, slots);
      const header = encodeTransferPageHeader({ transferPageSetId: r.id, senderOwnsSet: false, ranges });
      if (!sink.sendTransferPages(BigInt(slots[0]!), header, encodeRndisPacketForReceive(this.msgSize, RndisChannelType.Data))) {
        r.slots.giveBack(slots[0]!);
        this.stats.rxDropRingFull += slots.length;
        continue;
      }
      this.stats.receivePackets++;
      this.stats.framesDelivered += slots.length;
      if (channel !== 0) this.stats.framesDeliveredOnSubChannels += slots.length;
      delivered += slots.length;
    }
    return delivered;
  }

  /** Link state change: MEDIA_CONNECT / MEDIA_DISCONNECT indication once RNDIS is initialised. */
  setLink(up: boolean): void {
    if (this.rndis.linkUp === up) return;
    this.rndis.linkUp = up;
    if (this.rndis.state === 'initialized') this.sendControl(encodeIndicateStatus(up ? NdisStatus.MediaConnect : NdisStatus.MediaDisconnect));
  }

  /** Whether the guest's packet filter admits the frame (NDIS semantics; no multicast list kept). */
  admits(frame: Uint8Array): boolean {
    return frameAdmitted(frame, this.rndis.packetFilter, this.rndis.mac);
  }

  private init(p: NetVspIncoming, msg: { minVersion: number; maxVersion: number }): void {
    if (this.version !== 0) return this.refuse(p, 'INIT repeated');
    const v = msg.minVersion;
    const ok = SUPPORTED_NVSP_VERSIONS.includes(v);
    if (ok) this.version = v;
    // A failed INIT leaves the channel waiting for another (the guest tries the next version).
    if (p.completionRequested)
      this.opts.sink.complete(p.transactionId, encodeInitComplete(nvspMessageSize(ok ? v : NvspVersion.V1), v, ok ? NvspStatus.Success : NvspStatus.None));
  }

  private receiveBuffer(p: NetVspIncoming, handle: number, id: number): void {
    const fail = (why: string) => {
      this.note(why);
      this.stats.refused++;
      this.reply(p, encodeReceiveBufferComplete(this.msgSize, NvspStatus.Fail, 0, 0));
    };
    if (this.receive) return fail('receive buffer repeated');
    if (this.version >= NvspVersion.V2 && !this.ndisConfigSeen) return fail('receive buffer before the NDIS config');
    const r = receiveBufferOver(this.opts.memory, handle, this.opts.resolveGpadl(handle), id, this.maxFrameBytes);
    if (typeof r === 'string') return fail(r);
    this.receive = r;
    this.slotChannel = new Uint8Array(r.slots.count);
    this.reply(p, encodeReceiveBufferComplete(this.msgSize, NvspStatus.Success, r.subAllocSize, r.slots.count));
  }

  private sendBuffer(p: NetVspIncoming, handle: number): void {
    const fail = (why: string) => {
      this.note(why);
      this.stats.refused++;
      this.reply(p, encodeSendBufferComplete(this.msgSize, NvspStatus.Fail, 0));
    };
    if (this.send) return fail('send buffer repeated');
    if (!this.receive) return fail('send buffer before the receive buffer');
    const s = sendBufferOver(this.opts.memory, handle, this.opts.resolveGpadl(handle));
    if (typeof s === 'string') return fail(s);
    this.send = s;
    this.reply(p, encodeSendBufferComplete(this.msgSize, NvspStatus.Success, SEND_SECTION_SIZE));
  }

  /** SEND_RNDIS_PKT from the guest: gather the RNDIS bytes (copied), then data or control. */
  private rndisPacket(p: NetVspIncoming, sectionIndex: number, sectionSize: number, channel: number): void {
    const complete = (status: number) => {
      if (p.completionRequested) this.sinkOf(channel).complete(p.transactionId, encodeRndisPacketComplete(this.msgSize, status));
    };
    const txError = (why: string) => {
      this.note(why);
      this.stats.transmitErrors++;
      complete(NvspStatus.Fail);
    };
    if (!this.receive) return txError('SEND_RNDIS_PKT before the receive buffer');
    const buf = gatherRndisBytes(p, this.send, sectionIndex, sectionSize);
    if (typeof buf === 'string') return txError(buf);
    const type = new DataView(buf.buffer).getUint32(0, true);
    if (buf.length >= 4 && type !== RndisMessageType.Packet) {
      if (channel !== 0) return txError(`RNDIS control message 0x${type.toString(16)} on sub-channel ${channel}`);
      this.stats.rndisControl++;
      try {
        const response = this.rndis.control(buf);
        if (this.rndis.refusal) this.note(this.rndis.refusal), (this.rndis.refusal = '');
        if (response) this.sendControl(response);
      } catch (e) {
        return txError(`RNDIS control: ${(e as RndisError).message}`);
      }
      return complete(NvspStatus.Success);
    }
    let packets: ReturnType<typeof parseRndisPackets>;
    try {
      packets = parseRndisPackets(buf, MAX_PACKETS_PER_MESSAGE);
    } catch (e) {
      return txError(`RNDIS data: ${(e as RndisError).message}`);
    }
    let ok = true;
    for (const pk of packets) {
      if (pk.frameLength < 14 || pk.frameLength > this.maxFrameBytes) {
        ok = false;
        this.stats.transmitErrors++;
        this.note(`frame of ${pk.frameLength} bytes is outside 14..${this.maxFrameBytes}`);
        continue;
      }
      if (this.rndis.state !== 'initialized') {
        ok = false;
        continue;
      }
      const frame = buf.subarray(pk.frameOffset, pk.frameOffset + pk.frameLength);
      if (pk.checksumInfo !== undefined) {
        const refused = applyTransmitChecksums(frame, pk.checksumInfo);
        if (refused) {
          ok = false;
          this.stats.transmitErrors++;
          this.note(refused);
          continue;
        }
        if (pk.checksumInfo & 0x1c) this.stats.checksumsOffloaded++;
      }
      this.stats.framesTransmitted++;
      if (channel !== 0) this.stats.framesTransmittedOnSubChannels++;
      this.opts.onTransmit(frame, pk.vlanId);
    }
    complete(ok ? NvspStatus.Success : NvspStatus.Fail);
  }

  /** An RNDIS completion or indication in a reserved slot (channel_type control). */
  private sendControl(message: Uint8Array): void {
    const r = this.receive;
    const slot = r?.slots.takeControl();
    if (!r || slot === undefined) {
      this.stats.controlDropped++;
      return;
    }
    r.buffer.write(slot * r.subAllocSize, message.subarray(0, Math.min(message.length, r.subAllocSize)));
    const header = encodeTransferPageHeader({
      transferPageSetId: r.id,
      senderOwnsSet: false,
      ranges: [{ byteCount: message.length, byteOffset: slot * r.subAllocSize }],
    });
    if (!this.opts.sink.sendTransferPages(BigInt(slot), header, encodeRndisPacketForReceive(this.msgSize, RndisChannelType.Control))) {
      r.slots.giveBack(slot);
      this.stats.controlDropped++;
    }
  }

  /** The guest completed a receive packet; on the channel it went out on, or it does not count. */
  private guestCompletion(p: NetVspIncoming, channel: number): void {
    const r = this.receive;
    const id = p.transactionId;
    if (!r || id >= BigInt(r.slots.count) || this.slotChannel[Number(id)] !== channel || !r.slots.complete(Number(id))) this.stats.badCompletions++;
  }

  private emptyCompletion(p: NetVspIncoming): void {
    // OpenVMM sends an empty completion when one is requested (the UEFI client expects it).
    if (p.completionRequested) this.opts.sink.complete(p.transactionId, this.one[0]!);
  }

  private reply(p: NetVspIncoming, payload: Uint8Array): void {
    if (p.completionRequested) this.opts.sink.complete(p.transactionId, payload);
  }

  private refuse(p: NetVspIncoming, why: string, channel = 0): void {
    this.note(why);
    this.stats.refused++;
    if (p.completionRequested) this.sinkOf(channel).complete(p.transactionId, encodeNvsp(this.msgSize, T.None, NvspStatus.Fail));
  }

  private note(why: string): void {
    this.lastError = why;
  }
}

export { NETVSC_RECEIVE_BUFFER_ID };

function hexMac(m: Uint8Array): string {
  return [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
