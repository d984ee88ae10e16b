/**
 * The vstor wire protocol spoken over a StorVSC/StorVSP VMBus channel: constants, layouts and
 * encode/decode. Behaviour lives in storvsp-channel.ts.
 *
 * Sources: Linux drivers/scsi/storvsc_drv.c (struct vstor_packet, struct vmscsi_request,
 * enum vstor_packet_operation, SRB_*) and OpenVMM vm/devices/storage/storvsp_protocol. All fields are little-endian and the
 * structs are packed.
 */

import { IdeInterface, StorvscInterface } from '../../../abi/vmbus-channel.ts';
import { guidFromWords } from '../../../vmbus/protocol/guid.ts';

/** Interface type GUIDs offered on VMBus (Linux HV_SCSI_GUID, HV_IDE_GUID). */
export const STORVSP_SCSI_INTERFACE_GUID = guidFromWords(StorvscInterface);
export const STORVSP_IDE_INTERFACE_GUID = guidFromWords(IdeInterface);

/** enum vstor_packet_operation (Linux storvsc_drv.c; 14 from OpenVMM). */
export const VstorOperation = {
  CompleteIo: 1,
  RemoveDevice: 2,
  ExecuteSrb: 3,
  ResetLun: 4,
  ResetAdapter: 5,
  ResetBus: 6,
  BeginInitialization: 7,
  EndInitialization: 8,
  QueryProtocolVersion: 9,
  QueryProperties: 10,
  EnumerateBus: 11,
  FchbaData: 12,
  CreateSubChannels: 13,
  EventNotification: 14,
} as const;
export type VstorOperation = (typeof VstorOperation)[keyof typeof VstorOperation];

/** vstor_packet.flags: REQUEST_COMPLETION_FLAG. */
export const REQUEST_COMPLETION_FLAG = 0x1;

/** VMSTOR_PROTO_VERSION(major, minor) = major << 8 | minor (Linux storvsc_drv.c). */
export const VmstorProtocolVersion = {
  Win6: 0x0200,
  Win7: 0x0402,
  Win8: 0x0501,
  Win8_1: 0x0600,
  Win10: 0x0602,
} as const;

/** Versions this host accepts, newest first (Linux offers WIN10, WIN8_1, WIN8). */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [
  VmstorProtocolVersion.Win10,
  VmstorProtocolVersion.Win8_1,
  VmstorProtocolVersion.Win8,
  VmstorProtocolVersion.Win7,
  VmstorProtocolVersion.Win6,
];

/** Host NTSTATUS values carried in vstor_packet.status (OpenVMM storvsp; ntstatus.h). */
export const NtStatus = {
  Success: 0x00000000,
  BufferOverflow: 0x80000005,
  DeviceBusy: 0x80000011,
  InvalidParameter: 0xc000000d,
  InvalidDeviceRequest: 0xc0000010,
  RevisionMismatch: 0xc0000059,
  DeviceDoesNotExist: 0xc00000c0,
  InvalidDeviceState: 0xc0000184,
  IoDeviceError: 0xc0000185,
} as const;

/** vstor_packet header: operation u32 @0, flags u32 @4, status u32 @8; the union starts @12. */
export const VSTOR_HEADER_SIZE = 12;
/** The union is `u8 buffer[0x34]`: a Win8+ vstor_packet is 64 bytes. */
export const VSTOR_UNION_SIZE = 0x34;
export const VSTOR_PACKET_SIZE = VSTOR_HEADER_SIZE + VSTOR_UNION_SIZE;

/** sizeof(struct vmscsi_request) since Win8; 0x24 before (no win8 extension). */
export const VMSCSI_REQUEST_SIZE = 0x34;
/** sizeof(struct vmscsi_win8_extension): what older Linux called vmscsi_size_delta. */
export const VMSCSI_WIN8_EXTENSION_SIZE = 0x10;
/** STORVSC_SENSE_BUFFER_SIZE (Win8+) and PRE_WIN8_STORVSC_SENSE_BUFFER_SIZE. */
export const SENSE_BUFFER_SIZE = 0x14;
export const PRE_WIN8_SENSE_BUFFER_SIZE = 0x12;
export const STORVSC_MAX_CMD_LEN = 0x10;

/** How much smaller vmscsi_request (and so vstor_packet) is for a pre-Win8 protocol version. */
export function vmscsiSizeDelta(version: number): number {
  return version < VmstorProtocolVersion.Win8 ? VMSCSI_WIN8_EXTENSION_SIZE : 0;
}
export function senseBufferSize(version: number): number {
  return version < VmstorProtocolVersion.Win8 ? PRE_WIN8_SENSE_BUFFER_SIZE : SENSE_BUFFER_SIZE;
}

/** vmscsi_request offsets, relative to the start of the vstor_packet (Linux struct vmscsi_request). */
export const VmscsiOffset = {
  length: 12,
  srbStatus: 14,
  scsiStatus: 15,
  portNumber: 16,
  pathId: 17,
  targetId: 18,
  lun: 19,
  cdbLength: 20,
  senseInfoLength: 21,
  dataIn: 22,
  reserved: 23,
  dataTransferLength: 24,
  cdb: 28,
  senseData: 28,
  reserve: 48,
  queueTag: 50,
  queueAction: 51,
  srbFlags: 52,
  timeOutValue: 56,
  queueSortKey: 60,
} as const;

/** vmscsi_request.data_in (enum storvsc_request_type: "matches Windows-end"). */
export const StorvscRequestType = { Write: 0, Read: 1, Unknown: 2 } as const;

/** SRB status codes; the two high bits are flags (Linux storvsc_drv.c, OpenVMM scsi_defs/srb.rs). */
export const SrbStatus = {
  Pending: 0x00,
  Success: 0x01,
  Aborted: 0x02,
  Error: 0x04,
  InvalidRequest: 0x06,
  SelectionTimeout: 0x0a,
  DataOverrun: 0x12,
  InvalidLun: 0x20,
  InternalError: 0x30,
} as const;
export const SRB_STATUS_AUTOSENSE_VALID = 0x80;
export const SRB_STATUS_QUEUE_FROZEN = 0x40;

/** vmscsi_request.srb_flags bits that Linux sets. */
export const SrbFlags = {
  QueueActionEnable: 0x2,
  DisableSynchTransfer: 0x8,
  DataIn: 0x40,
  DataOut: 0x80,
  NoQueueFreeze: 0x100,
} as const;

/** vmstorage_channel_properties (union @12): flags bit STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL. */
export const STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL = 0x1;

/** A typed protocol error: a malformed guest packet, never a host bug. */
export class StorVspProtocolError extends Error {
  constructor(
    readonly code: 'STORVSP_ERR_SHORT_PACKET' | 'STORVSP_ERR_BAD_FIELD',
    message: string,
  ) {
    super(message);
    this.name = 'StorVspProtocolError';
  }
}

export interface VstorHeader {
  operation: number;
  flags: number;
  status: number;
}

/** Decodes the 12-byte header; the union bytes are read by the operation-specific decoders. */
export function decodeVstorHeader(payload: Uint8Array): VstorHeader {
  if (payload.length < VSTOR_HEADER_SIZE) {
    throw new StorVspProtocolError('STORVSP_ERR_SHORT_PACKET', `vstor packet of ${payload.length} bytes is shorter than its 12-byte header`);
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { operation: dv.getUint32(0, true), flags: dv.getUint32(4, true), status: dv.getUint32(8, true) };
}

/** vmstorage_protocol_version: major_minor u16 @12, revision u16 @14. */
export function decodeProtocolVersion(payload: Uint8Array): { majorMinor: number; revision: number } {
  if (payload.length < VSTOR_HEADER_SIZE + 4) {
    throw new StorVspProtocolError('STORVSP_ERR_SHORT_PACKET', 'QUERY_PROTOCOL_VERSION without a version');
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { majorMinor: dv.getUint16(12, true), revision: dv.getUint16(14, true) };
}

/** CREATE_SUB_CHANNELS: sub_channel_count u16 @12. */
export function decodeSubChannelCount(payload: Uint8Array): number {
  if (payload.length < VSTOR_HEADER_SIZE + 2) {
    throw new StorVspProtocolError('STORVSP_ERR_SHORT_PACKET', 'CREATE_SUB_CHANNELS without a count');
  }
  return payload[12]! | (payload[13]! << 8);
}

export interface VmscsiRequest {
  length: number;
  srbStatus: number;
  scsiStatus: number;
  portNumber: number;
  pathId: number;
  targetId: number;
  lun: number;
  cdbLength: number;
  senseInfoLength: number;
  dataIn: number;
  reserved: number;
  dataTransferLength: number;
  /** Always 16 bytes (the cdb union member); only the first cdbLength are meaningful. */
  cdb: Uint8Array;
  /** Win8 extension; zero for pre-Win8 requests. */
  queueTag: number;
  queueAction: number;
  srbFlags: number;
  timeOutValue: number;
  queueSortKey: number;
}

/**
 * Decodes vmscsi_request from a vstor_packet. The caller passes a private copy of the packet, so
 * nothing read here can change afterwards. `sizeDelta` is vmscsiSizeDelta(negotiated version).
 */
export function decodeVmscsiRequest(payload: Uint8Array, sizeDelta: number): VmscsiRequest {
  const need = VSTOR_HEADER_SIZE + VMSCSI_REQUEST_SIZE - sizeDelta;
  if (payload.length < need) {
    throw new StorVspProtocolError('STORVSP_ERR_SHORT_PACKET', `EXECUTE_SRB packet of ${payload.length} bytes, need ${need}`);
  }
  // Field reads straight off the bytes, the CDB a view of the caller's private copy: this runs
  // once per request, with no allocation but the record itself.
  const o = VmscsiOffset;
  const win8 = sizeDelta === 0;
  return {
    length: payload[o.length]! | (payload[o.length + 1]! << 8),
    srbStatus: payload[o.srbStatus]!,
    scsiStatus: payload[o.scsiStatus]!,
    portNumber: payload[o.portNumber]!,
    pathId: payload[o.pathId]!,
    targetId: payload[o.targetId]!,
    lun: payload[o.lun]!,
    cdbLength: payload[o.cdbLength]!,
    senseInfoLength: payload[o.senseInfoLength]!,
    dataIn: payload[o.dataIn]!,
    reserved: payload[o.reserved]!,
    dataTransferLength: u32le(payload, o.dataTransferLength),
    cdb: payload.subarray(o.cdb, o.cdb + STORVSC_MAX_CMD_LEN),
    queueTag: win8 ? payload[o.queueTag]! : 0,
    queueAction: win8 ? payload[o.queueAction]! : 0,
    srbFlags: win8 ? u32le(payload, o.srbFlags) : 0,
    timeOutValue: win8 ? u32le(payload, o.timeOutValue) : 0,
    queueSortKey: win8 ? u32le(payload, o.queueSortKey) : 0,
  };
}

const u32le = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

function putU32le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

/** A vstor_packet of `size` bytes with the header filled in and the union zeroed. */
export function encodeVstorPacket(operation: number, status: number, size: number = VSTOR_PACKET_SIZE, flags = 0): Uint8Array {
  const out = new Uint8Array(Math.max(size, VSTOR_HEADER_SIZE));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, operation >>> 0, true);
  dv.setUint32(4, flags >>> 0, true);
  dv.setUint32(8, status >>> 0, true);
  return out;
}

export function encodeProtocolVersion(out: Uint8Array, majorMinor: number, revision = 0): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint16(12, majorMinor, true);
  dv.setUint16(14, revision, true);
}

export interface ChannelProperties {
  maxChannelCount: number;
  flags: number;
  maxTransferBytes: number;
}

/** vmstorage_channel_properties: reserved u32 @12, max_channel_cnt u16 @16, reserved1 u16 @18,
 * flags u32 @20, max_transfer_bytes u32 @24, reserved2 u64 @28. */
export const CHANNEL_PROPERTIES_END = VSTOR_HEADER_SIZE + 24;

export function encodeChannelProperties(out: Uint8Array, p: ChannelProperties): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint16(16, p.maxChannelCount, true);
  dv.setUint32(20, p.flags >>> 0, true);
  dv.setUint32(24, p.maxTransferBytes >>> 0, true);
}

export function decodeChannelProperties(payload: Uint8Array): ChannelProperties {
  if (payload.length < CHANNEL_PROPERTIES_END) {
    throw new StorVspProtocolError('STORVSP_ERR_SHORT_PACKET', 'channel properties truncated');
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { maxChannelCount: dv.getUint16(16, true), flags: dv.getUint32(20, true), maxTransferBytes: dv.getUint32(24, true) };
}

export interface SrbCompletion {
  srbStatus: number;
  scsiStatus: number;
  dataTransferLength: number;
  /** Fixed-format sense data, already truncated to what fits; empty when there is none. */
  sense: Uint8Array;
}

/**
 * COMPLETE_IO for an SRB: the request's vmscsi_request echoed (addressing, cdb_length, data_in,
 * Win8 extension) with srb_status, scsi_status, data_transfer_length, sense_info_length and the
 * sense data (which shares the cdb union) replaced, as Hyper-V answers (OpenVMM storvsp).
 */
export function encodeSrbCompletion(request: Uint8Array, size: number, ntStatus: number, c: SrbCompletion, into?: Uint8Array): Uint8Array {
  // `into` (≥ size bytes, reused by the caller for every request) saves an allocation per SRB.
  const out = into ? into.subarray(0, Math.max(size, VSTOR_HEADER_SIZE)) : new Uint8Array(Math.max(size, VSTOR_HEADER_SIZE));
  if (into) out.fill(0);
  putU32le(out, 0, VstorOperation.CompleteIo);
  putU32le(out, 4, 0);
  putU32le(out, 8, ntStatus >>> 0);
  out.set(request.subarray(VSTOR_HEADER_SIZE, Math.min(request.length, out.length)), VSTOR_HEADER_SIZE);
  const o = VmscsiOffset;
  out[o.srbStatus] = c.srbStatus;
  out[o.scsiStatus] = c.scsiStatus;
  out[o.senseInfoLength] = c.sense.length;
  putU32le(out, o.dataTransferLength, c.dataTransferLength >>> 0);
  out.fill(0, o.senseData, o.senseData + SENSE_BUFFER_SIZE);
  if (c.sense.length > 0) out.set(c.sense, o.senseData);
  return out;
}

/** Decodes a completion's vmscsi_request status fields (for the test guest and vectors). */
export function decodeSrbCompletion(payload: Uint8Array): SrbCompletion & VstorHeader {
  const h = decodeVstorHeader(payload);
  if (payload.length < VSTOR_HEADER_SIZE + VMSCSI_REQUEST_SIZE - VMSCSI_WIN8_EXTENSION_SIZE) {
    throw new StorVspProtocolError('STORVSP_ERR_SHORT_PACKET', 'SRB completion truncated');
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const senseLen = Math.min(payload[VmscsiOffset.senseInfoLength]!, SENSE_BUFFER_SIZE);
  return {
    ...h,
    srbStatus: payload[VmscsiOffset.srbStatus]!,
    scsiStatus: payload[VmscsiOffset.scsiStatus]!,
    dataTransferLength: dv.getUint32(VmscsiOffset.dataTransferLength, true),
    sense: payload.slice(VmscsiOffset.senseData, VmscsiOffset.senseData + senseLen),
  };
}
