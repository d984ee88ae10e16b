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
