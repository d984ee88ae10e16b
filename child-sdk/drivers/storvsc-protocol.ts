// vstor wire formats for the guest storage driver (storvsc): the guest copy of
// root-partition/vsp/storvsp/storvsp-protocol.ts, kept byte-compatible by test/vectors/storvsp/.
// Sources: Linux drivers/scsi/storvsc_drv.c (struct vstor_packet, struct vmscsi_request,
// storvsc_channel_init, storvsc_queuecommand) and OpenVMM vm/devices/storage/storvsp_protocol.
// Encoders write into guest memory at a GPA; all fields are little-endian, CDB fields big-endian.
import { StorvscInterface } from "../../abi/vmbus-channel";

// enum vstor_packet_operation
export const VSTOR_OPERATION_COMPLETE_IO: u32 = 1;
export const VSTOR_OPERATION_REMOVE_DEVICE: u32 = 2;
export const VSTOR_OPERATION_EXECUTE_SRB: u32 = 3;
export const VSTOR_OPERATION_RESET_LUN: u32 = 4;
export const VSTOR_OPERATION_RESET_ADAPTER: u32 = 5;
export const VSTOR_OPERATION_RESET_BUS: u32 = 6;
export const VSTOR_OPERATION_BEGIN_INITIALIZATION: u32 = 7;
export const VSTOR_OPERATION_END_INITIALIZATION: u32 = 8;
export const VSTOR_OPERATION_QUERY_PROTOCOL_VERSION: u32 = 9;
export const VSTOR_OPERATION_QUERY_PROPERTIES: u32 = 10;
export const VSTOR_OPERATION_ENUMERATE_BUS: u32 = 11;
export const VSTOR_OPERATION_FCHBA_DATA: u32 = 12;
export const VSTOR_OPERATION_CREATE_SUB_CHANNELS: u32 = 13;

/** vstor_packet.flags bit asking the host for a completion packet (Linux REQUEST_COMPLETION_FLAG). */
export const REQUEST_COMPLETION_FLAG: u32 = 1;

// VMSTOR_PROTO_VERSION(major, minor) = major << 8 | minor
export const VMSTOR_PROTO_VERSION_WIN7: u16 = 0x0402;
export const VMSTOR_PROTO_VERSION_WIN8: u16 = 0x0501;
export const VMSTOR_PROTO_VERSION_WIN8_1: u16 = 0x0600;
export const VMSTOR_PROTO_VERSION_WIN10: u16 = 0x0602;

/** trans_id Linux uses for init requests (VMBUS_RQST_INIT = 2^64 - 3). */
export const VMBUS_RQST_INIT: u64 = 0xfffffffffffffffd;

/** Size in bytes of a vstor_packet (Win8+ layout, the one this driver sends and expects). */
export const VSTOR_PACKET_SIZE: u32 = 64;
/** Bytes a pre-Win8 vmscsi_request lacks (the Win8 extension; Linux's old vmscsi_size_delta). */
export const VMSCSI_SIZE_DELTA_PRE_WIN8: u32 = 16;
/** vmscsi_request.length written into every SRB (0x34, Linux sizeof(struct vmscsi_request)). */
export const VMSCSI_REQUEST_SIZE: u16 = 0x34;
/** sense_info_length of every SRB: the sense bytes the host may return (Linux STORVSC_SENSE_BUFFER_SIZE). */
export const STORVSC_SENSE_BUFFER_SIZE: u8 = 0x14;

// vstor_packet offsets
export const VSTOR_OPERATION: u32 = 0;
export const VSTOR_FLAGS: u32 = 4;
export const VSTOR_STATUS: u32 = 8;
export const VSTOR_VERSION_MAJOR_MINOR: u32 = 12;
export const VSTOR_SUB_CHANNEL_COUNT: u32 = 12;
export const VSTOR_PROPS_MAX_CHANNEL_CNT: u32 = 16;
export const VSTOR_PROPS_FLAGS: u32 = 20;
export const VSTOR_PROPS_MAX_TRANSFER_BYTES: u32 = 24;
// vmscsi_request offsets (from the start of the vstor_packet)
export const SRB_LENGTH: u32 = 12;
export const SRB_SRB_STATUS: u32 = 14;
export const SRB_SCSI_STATUS: u32 = 15;
export const SRB_PORT_NUMBER: u32 = 16;
export const SRB_PATH_ID: u32 = 17;
export const SRB_TARGET_ID: u32 = 18;
export const SRB_LUN: u32 = 19;
export const SRB_CDB_LENGTH: u32 = 20;
export const SRB_SENSE_INFO_LENGTH: u32 = 21;
export const SRB_DATA_IN: u32 = 22;
export const SRB_DATA_TRANSFER_LENGTH: u32 = 24;
export const SRB_CDB: u32 = 28;
export const SRB_SENSE_DATA: u32 = 28;
export const SRB_QUEUE_TAG: u32 = 50;
export const SRB_QUEUE_ACTION: u32 = 51;
export const SRB_FLAGS: u32 = 52;
export const SRB_TIME_OUT_VALUE: u32 = 56;

// enum storvsc_request_type
export const WRITE_TYPE: u8 = 0;
export const READ_TYPE: u8 = 1;
export const UNKNOWN_TYPE: u8 = 2;

/** vmscsi_request.srb_flags bits and queue tag values (Windows SRB_FLAGS_*, as Linux storvsc sets them). */
export const SRB_FLAGS_QUEUE_ACTION_ENABLE: u32 = 0x2;
export const SRB_FLAGS_DISABLE_SYNCH_TRANSFER: u32 = 0x8;
export const SRB_FLAGS_DATA_IN: u32 = 0x40;
export const SRB_FLAGS_DATA_OUT: u32 = 0x80;
export const SRB_FLAGS_NO_QUEUE_FREEZE: u32 = 0x100;
export const SP_UNTAGGED: u8 = 0xff;
export const SRB_SIMPLE_TAG_REQUEST: u8 = 0x20;

/** vmscsi_request.srb_status codes (Windows SRB_STATUS_*); AUTOSENSE_VALID and QUEUE_FROZEN are flag bits ORed in. */
export const SRB_STATUS_SUCCESS: u8 = 0x01;
export const SRB_STATUS_ERROR: u8 = 0x04;
export const SRB_STATUS_INVALID_REQUEST: u8 = 0x06;
export const SRB_STATUS_DATA_OVERRUN: u8 = 0x12;
export const SRB_STATUS_INVALID_LUN: u8 = 0x20;
export const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80;
export const SRB_STATUS_QUEUE_FROZEN: u8 = 0x40;

// SCSI operation codes used by the driver
export const SCSI_INQUIRY: u8 = 0x12;
export const SCSI_READ_CAPACITY_10: u8 = 0x25;
export const SCSI_READ_10: u8 = 0x28;
export const SCSI_WRITE_10: u8 = 0x2a;
export const SCSI_READ_16: u8 = 0x88;
export const SCSI_WRITE_16: u8 = 0x8a;
export const SCSI_SERVICE_ACTION_IN_16: u8 = 0x9e;
export const SAI_READ_CAPACITY_16: u8 = 0x10;
export const SCSI_UNMAP: u8 = 0x42;
/** VPD page 0xB0, Block Limits (SBC-3 6.5.3): the unmap limits a thin disk reports. */
export const VPD_BLOCK_LIMITS: u8 = 0xb0;
/** An UNMAP parameter list with one block descriptor: the 8-byte header and 16 bytes (SBC-3 5.28.2). */
export const UNMAP_LIST_ONE: u32 = 24;

/** Zeroes a `size`-byte vstor_packet at `p` and sets operation and REQUEST_COMPLETION_FLAG. */
export function vstorPacketInit(p: usize, operation: u32, size: u32): void {
  memory.fill(p, 0, size);
  store<u32>(p + VSTOR_OPERATION, operation);
  store<u32>(p + VSTOR_FLAGS, REQUEST_COMPLETION_FLAG);
}

/** Encodes QUERY_PROTOCOL_VERSION at `p` with `version` (major << 8 | minor) in the version union (Linux storvsc_channel_init). */
export function encodeQueryProtocolVersion(p: usize, version: u16): void {
  vstorPacketInit(p, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION, VSTOR_PACKET_SIZE);
  store<u16>(p + VSTOR_VERSION_MAJOR_MINOR, version);
}

/** Encodes CREATE_SUB_CHANNELS at `p` asking the host for `count` sub-channels (Linux storvsc_channel_init). */
export function encodeCreateSubChannels(p: usize, count: u16): void {
  vstorPacketInit(p, VSTOR_OPERATION_CREATE_SUB_CHANNELS, VSTOR_PACKET_SIZE);
  store<u16>(p + VSTOR_SUB_CHANNEL_COUNT, count);
}

/**
 * An EXECUTE_SRB packet as Linux storvsc_queuecommand/storvsc_do_io fill it for a tagged device:
 * 60 s timeout, SIMPLE tag, srb_flags from the data direction. The CDB is written afterwards by
 * one of the cdb* helpers.
 */
export function encodeSrb(p: usize, port: u8, pathId: u8, targetId: u8, lun: u8, cdbLength: u8, dataIn: u8, dataTransferLength: u32): void {
  vstorPacketInit(p, VSTOR_OPERATION_EXECUTE_SRB, VSTOR_PACKET_SIZE);
  store<u16>(p + SRB_LENGTH, VMSCSI_REQUEST_SIZE);
  store<u8>(p + SRB_PORT_NUMBER, port);
  store<u8>(p + SRB_PATH_ID, pathId);
  store<u8>(p + SRB_TARGET_ID, targetId);
  store<u8>(p + SRB_LUN, lun);
  store<u8>(p + SRB_CDB_LENGTH, cdbLength);
  store<u8>(p + SRB_SENSE_INFO_LENGTH, STORVSC_SENSE_BUFFER_SIZE);
  store<u8>(p + SRB_DATA_IN, dataIn);
  store<u32>(p + SRB_DATA_TRANSFER_LENGTH, dataTransferLength);
  store<u8>(p + SRB_QUEUE_TAG, SP_UNTAGGED);
  store<u8>(p + SRB_QUEUE_ACTION, SRB_SIMPLE_TAG_REQUEST);
  let flags = SRB_FLAGS_DISABLE_SYNCH_TRANSFER | SRB_FLAGS_QUEUE_ACTION_ENABLE | SRB_FLAGS_NO_QUEUE_FREEZE;
  if (dataIn == READ_TYPE) flags |= SRB_FLAGS_DATA_IN;
  else if (dataIn == WRITE_TYPE) flags |= SRB_FLAGS_DATA_OUT;
  store<u32>(p + SRB_FLAGS, flags);
  store<u32>(p + SRB_TIME_OUT_VALUE, 60);
}

function storeBe32(p: usize, v: u32): void {
  store<u8>(p, <u8>(v >> 24));
  store<u8>(p + 1, <u8>(v >> 16));
  store<u8>(p + 2, <u8>(v >> 8));
  store<u8>(p + 3, <u8>v);
}

/** READ(10)/WRITE(10) CDB (SBC-3 5.8/5.30) into the packet's cdb field. */
export function cdbRw10(p: usize, write: bool, lba: u32, blocks: u16): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, write ? SCSI_WRITE_10 : SCSI_READ_10);
  storeBe32(c + 2, lba);
  store<u8>(c + 7, <u8>(blocks >> 8));
  store<u8>(c + 8, <u8>blocks);
}

/** READ(16)/WRITE(16) CDB; the LBA comes as two u32 halves (cheap at the JS boundary). */
export function cdbRw16(p: usize, write: bool, lbaLo: u32, lbaHi: u32, blocks: u32): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, write ? SCSI_WRITE_16 : SCSI_READ_16);
  storeBe32(c + 2, lbaHi);
  storeBe32(c + 6, lbaLo);
  storeBe32(c + 10, blocks);
}

/** INQUIRY CDB (SPC-3 6.4): EVPD, page code, 16-bit allocation length. */
export function cdbInquiry(p: usize, evpd: bool, page: u8, allocation: u16): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, SCSI_INQUIRY);
  store<u8>(c + 1, evpd ? 1 : 0);
  store<u8>(c + 2, page);
  store<u8>(c + 3, <u8>(allocation >> 8));
  store<u8>(c + 4, <u8>allocation);
}

/** READ CAPACITY(10) CDB (SBC-3 5.15) into the packet's cdb field: opcode only, every other byte 0. */
export function cdbReadCapacity10(p: usize): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, SCSI_READ_CAPACITY_10);
}

/** SERVICE ACTION IN(16) / READ CAPACITY(16) CDB (SBC-3 5.16). */
export function cdbReadCapacity16(p: usize, allocation: u32): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, SCSI_SERVICE_ACTION_IN_16);
  store<u8>(c + 1, SAI_READ_CAPACITY_16);
  storeBe32(c + 10, allocation);
}

// Completion accessors: what Linux storvsc_on_io_completion reads.
/** vstor_packet.operation of a completion at `p` (COMPLETE_IO for a reply to this driver's request). */
export function completionOperation(p: usize): u32 { return load<u32>(p + VSTOR_OPERATION); }
/** vstor_packet.status of a completion at `p` (0 = success; for QUERY_PROTOCOL_VERSION non-zero means "try an older version"). */
export function completionStatus(p: usize): u32 { return load<u32>(p + VSTOR_STATUS); }
/** vmscsi_request.srb_status of a completion at `p` (SRB_STATUS_* with the AUTOSENSE_VALID / QUEUE_FROZEN bits). */
export function completionSrbStatus(p: usize): u8 { return load<u8>(p + SRB_SRB_STATUS); }
/** UNMAP(10) (SBC-3 5.28): ANCHOR 0, GROUP NUMBER 0, PARAMETER LIST LENGTH at bytes 7–8. */
export function cdbUnmap(p: usize, parameterListLength: u16): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, SCSI_UNMAP);
  store<u8>(c + 7, <u8>(parameterListLength >> 8));
  store<u8>(c + 8, <u8>parameterListLength);
}

/**
 * The UNMAP parameter list at `list` with one block descriptor (SBC-3 5.28.2): UNMAP DATA LENGTH
 * (the bytes after it, 22), UNMAP BLOCK DESCRIPTOR DATA LENGTH (16), then the descriptor: the
 * LBA (8 bytes) and the NUMBER OF LOGICAL BLOCKS (4), big-endian.
 */
export function encodeUnmapList(list: usize, lbaLo: u32, lbaHi: u32, blocks: u32): void {
  memory.fill(list, 0, UNMAP_LIST_ONE);
  store<u8>(list + 1, <u8>(UNMAP_LIST_ONE - 2));
  store<u8>(list + 3, 16);
  storeBe32(list + 8, lbaHi);
  storeBe32(list + 12, lbaLo);
  storeBe32(list + 16, blocks);
}

/** vmscsi_request.scsi_status of a completion at `p` (SAM status, e.g. SCSI_STATUS_CHECK_CONDITION). */
export function completionScsiStatus(p: usize): u8 { return load<u8>(p + SRB_SCSI_STATUS); }
/** vmscsi_request.data_transfer_length of a completion at `p`: bytes the host actually moved. */
export function completionDataTransferLength(p: usize): u32 { return load<u32>(p + SRB_DATA_TRANSFER_LENGTH); }
/** vmscsi_request.sense_info_length of a completion at `p`: valid sense bytes in sense_data. */
export function completionSenseInfoLength(p: usize): u8 { return load<u8>(p + SRB_SENSE_INFO_LENGTH); }
/** storage_channel_properties.max_channel_cnt of a QUERY_PROPERTIES reply at `p`: sub-channels the host can offer. */
export function propertiesMaxChannelCount(p: usize): u16 { return load<u16>(p + VSTOR_PROPS_MAX_CHANNEL_CNT); }
/** storage_channel_properties.flags of a QUERY_PROPERTIES reply at `p` (bit 0 STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL). */
export function propertiesFlags(p: usize): u32 { return load<u32>(p + VSTOR_PROPS_FLAGS); }
/** storage_channel_properties.max_transfer_bytes of a QUERY_PROPERTIES reply at `p`: the largest data transfer per SRB. */
export function propertiesMaxTransferBytes(p: usize): u32 { return load<u32>(p + VSTOR_PROPS_MAX_TRANSFER_BYTES); }

/** Synthetic SCSI controller interface GUID in wire layout (abi/vmbus-channel.ts). */
export const STORVSC_SCSI_INTERFACE_TYPE: usize = memory.data<u32>([StorvscInterface.W0, StorvscInterface.W1, StorvscInterface.W2, StorvscInterface.W3]);

/** VMBUS_RQST_INIT as the two u32 halves the ring takes. */
export const VMBUS_RQST_INIT_LO: u32 = 0xfffffffd;
export const VMBUS_RQST_INIT_HI: u32 = 0xffffffff;

/** SYNCHRONIZE CACHE(16) operation code (SBC-3 5.23). */
export const SCSI_SYNCHRONIZE_CACHE_16: u8 = 0x91;
/** SAM status codes (SAM-4 5.3.1). */
export const SCSI_STATUS_GOOD: u8 = 0x00;
export const SCSI_STATUS_CHECK_CONDITION: u8 = 0x02;
/** Sense keys and ASCs the driver distinguishes (SPC-3 4.5.6, Annex D). */
export const SENSE_KEY_NOT_READY: u8 = 0x02;
export const SENSE_KEY_MEDIUM_ERROR: u8 = 0x03;
export const SENSE_KEY_ILLEGAL_REQUEST: u8 = 0x05;
export const SENSE_KEY_UNIT_ATTENTION: u8 = 0x06;
export const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;

/** SYNCHRONIZE CACHE(16) over the whole medium (SBC-3 5.23: LBA 0, NUMBER OF BLOCKS 0 = to the end). */
export function cdbSynchronizeCache16(p: usize): void {
  const c = p + SRB_CDB;
  memory.fill(c, 0, 16);
  store<u8>(c, SCSI_SYNCHRONIZE_CACHE_16);
}

// Fixed-format sense (SPC-3 4.5.3) in a completion's sense_data: key @2 (low nibble), ASC @12, ASCQ @13.
/** Sense key (byte 2, low nibble) of the completion's fixed-format sense data; meaningful only with AUTOSENSE_VALID. */
export function completionSenseKey(p: usize): u8 { return load<u8>(p + SRB_SENSE_DATA + 2) & 0x0f; }
/** Additional sense code (byte 12) of the completion's fixed-format sense data. */
export function completionSenseAsc(p: usize): u8 { return load<u8>(p + SRB_SENSE_DATA + 12); }
/** Additional sense code qualifier (byte 13) of the completion's fixed-format sense data. */
export function completionSenseAscq(p: usize): u8 { return load<u8>(p + SRB_SENSE_DATA + 13); }
