/**
 * NVSP, the network VSP protocol on the netvsc channel (FreeBSD hn_nvs.c;
 * Linux drivers/net/hyperv/hyperv_net.h, OpenVMM vm/devices/net/netvsp/src/protocol.rs).
 * Every message is a u32 msg_type @0 and a type-specific body, little-endian.
 */

import { NetvscInterface } from '../../../abi/vmbus-channel.ts';
import { guidFromWords } from '../../../vmbus/protocol/guid.ts';

/** HV_NIC_GUID (Linux include/linux/hyperv.h). */
export const NETVSP_INTERFACE_GUID = guidFromWords(NetvscInterface);

/** NVSP_PROTOCOL_VERSION_* (hyperv_net.h). */
export const NvspVersion = { V1: 0x00000002, V2: 0x00030002, V4: 0x00040000, V5: 0x00050000, V6: 0x00060000, V61: 0x00060001 } as const;
/** What this host accepts, newest first (INIT must name one of these exactly, as OpenVMM checks). */
export const SUPPORTED_NVSP_VERSIONS: readonly number[] = [NvspVersion.V61, NvspVersion.V6, NvspVersion.V5, NvspVersion.V4, NvspVersion.V2, NvspVersion.V1];

export const NvspMessageType = {
  None: 0,
  Init: 1,
  InitComplete: 2,
  SendNdisVersion: 100,
  SendReceiveBuffer: 101,
  SendReceiveBufferComplete: 102,
  RevokeReceiveBuffer: 103,
  SendSendBuffer: 104,
  SendSendBufferComplete: 105,
  RevokeSendBuffer: 106,
  SendRndisPacket: 107,
  SendRndisPacketComplete: 108,
  SendNdisConfig: 125,
  SendVfAssociation: 128,
  SwitchDataPath: 129,
  OidQueryEx: 131,
  OidQueryExComplete: 132,
  Subchannel: 133,
  SendIndirectionTable: 134,
} as const;

/** Highest message type each version allows (OpenVMM protocol.rs). */
export function maxMessageTypeFor(version: number): number {
  if (version >= NvspVersion.V61) return 136;
  if (version >= NvspVersion.V5) return 134;
  if (version >= NvspVersion.V4) return 130;
  if (version >= NvspVersion.V2) return 127;
  return 108;
}

/** NVSP_STAT_* (hyperv_net.h). */
export const NvspStatus = {
  None: 0,
  Success: 1,
  Fail: 2,
  ProtocolTooNew: 3,
  ProtocolTooOld: 4,
  InvalidRndisPacket: 5,
  Busy: 6,
  ProtocolUnsupported: 7,
} as const;

/** NVSP SEND_RNDIS_PKT channel_type: RMC_DATA 0, RMC_CONTROL 1. */
export const RndisChannelType = { Data: 0, Control: 1 } as const;
/** send_buf_section_index meaning "not in the send buffer". */
export const NO_SEND_SECTION = 0xffffffff;

/**
 * Host messages are padded as OpenVMM does: 32 bytes below NVSP 6.1 (28 rounded to 8), 40 from
 * 6.1 (Linux's completion parser needs ≥ 28 bytes for INIT_COMPLETE and SEND_RECV_BUF_COMPLETE).
 */
export function nvspMessageSize(version: number): number {
  return version >= NvspVersion.V61 ? 40 : 32;
}

/** Linux's and FreeBSD's receive-buffer id (NETVSC_RECEIVE_BUFFER_ID); echoed as the transfer-page set id. */
export const NETVSC_RECEIVE_BUFFER_ID = 0xcafe;

/** Host-chosen buffer geometry (OpenVMM netvsp: 256 + MTU + 36, 16 reserved; sections 6144). */
export const RECEIVE_HEADER_ROOM = 256;
export const RECEIVE_TAIL_UNUSABLE = 36;
export const RESERVED_CONTROL_SUBALLOCS = 16;
export const SEND_SECTION_SIZE = 6144;
/** Frames per transfer-page packet (OpenVMM NVSP_MAX_PACKETS_PER_RECEIVE). */
export const MAX_FRAMES_PER_RECEIVE_PACKET = 375;

export class NvspError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NvspError';
  }
}

export type NvspMessage =
  | { type: typeof NvspMessageType.Init; minVersion: number; maxVersion: number }
  | { type: typeof NvspMessageType.SendNdisVersion; major: number; minor: number }
  | { type: typeof NvspMessageType.SendNdisConfig; mtu: number; capabilities: bigint }
  | { type: typeof NvspMessageType.SendReceiveBuffer | typeof NvspMessageType.SendSendBuffer; gpadlHandle: number; id: number }
  | { type: typeof NvspMessageType.RevokeReceiveBuffer | typeof NvspMessageType.RevokeSendBuffer; id: number }
  | { type: typeof NvspMessageType.SendRndisPacket; channelType: number; sectionIndex: number; sectionSize: number }
  | { type: typeof NvspMessageType.SendRndisPacketComplete; status: number }
  | { type: typeof NvspMessageType.Subchannel; operation: number; count: number }
  /** Any other type (its number in `code`): handled by type code, or refused. */
  | { type: typeof NvspMessageType.None; code: number };

/** Body length each guest message needs (type included). Shorter is malformed. */
const MIN_LENGTH: Record<number, number> = { 1: 12, 100: 12, 101: 10, 103: 6, 104: 10, 106: 6, 107: 16, 108: 8, 125: 20, 133: 12 };

/** Decodes a guest → host NVSP message; throws NvspError on one too short for its type. */
export function decodeNvsp(bytes: Uint8Array): NvspMessage {
  if (bytes.length < 4) throw new NvspError(`NVSP message of ${bytes.length} bytes has no type`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = dv.getUint32(0, true);
  const need = MIN_LENGTH[type];
  if (need !== undefined && bytes.length < need) throw new NvspError(`NVSP message type ${type} of ${bytes.length} bytes is shorter than ${need}`);
  const u32 = (o: number) => dv.getUint32(o, true);
  switch (type) {
    case NvspMessageType.Init:
      return { type, minVersion: u32(4), maxVersion: u32(8) };
    case NvspMessageType.SendNdisVersion:
      return { type, major: u32(4), minor: u32(8) };
    case NvspMessageType.SendNdisConfig:
      return { type, mtu: u32(4), capabilities: dv.getBigUint64(12, true) };
    case NvspMessageType.SendReceiveBuffer:
    case NvspMessageType.SendSendBuffer:
      return { type, gpadlHandle: u32(4), id: dv.getUint16(8, true) };
    case NvspMessageType.RevokeReceiveBuffer:
    case NvspMessageType.RevokeSendBuffer:
      return { type, id: dv.getUint16(4, true) };
    case NvspMessageType.SendRndisPacket:
      return { type, channelType: u32(4), sectionIndex: u32(8), sectionSize: u32(12) };
    case NvspMessageType.SendRndisPacketComplete:
      return { type, status: u32(4) };
    case NvspMessageType.Subchannel:
      return { type, operation: u32(4), count: u32(8) };
    default:
      return { type: NvspMessageType.None, code: type };
  }
}

/** A host message: the type and u32 fields from @4, zero-padded to `size`. */
export function encodeNvsp(size: number, type: number, ...fields: number[]): Uint8Array {
  const bytes = new Uint8Array(Math.max(size, 4 + 4 * fields.length));
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, type, true);
  fields.forEach((v, i) => dv.setUint32(4 + 4 * i, v >>> 0, true));
  return bytes;
}

/** INIT_COMPLETE: deprecated version field (OpenVMM: 0xFFFFFFFF, 2 for v1), max_mdl_chain_len 34, status. */
export function encodeInitComplete(size: number, version: number, status: number): Uint8Array {
  return encodeNvsp(size, NvspMessageType.InitComplete, version === NvspVersion.V1 && status === NvspStatus.Success ? 2 : 0xffffffff, 34, status);
}

/** SEND_RECV_BUF_COMPLETE with one section {offset 0, sub_alloc_size, count, end}. */
export function encodeReceiveBufferComplete(size: number, status: number, subAllocSize: number, count: number): Uint8Array {
  if (status !== NvspStatus.Success) return encodeNvsp(size, NvspMessageType.SendReceiveBufferComplete, status, 0);
  return encodeNvsp(size, NvspMessageType.SendReceiveBufferComplete, status, 1, 0, subAllocSize, count, subAllocSize * count);
}

export function encodeSendBufferComplete(size: number, status: number, sectionSize: number): Uint8Array {
  return encodeNvsp(size, NvspMessageType.SendSendBufferComplete, status, status === NvspStatus.Success ? sectionSize : 0);
}

export function encodeRndisPacketComplete(size: number, status: number): Uint8Array {
  return encodeNvsp(size, NvspMessageType.SendRndisPacketComplete, status);
}

/** The payload of a host → guest transfer-page packet: SEND_RNDIS_PKT {channel_type, 0xFFFFFFFF, 0}. */
export function encodeRndisPacketForReceive(size: number, channelType: number): Uint8Array {
  return encodeNvsp(size, NvspMessageType.SendRndisPacket, channelType, NO_SEND_SECTION, 0);
}

/** NVSP_SUBCHANNEL_* (hyperv_net.h): the only operation a guest sends is ALLOCATE. */
export const SubchannelOperation = { None: 0, Allocate: 1 } as const;
/** Channels per NIC at most, the primary included (Linux VRSS_CHANNEL_MAX, OpenVMM's queue limit). */
export const MAX_NETVSP_CHANNELS = 64;
/** Entries of the send indirection table (Linux VRSS_SEND_TAB_SIZE; Linux refuses any other count). */
export const SEND_INDIRECTION_ENTRIES = 16;

/** SUBCHANNEL response (the request's number, 133): status, sub-channels allocated. */
export function encodeSubchannelComplete(size: number, status: number, count: number): Uint8Array {
  return encodeNvsp(size, NvspMessageType.Subchannel, status, count);
}

/**
 * SEND_INDIRECTION_TABLE as OpenVMM sends it: {count 16, offset 12} then 16 u32 channel indices
 * (76 bytes, below the 104 at which Linux reads the table at @40 instead of the offset).
 */
export function encodeSendIndirectionTable(channels: number): Uint8Array {
  const table = Array.from({ length: SEND_INDIRECTION_ENTRIES }, (_, i) => i % channels);
  return encodeNvsp(0, NvspMessageType.SendIndirectionTable, SEND_INDIRECTION_ENTRIES, 12, ...table);
}
