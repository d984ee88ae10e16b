// NVSP and RNDIS as the guest's netvsc speaks them (Linux drivers/net/hyperv/hyperv_net.h and
// rndis_filter.c, include/linux/rndis.h; MS-RNDIS). The host's copy
// of the same wire format is root-partition/vsp/netvsp/ (nvsp-protocol.ts, rndis-protocol.ts).
import { NetvscInterface } from "../../abi/vmbus-channel";

/** HV_NIC_GUID in wire layout (abi/vmbus-channel.ts). */
export const NETVSC_INTERFACE_TYPE: usize = memory.data<u32>([NetvscInterface.W0, NetvscInterface.W1, NetvscInterface.W2, NetvscInterface.W3]);

/** NVSP versions offered, newest first (Linux nvsp_protocol_version[] order). */
export const NVSP_VERSIONS: StaticArray<u32> = [0x00060001, 0x00060000, 0x00050000, 0x00040000, 0x00030002, 0x00000002];
export const NVSP_VERSION_2: u32 = 0x00030002;

// NVSP message types.
export const NVSP_MSG_INIT: u32 = 1;
export const NVSP_MSG_INIT_COMPLETE: u32 = 2;
export const NVSP_MSG_SEND_NDIS_VERSION: u32 = 100;
export const NVSP_MSG_SEND_RECV_BUF: u32 = 101;
export const NVSP_MSG_SEND_RECV_BUF_COMPLETE: u32 = 102;
export const NVSP_MSG_SEND_SEND_BUF: u32 = 104;
export const NVSP_MSG_SEND_SEND_BUF_COMPLETE: u32 = 105;
export const NVSP_MSG_SEND_RNDIS_PKT: u32 = 107;
export const NVSP_MSG_SEND_RNDIS_PKT_COMPLETE: u32 = 108;
export const NVSP_MSG_SEND_NDIS_CONFIG: u32 = 125;
export const NVSP_STAT_SUCCESS: u32 = 1;
/** sizeof(struct nvsp_message) from NVSP 6.1: what Linux sends for every message. */
export const NVSP_MESSAGE_SIZE: u32 = 40;
/** NETVSC_RECEIVE_BUFFER_ID: the host echoes it as the transfer-page set id. */
export const NETVSC_RECEIVE_BUFFER_ID: u32 = 0xcafe;
export const RMC_DATA: u32 = 0;
export const RMC_CONTROL: u32 = 1;

// RNDIS.
export const RNDIS_MSG_PACKET: u32 = 0x00000001;
export const RNDIS_MSG_INIT: u32 = 0x00000002;
export const RNDIS_MSG_QUERY: u32 = 0x00000004;
export const RNDIS_MSG_SET: u32 = 0x00000005;
export const RNDIS_MSG_INDICATE: u32 = 0x00000007;
export const RNDIS_MSG_COMPLETION_BIT: u32 = 0x80000000;
export const RNDIS_PACKET_HEADER: u32 = 44;
/** DataOffset of a PACKET_MSG the guest builds (counted from byte 8: the frame follows the 44-byte header). */
export const RNDIS_PACKET_DATA_OFFSET: u32 = 36;
export const RNDIS_STATUS_SUCCESS: u32 = 0;
export const RNDIS_STATUS_MEDIA_CONNECT: u32 = 0x4001000b;
export const RNDIS_STATUS_MEDIA_DISCONNECT: u32 = 0x4001000c;

export const OID_GEN_CURRENT_PACKET_FILTER: u32 = 0x0001010e;
export const OID_GEN_MEDIA_CONNECT_STATUS: u32 = 0x00010114;
/** The MTU the host agreed (frame size less the 14-byte header). */
export const OID_GEN_MAXIMUM_FRAME_SIZE: u32 = 0x00010106;
/** send_buf_section_index of a SEND_RNDIS_PKT whose RNDIS data is in GPA ranges, not a section. */
export const NVSP_NO_SEND_SECTION: u32 = 0xffffffff;
export const OID_802_3_PERMANENT_ADDRESS: u32 = 0x01010101;
/** NDIS_PACKET_TYPE_DIRECTED | ALL_MULTICAST | BROADCAST: Linux netvsc's normal filter. */
export const NETVSC_PACKET_FILTER: u32 = 0x0000000d;

/** Writes an NVSP message: the type and up to four u32 fields, zero-padded to NVSP_MESSAGE_SIZE. */
export function nvspMessage(dst: usize, type: u32, a: u32 = 0, b: u32 = 0, c: u32 = 0, d: u32 = 0): void {
  memory.fill(dst, 0, NVSP_MESSAGE_SIZE);
  store<u32>(dst, type);
  store<u32>(dst, a, 4);
  store<u32>(dst, b, 8);
  store<u32>(dst, c, 12);
  store<u32>(dst, d, 16);
}

/** REMOTE_NDIS_QUERY_MSG for `oid` without input (28 bytes). */
export function rndisQuery(dst: usize, requestId: u32, oid: u32): u32 {
  store<u32>(dst, RNDIS_MSG_QUERY);
  store<u32>(dst, 28, 4);
  store<u32>(dst, requestId, 8);
  store<u32>(dst, oid, 12);
  store<u32>(dst, 0, 16);
  store<u32>(dst, 20, 20); // InformationBufferOffset, from RequestId
  store<u32>(dst, 0, 24);
  return 28;
}

/** REMOTE_NDIS_SET_MSG of one u32 (32 bytes). */
export function rndisSetU32(dst: usize, requestId: u32, oid: u32, value: u32): u32 {
  store<u32>(dst, RNDIS_MSG_SET);
  store<u32>(dst, 32, 4);
  store<u32>(dst, requestId, 8);
  store<u32>(dst, oid, 12);
  store<u32>(dst, 4, 16);
  store<u32>(dst, 20, 20);
  store<u32>(dst, 0, 24);
  store<u32>(dst, value, 28);
  return 32;
}

/** REMOTE_NDIS_INITIALIZE_MSG: version 1.0, MaxTransferSize 0x4000 (Linux rndis_filter_init_device). */
export function rndisInitialize(dst: usize, requestId: u32): u32 {
  store<u32>(dst, RNDIS_MSG_INIT);
  store<u32>(dst, 24, 4);
  store<u32>(dst, requestId, 8);
  store<u32>(dst, 1, 12);
  store<u32>(dst, 0, 16);
  store<u32>(dst, 0x4000, 20);
  return 24;
}

/** A PACKET_MSG header for a frame of `length` bytes that follows it; returns the message length. */
export function rndisPacketHeader(dst: usize, length: u32): u32 {
  memory.fill(dst, 0, RNDIS_PACKET_HEADER);
  store<u32>(dst, RNDIS_MSG_PACKET);
  store<u32>(dst, RNDIS_PACKET_HEADER + length, 4);
  store<u32>(dst, RNDIS_PACKET_DATA_OFFSET, 8);
  store<u32>(dst, length, 12);
  return RNDIS_PACKET_HEADER + length;
}

// Transmit checksum offload (Linux rndis_filter.c rndis_netdev_set_hwcaps, netvsc_drv.c netvsc_xmit).
export const OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES: u32 = 0xfc01020d;
/** NDIS_OFFLOAD: object type, and the IPv4 transmit flag "UDP checksum" (IPv4 transmit flags at @8). */
export const NDIS_OBJECT_TYPE_OFFLOAD: u8 = 0xa7;
export const NDIS_OFFLOAD_IPV4_TX_UDP: u32 = 0x40;
/** TCPIP_CHKSUM_INFO transmit bits: is_ipv4, udp_checksum; the transport header offset in bits 25:16. */
export const NDIS_CSUM_IPV4: u32 = 0x1;
export const NDIS_CSUM_UDP: u32 = 0x8;
/** One PPI record holding a u32: size 16, type, value offset 12, value. */
export const RNDIS_PPI_U32_BYTES: u32 = 16;
const PPI_TYPE_CHECKSUM: u32 = 0;

/** REMOTE_NDIS_PACKET_MSG header with one checksum PPI asking for `info` (60 bytes), for a frame of `length`; returns the message length. */
export function rndisPacketHeaderWithChecksum(dst: usize, length: u32, info: u32): u32 {
  const header = RNDIS_PACKET_HEADER + RNDIS_PPI_U32_BYTES;
  memory.fill(dst, 0, header);
  store<u32>(dst, RNDIS_MSG_PACKET);
  store<u32>(dst, header + length, 4);
  store<u32>(dst, RNDIS_PACKET_DATA_OFFSET + RNDIS_PPI_U32_BYTES, 8);
  store<u32>(dst, length, 12);
  store<u32>(dst, RNDIS_PACKET_DATA_OFFSET, 28); // PerPacketInfoOffset, from byte 8: right after the header
  store<u32>(dst, RNDIS_PPI_U32_BYTES, 32);
  store<u32>(dst + RNDIS_PACKET_HEADER, RNDIS_PPI_U32_BYTES);
  store<u32>(dst + RNDIS_PACKET_HEADER, PPI_TYPE_CHECKSUM, 4);
  store<u32>(dst + RNDIS_PACKET_HEADER, 12, 8);
  store<u32>(dst + RNDIS_PACKET_HEADER, info, 12);
  return header + length;
}

// Sub-channels and RSS (Linux rndis_filter.c rndis_set_subchannel, rndis_set_rss_param_msg).
export const NVSP_VERSION_5: u32 = 0x00050000;
/** NVSP_MSG5_TYPE_SUBCHANNEL: request and response share the number. */
export const NVSP_MSG_SUBCHANNEL: u32 = 133;
export const NVSP_SUBCHANNEL_ALLOCATE: u32 = 1;
/** NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE: the host's send table, in-band on the primary. */
export const NVSP_MSG_SEND_INDIRECTION_TABLE: u32 = 134;
export const OID_GEN_RECEIVE_SCALE_CAPABILITIES: u32 = 0x00010203;
export const OID_GEN_RECEIVE_SCALE_PARAMETERS: u32 = 0x00010204;
/** Indirection entries this driver sets: 16 (a power of two, so the SET fits the 256-byte control buffer). */
export const RSS_TABLE_ENTRIES: u32 = 16;
/** NDIS_HASH_FUNC_TOEPLITZ | IPV4 | TCP_IPV4 | UDP_IPV4. */
export const RSS_HASH_INFO: u32 = 0x1 | 0x100 | 0x200 | 0x4000;
/** Linux netvsc_hash_key (the key of Microsoft's RSS verification examples). */
export const RSS_HASH_KEY: StaticArray<u8> = [
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
  0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/**
 * REMOTE_NDIS_SET_MSG of OID_GEN_RECEIVE_SCALE_PARAMETERS: NDIS_RECEIVE_SCALE_PARAMETERS rev 2
 * (40 bytes), the table of RSS_TABLE_ENTRIES u32 channel indices (entry i → i mod `channels`) at
 * @40, the 40-byte key after it; offsets from the structure, as Linux lays it out. Returns the length.
 */
export function rndisSetRssParameters(dst: usize, requestId: u32, channels: u32): u32 {
  const tableBytes = RSS_TABLE_ENTRIES * 4;
  const data: u32 = 40 + tableBytes + 40;
  store<u32>(dst, RNDIS_MSG_SET);
  store<u32>(dst, 28 + data, 4);
  store<u32>(dst, requestId, 8);
  store<u32>(dst, OID_GEN_RECEIVE_SCALE_PARAMETERS, 12);
  store<u32>(dst, data, 16);
  store<u32>(dst, 20, 20);
  store<u32>(dst, 0, 24);
  const p = dst + 28;
  memory.fill(p, 0, data);
  store<u8>(p, 0x89);
  store<u8>(p, 2, 1);
  store<u16>(p, 40, 2);
  store<u32>(p, RSS_HASH_INFO, 8);
  store<u16>(p, <u16>tableBytes, 12);
  store<u32>(p, 40, 16);
  store<u16>(p, 40, 20);
  store<u32>(p, 40 + tableBytes, 24);
  for (let i: u32 = 0; i < RSS_TABLE_ENTRIES; i++) store<u32>(p + 40 + (<usize>i << 2), i % channels);
  for (let i = 0; i < 40; i++) store<u8>(p + 40 + tableBytes + i, RSS_HASH_KEY[i]);
  return 28 + data;
}
