/**
 * RNDIS messages as NetVSC carries them (MS-RNDIS,
 * Linux include/linux/rndis.h, OpenVMM netvsp/src/rndisprot.rs). Offsets inside PACKET_MSG count
 * from byte 8 (the DataOffset field); in QUERY/SET and their completions from RequestId (byte 8).
 */
export const RndisMessageType = {
  Packet: 0x00000001,
  Initialize: 0x00000002,
  Halt: 0x00000003,
  Query: 0x00000004,
  Set: 0x00000005,
  Reset: 0x00000006,
  IndicateStatus: 0x00000007,
  KeepAlive: 0x00000008,
  InitializeComplete: 0x80000002,
  QueryComplete: 0x80000004,
  SetComplete: 0x80000005,
  ResetComplete: 0x80000006,
  KeepAliveComplete: 0x80000008,
} as const;

/** NDIS_STATUS_* values used here. */
export const NdisStatus = {
  Success: 0x00000000,
  MediaConnect: 0x4001000b,
  MediaDisconnect: 0x4001000c,
  Failure: 0xc0000001,
  NotSupported: 0xc00000bb,
  InvalidLength: 0xc0010014,
  InvalidData: 0xc0010015,
  BufferTooShort: 0xc0010016,
} as const;

export const Oid = {
  GenSupportedList: 0x00010101,
  GenHardwareStatus: 0x00010102,
  GenMediaSupported: 0x00010103,
  GenMediaInUse: 0x00010104,
  GenMaximumLookahead: 0x00010105,
  GenMaximumFrameSize: 0x00010106,
  GenLinkSpeed: 0x00010107,
  GenTransmitBlockSize: 0x0001010a,
  GenReceiveBlockSize: 0x0001010b,
  GenVendorId: 0x0001010c,
  GenVendorDescription: 0x0001010d,
  GenCurrentPacketFilter: 0x0001010e,
  GenCurrentLookahead: 0x0001010f,
  GenMaximumTotalSize: 0x00010111,
  GenMacOptions: 0x00010113,
  GenMediaConnectStatus: 0x00010114,
  GenMaximumSendPackets: 0x00010115,
  GenNetworkLayerAddresses: 0x00010118,
  GenReceiveScaleCapabilities: 0x00010203,
  GenReceiveScaleParameters: 0x00010204,
  GenRndisConfigParameter: 0x0001021b,
  GenFriendlyName: 0x00020216,
  P8023PermanentAddress: 0x01010101,
  P8023CurrentAddress: 0x01010102,
  P8023MulticastList: 0x01010103,
  P8023MaximumListSize: 0x01010104,
  TcpOffloadParameters: 0xfc01020c,
  TcpOffloadHardwareCapabilities: 0xfc01020d,
} as const;

/** RNDIS header sizes and fixed layouts (MS-RNDIS; Linux include/linux/rndis.h). */
export const RNDIS_HEADER_BYTES = 8;
export const RNDIS_PACKET_HEADER_BYTES = 44;
/** Smallest DataOffset / PerPacketInfoOffset (FreeBSD RNDIS_PACKET_MSG_OFFSET_MIN). */
export const RNDIS_PACKET_OFFSET_MIN = 36;
export const PPI_HEADER_BYTES = 12;
export const PpiType = { Checksum: 0, Vlan: 6 } as const;

export class RndisError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RndisError';
  }
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** One REMOTE_NDIS_PACKET_MSG found in a guest buffer: where its frame lies and its VLAN PPI, if any. */
export interface RndisPacket {
  frameOffset: number;
  frameLength: number;
  /** 802.1Q VLAN id from the VLAN PPI (bits 15:4 of its u32), when present. */
  vlanId?: number;
  /** The TCPIP_CHKSUM_INFO PPI's u32 (what the guest asks the host to compute), when present. */
  checksumInfo?: number;
}

/**
 * Walks the PACKET_MSGs of one guest transmission (several may follow each other, each
 * MessageLength long, MS-RNDIS REMOTE_NDIS_PACKET_MSG) and checks every length and offset against the buffer
 * before anything is used: DataLength > 0, data and PPIs inside the message, no OOB data, VcHandle 0.
 */
export function parseRndisPackets(buf: Uint8Array, maxPackets: number): RndisPacket[] {
  const out: RndisPacket[] = [];
  const v = dv(buf);
  let at = 0;
  while (at < buf.length) {
    if (out.length === maxPackets) throw new RndisError(`more than ${maxPackets} packets in one message`);
    if (buf.length - at < RNDIS_PACKET_HEADER_BYTES) throw new RndisError(`${buf.length - at} bytes at ${at} cannot hold a PACKET_MSG header`);
    const type = v.getUint32(at, true);
    const len = v.getUint32(at + 4, true);
    if (type !== RndisMessageType.Packet) throw new RndisError(`message type 0x${type.toString(16)} after a PACKET_MSG`);
    if (len < RNDIS_PACKET_HEADER_BYTES || len > buf.length - at) throw new RndisError(`MessageLength ${len} at ${at} is outside 44..${buf.length - at}`);
    const dataOffset = v.getUint32(at + 8, true);
    const dataLength = v.getUint32(at + 12, true);
    const oobLength = v.getUint32(at + 20, true);
    const ppiOffset = v.getUint32(at + 28, true);
    const ppiLength = v.getUint32(at + 32, true);
    const vcHandle = v.getUint32(at + 36, true);
    const room = len - RNDIS_HEADER_BYTES; // offsets count from byte 8
    if (oobLength !== 0) throw new RndisError('out-of-band data is not supported');
    if (vcHandle !== 0) throw new RndisError(`VcHandle ${vcHandle} is not 0`);
    if (dataLength === 0) throw new RndisError('DataLength 0');
    if (dataOffset < RNDIS_PACKET_OFFSET_MIN || dataOffset > room || dataLength > room - dataOffset) {
      throw new RndisError(`data ${dataOffset}+${dataLength} is outside the ${len}-byte message`);
    }
    const pkt: RndisPacket = { frameOffset: at + RNDIS_HEADER_BYTES + dataOffset, frameLength: dataLength };
    if (ppiLength !== 0) {
      if (ppiOffset < RNDIS_PACKET_OFFSET_MIN || ppiOffset > room || ppiLength > room - ppiOffset)
        throw new RndisError(`PPIs ${ppiOffset}+${ppiLength} are outside the message`);
      let p = at + RNDIS_HEADER_BYTES + ppiOffset;
      const end = p + ppiLength;
      while (p < end) {
        if (end - p < PPI_HEADER_BYTES) throw new RndisError('truncated PPI record');
        const size = v.getUint32(p, true);
        const ppiType = v.getUint32(p + 4, true);
        const valueOffset = v.getUint32(p + 8, true);
        if (size < PPI_HEADER_BYTES || size > end - p || size % 4 !== 0) throw new RndisError(`PPI size ${size} is invalid`);
        if (ppiType === PpiType.Vlan) {
          if (valueOffset < PPI_HEADER_BYTES || valueOffset + 4 > size) throw new RndisError('VLAN PPI value is outside its record');
          pkt.vlanId = (v.getUint32(p + valueOffset, true) >>> 4) & 0xfff;
        } else if (ppiType === PpiType.Checksum) {
          if (valueOffset < PPI_HEADER_BYTES || valueOffset + 4 > size) throw new RndisError('checksum PPI value is outside its record');
          pkt.checksumInfo = v.getUint32(p + valueOffset, true);
        }
        p += size;
      }
    }
    out.push(pkt);
    at += len;
  }
  if (out.length === 0) throw new RndisError('empty RNDIS data');
  return out;
}

/**
 * Writes a receive PACKET_MSG in OpenVMM's layout (netvsp rndisprot.rs): header at 0, a checksum PPI (nothing
 * claimed) at 44, the frame at 256 (DataOffset 248). MessageLength = `messageLength` (the
 * sub-allocation size). `dst` must hold 256 + frame bytes.
 */
export function writeReceivePacket(dst: Uint8Array, frame: Uint8Array, messageLength: number): void {
  const v = dv(dst);
  dst.fill(0, 0, 256);
  v.setUint32(0, RndisMessageType.Packet, true);
  v.setUint32(4, messageLength, true);
  v.setUint32(8, 256 - RNDIS_HEADER_BYTES, true);
  v.setUint32(12, frame.length, true);
  v.setUint32(28, RNDIS_PACKET_OFFSET_MIN, true);
  v.setUint32(32, 16, true);
  v.setUint32(44, 16, true); // PPI size
  v.setUint32(48, PpiType.Checksum, true);
  v.setUint32(52, PPI_HEADER_BYTES, true);
  dst.set(frame, 256);
}

/** A control message from the guest: its type, request id and the bytes (already a private copy). */
export interface RndisControl {
  type: number;
  requestId: number;
  bytes: Uint8Array;
}

export function decodeRndisControl(bytes: Uint8Array): RndisControl {
  if (bytes.length < 12) throw new RndisError(`control message of ${bytes.length} bytes`);
  const v = dv(bytes);
  const type = v.getUint32(0, true);
  const len = v.getUint32(4, true);
  if (len < 12 || len > bytes.length) throw new RndisError(`MessageLength ${len} is outside 12..${bytes.length}`);
  return { type, requestId: v.getUint32(8, true), bytes: bytes.subarray(0, len) };
}

/** The information buffer of a QUERY or SET: InformationBufferOffset counts from byte 8. */
export function informationBuffer(msg: RndisControl): { oid: number; data: Uint8Array } {
  if (msg.bytes.length < 28) throw new RndisError(`QUERY/SET of ${msg.bytes.length} bytes`);
  const v = dv(msg.bytes);
  const oid = v.getUint32(12, true);
  const length = v.getUint32(16, true);
  const offset = v.getUint32(20, true);
  if (length === 0) return { oid, data: new Uint8Array(0) };
  const start = RNDIS_HEADER_BYTES + offset;
  if (offset < 20 || start > msg.bytes.length || length > msg.bytes.length - start)
    throw new RndisError(`information buffer ${offset}+${length} is outside the message`);
  return { oid, data: msg.bytes.subarray(start, start + length) };
}

function message(type: number, length: number): { bytes: Uint8Array; v: DataView } {
  const bytes = new Uint8Array(length);
  const v = dv(bytes);
  v.setUint32(0, type, true);
  v.setUint32(4, length, true);
  return { bytes, v };
}

/** INITIALIZE_CMPLT (MS-RNDIS) with OpenVMM's values: 1.0, connectionless, 802.3, 8 packets, 0xEFFFFFFF, alignment 2^3. */
export function encodeInitializeComplete(requestId: number, status: number): Uint8Array {
  const { bytes, v } = message(RndisMessageType.InitializeComplete, 52);
  v.setUint32(8, requestId, true);
  v.setUint32(12, status, true);
  v.setUint32(16, 1, true);
  v.setUint32(20, 0, true);
  v.setUint32(24, 1, true);
  v.setUint32(28, 0, true);
  v.setUint32(32, 8, true);
  v.setUint32(36, 0xefffffff, true);
  v.setUint32(40, 3, true);
  return bytes;
}

/** QUERY_CMPLT: data at @24 (offset 16); a failure carries no data but still offset 16 (Linux checks it). */
export function encodeQueryComplete(requestId: number, status: number, data: Uint8Array): Uint8Array {
  const { bytes, v } = message(RndisMessageType.QueryComplete, 24 + data.length);
  v.setUint32(8, requestId, true);
  v.setUint32(12, status, true);
  v.setUint32(16, data.length, true);
  v.setUint32(20, 16, true);
  bytes.set(data, 24);
  return bytes;
}

export function encodeSetComplete(requestId: number, status: number): Uint8Array {
  const { bytes, v } = message(RndisMessageType.SetComplete, 16);
  v.setUint32(8, requestId, true);
  v.setUint32(12, status, true);
  return bytes;
}

export function encodeKeepAliveComplete(requestId: number, status: number): Uint8Array {
  const { bytes, v } = message(RndisMessageType.KeepAliveComplete, 16);
  v.setUint32(8, requestId, true);
  v.setUint32(12, status, true);
  return bytes;
}

/** INDICATE_STATUS_MSG without payload (MEDIA_CONNECT / MEDIA_DISCONNECT, as OpenVMM sends them). */
export function encodeIndicateStatus(status: number): Uint8Array {
  const { bytes, v } = message(RndisMessageType.IndicateStatus, 20);
  v.setUint32(8, status, true);
  return bytes;
}
