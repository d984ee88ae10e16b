import {
  NdisStatus,
  Oid,
  RndisError,
  RndisMessageType,
  decodeRndisControl,
  encodeInitializeComplete,
  encodeKeepAliveComplete,
  encodeQueryComplete,
  encodeSetComplete,
  informationBuffer,
} from './rndis-protocol.ts';
import { type RssConfig, decodeRssParameters, encodeRssCapabilities } from './rss-parameters.ts';
import { encodeOffloadCapabilities } from './checksum-offload.ts';

/** The NDIS packet-filter bits the switch understands (OID_GEN_CURRENT_PACKET_FILTER). */
export const KNOWN_PACKET_FILTER_BITS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20;

export interface RndisDeviceOptions {
  mac: Uint8Array;
  /** Largest frame including the 14-byte header (1514, or up to 9014 when jumbo is allowed). */
  maxFrameBytes: number;
  /** Link speed reported in OID_GEN_LINK_SPEED, bit/s (default 10 Gbit/s). */
  linkSpeedBps?: number;
  /** Receive queues (channels) the host can run, in OID_GEN_RECEIVE_SCALE_CAPABILITIES (default 1). */
  maxQueues?: number;
}

/**
 * The RNDIS "device" side of NetVSP's control path: INITIALIZE, QUERY and SET of the OIDs Linux
 * (rndis_filter.c) and FreeBSD (hn_rndis.c) use, KEEPALIVE and HALT. Unknown OIDs get
 * NOT_SUPPORTED with no data and offset 16, as OpenVMM answers. The packet filter it keeps
 * gates receive: nothing reaches the guest while it is 0.
 */
export class RndisDevice {
  state: 'uninitialized' | 'initialized' | 'halted' = 'uninitialized';
  packetFilter = 0;
  linkUp = true;
  /** Channels the guest has (1 + the sub-channels granted): the indirection table's bound. */
  channels = 1;
  /** RSS as the guest set it (OID_GEN_RECEIVE_SCALE_PARAMETERS); null: every frame to the primary channel. */
  rss: RssConfig | null = null;
  /** Why the last SET was refused (for the channel's diagnostics), '' after reading. */
  refusal = '';
  readonly maxQueues: number;
  readonly mac: Uint8Array;
  readonly maxFrameBytes: number;
  private readonly linkSpeedBps: number;

  constructor(opts: RndisDeviceOptions) {
    this.mac = opts.mac.slice();
    this.maxFrameBytes = opts.maxFrameBytes;
    this.linkSpeedBps = opts.linkSpeedBps ?? 10_000_000_000;
    this.maxQueues = opts.maxQueues ?? 1;
  }

  /**
   * One control message (a private copy). Returns the completion to deliver, or null for messages
   * without one (HALT). Throws RndisError for a message too malformed to answer.
   */
  control(bytes: Uint8Array): Uint8Array | null {
    const msg = decodeRndisControl(bytes);
    switch (msg.type) {
      case RndisMessageType.Initialize:
        if (msg.bytes.length < 24) throw new RndisError('INITIALIZE shorter than 24 bytes');
        this.state = 'initialized';
        return encodeInitializeComplete(msg.requestId, NdisStatus.Success);
      case RndisMessageType.Halt:
        this.state = 'halted';
        this.packetFilter = 0;
        this.rss = null;
        return null;
      case RndisMessageType.KeepAlive:
        return encodeKeepAliveComplete(msg.requestId, NdisStatus.Success);
      case RndisMessageType.Query: {
        const { oid } = informationBuffer(msg);
        const data = this.query(oid);
        return data
          ? encodeQueryComplete(msg.requestId, NdisStatus.Success, data)
          : encodeQueryComplete(msg.requestId, NdisStatus.NotSupported, new Uint8Array(0));
      }
      case RndisMessageType.Set: {
        const { oid, data } = informationBuffer(msg);
        return encodeSetComplete(msg.requestId, this.set(oid, data));
      }
      default:
        throw new RndisError(`RNDIS message type 0x${msg.type.toString(16)} is not supported`);
    }
  }

  private query(oid: number): Uint8Array | null {
    const mtu = this.maxFrameBytes - 14;
    switch (oid) {
      case Oid.GenSupportedList:
        return u32s(...SUPPORTED_OIDS);
      case Oid.GenHardwareStatus:
        return u32s(0);
      case Oid.GenMediaSupported:
      case Oid.GenMediaInUse:
        return u32s(0);
      case Oid.GenMaximumLookahead:
      case Oid.GenCurrentLookahead:
      case Oid.GenMaximumFrameSize:
        return u32s(mtu);
      case Oid.GenMaximumTotalSize:
      case Oid.GenTransmitBlockSize:
      case Oid.GenReceiveBlockSize:
        return u32s(this.maxFrameBytes);
      case Oid.GenLinkSpeed:
        return u32s(Math.floor(this.linkSpeedBps / 100));
      case Oid.GenVendorId:
        return u32s(0x0000155d);
      case Oid.GenVendorDescription:
        return new TextEncoder().encode('tsvisor netvsp\0');
      case Oid.GenCurrentPacketFilter:
        return u32s(this.packetFilter);
      case Oid.GenMacOptions:
        return u32s(0x24d);
      case Oid.GenMediaConnectStatus:
        return u32s(this.linkUp ? 0 : 1);
      case Oid.GenMaximumSendPackets:
        return u32s(0xffffffff);
      case Oid.P8023PermanentAddress:
      case Oid.P8023CurrentAddress:
        return this.mac.slice();
      case Oid.P8023MaximumListSize:
        return u32s(0);
      case Oid.GenReceiveScaleCapabilities:
        return encodeRssCapabilities(this.maxQueues);
      case Oid.TcpOffloadHardwareCapabilities:
        return encodeOffloadCapabilities();
      default:
        return null;
    }
  }

  private set(oid: number, data: Uint8Array): number {
    switch (oid) {
      case Oid.GenCurrentPacketFilter: {
        if (data.length < 4) return NdisStatus.InvalidLength;
        const v = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
        this.packetFilter = v & KNOWN_PACKET_FILTER_BITS;
        return NdisStatus.Success;
      }
      case Oid.GenReceiveScaleParameters: {
        const r = decodeRssParameters(data, this.channels, this.rss);
        if ('why' in r) {
          this.refusal = `RSS parameters: ${r.why}`;
          return r.status;
        }
        this.rss = r.rss;
        return NdisStatus.Success;
      }
      case Oid.TcpOffloadParameters:
      // The host computes what each packet's checksum PPI asks for and claims nothing on receive,
      // so whatever the guest enables or disables holds: accepting the parameters is truthful.
      case Oid.GenNetworkLayerAddresses:
        return NdisStatus.Success;
      default:
        return NdisStatus.NotSupported;
    }
  }
}

const SUPPORTED_OIDS = [
  Oid.GenSupportedList,
  Oid.GenHardwareStatus,
  Oid.GenMediaSupported,
  Oid.GenMediaInUse,
  Oid.GenMaximumLookahead,
  Oid.GenMaximumFrameSize,
  Oid.GenLinkSpeed,
  Oid.GenTransmitBlockSize,
  Oid.GenReceiveBlockSize,
  Oid.GenVendorId,
  Oid.GenVendorDescription,
  Oid.GenCurrentPacketFilter,
  Oid.GenCurrentLookahead,
  Oid.GenMaximumTotalSize,
  Oid.GenMacOptions,
  Oid.GenMediaConnectStatus,
  Oid.GenMaximumSendPackets,
  Oid.GenReceiveScaleCapabilities,
  Oid.GenReceiveScaleParameters,
  Oid.P8023PermanentAddress,
  Oid.P8023CurrentAddress,
  Oid.P8023MaximumListSize,
];

function u32s(...values: number[]): Uint8Array {
  const b = new Uint8Array(4 * values.length);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setUint32(4 * i, x >>> 0, true));
  return b;
}
