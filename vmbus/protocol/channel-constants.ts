/**
 * VMBus channel-management constants (Linux
 * include/linux/hyperv.h, enum vmbus_channel_message_type; QEMU include/hw/hyperv/vmbus-proto.h;
 * OpenVMM vm/devices/vmbus/vmbus_core/src/protocol.rs). The child SDK keeps an AssemblyScript copy
 * in child-sdk/vmbus/channel-protocol.ts; the shared hex vectors in test/vectors/channel/ keep the
 * two byte-compatible.
 */

/** SynIC message type of every VMBus control message, both directions (QEMU HV_MESSAGE_VMBUS). */
export const VMBUS_SYNIC_MESSAGE_TYPE = 1;
/** SINT on which the guest receives VMBus messages and channel events. */
export const VMBUS_MESSAGE_SINT = 2;
/** Guest → host control messages below protocol 5.0, and the server's msg_conn_id from 5.0 on. */
export const VMBUS_MESSAGE_CONNECTION_ID = 1;
export const VMBUS_EVENT_CONNECTION_ID = 2;
export const VMBUS_MONITOR_CONNECTION_ID = 3;
/** INITIATE_CONTACT for protocol ≥ 5.0 (OpenVMM: the "multiclient" port). */
export const VMBUS_MESSAGE_CONNECTION_ID_4 = 4;
/** A VMBus control message is at most one SynIC payload. */
export const VMBUS_MAX_MESSAGE_SIZE = 240;
/** child_relid range: 0 is never used (bit 0 of the SIEF block is special). */
export const VMBUS_FIRST_RELID = 1;
export const VMBUS_MAX_RELID = 2047;

/** CHANNELMSG_* (Linux enum vmbus_channel_message_type; OpenVMM MessageType). */
export enum ChannelMessageType {
  Invalid = 0,
  OfferChannel = 1,
  RescindChannelOffer = 2,
  RequestOffers = 3,
  AllOffersDelivered = 4,
  OpenChannel = 5,
  OpenChannelResult = 6,
  CloseChannel = 7,
  GpadlHeader = 8,
  GpadlBody = 9,
  GpadlCreated = 10,
  GpadlTeardown = 11,
  GpadlTorndown = 12,
  RelidReleased = 13,
  InitiateContact = 14,
  VersionResponse = 15,
  Unload = 16,
  UnloadResponse = 17,
  OpenReservedChannel = 18,
  CloseReservedChannel = 19,
  CloseReservedResponse = 20,
  TlConnectRequest = 21,
  ModifyChannel = 22,
  TlConnectResult = 23,
  ModifyChannelResponse = 24,
}

/** Protocol versions, u32 = major << 16 | minor (Linux VERSION_*; OpenVMM Version::Copper). */
export enum VmbusVersion {
  Ws2008 = 0x0000000d,
  Win7 = 0x00010001,
  Win8 = 0x00020004,
  Win8_1 = 0x00030000,
  Win10 = 0x00040000,
  Win10V4_1 = 0x00040001,
  Win10V5 = 0x00050000,
  Win10V5_1 = 0x00050001,
  Win10V5_2 = 0x00050002,
  Win10V5_3 = 0x00050003,
  Copper = 0x00060000,
}

/** Versions this server accepts, newest first (the order a Linux guest proposes them). */
export const SUPPORTED_VERSIONS: readonly VmbusVersion[] = [
  VmbusVersion.Copper,
  VmbusVersion.Win10V5_3,
  VmbusVersion.Win10V5_2,
  VmbusVersion.Win10V5_1,
  VmbusVersion.Win10V5,
  VmbusVersion.Win10V4_1,
  VmbusVersion.Win10,
  VmbusVersion.Win8_1,
];

/** VERSION_RESPONSE.connection_state. */
export enum ConnectionState {
  Successful = 0,
  FailedLowResources = 1,
  FailedUnknownFailure = 2,
}

/** OFFERCHANNEL chn_flags (Linux VMBUS_CHANNEL_*). */
export enum OfferFlags {
  EnumerateDeviceInterface = 0x0001,
  ServerSupportsTransferPages = 0x0002,
  ServerSupportsGpadls = 0x0004,
  NamedPipeMode = 0x0010,
  LoopbackOffer = 0x0100,
  ParentOffer = 0x0200,
  RequestMonitoredNotification = 0x0400,
  TlnpiProviderOffer = 0x2000,
}

/**
 * Status values the server puts in OPENCHANNEL_RESULT.status and GPADL_CREATED.creation_status.
 * Hyper-V reports NTSTATUS values there; Linux only tests for non-zero.
 */
export enum ChannelStatus {
  Success = 0,
  Unsuccessful = 0xc0000001,
  InvalidParameter = 0xc000000d,
  InsufficientResources = 0xc000009a,
  DeviceBusy = 0x80000011,
}

/** Message sizes including the 8-byte header (Linux include/linux/hyperv.h packed structs). */
export const OFFER_CHANNEL_SIZE = 196;
export const CHANNEL_HEADER_SIZE = 8;
export const RELID_MESSAGE_SIZE = 12; // RESCIND_CHANNELOFFER, CLOSECHANNEL, RELID_RELEASED
export const OPEN_CHANNEL_SIZE = 148;
export const OPEN_CHANNEL_USERDATA_SIZE = 120;
export const OPEN_CHANNEL_RESULT_SIZE = 20;
export const GPADL_HEADER_FIXED_SIZE = 20; // then the range descriptors
export const GPADL_RANGE_FIXED_SIZE = 8; // byte_count, byte_offset; then u64 PFNs
export const GPADL_BODY_FIXED_SIZE = 16; // then u64 PFNs
export const GPADL_CREATED_SIZE = 20;
export const GPADL_TEARDOWN_SIZE = 16;
export const GPADL_TORNDOWN_SIZE = 12;
export const INITIATE_CONTACT_SIZE = 40;
export const INITIATE_CONTACT_CLIENT_ID_SIZE = 56;
export const VERSION_RESPONSE_SIZE = 16;
export const VERSION_RESPONSE_COPPER_SIZE = 20;
export const OFFER_USER_DEFINED_SIZE = 120;
/** PFNs that fit after the header and one range: (240 − 20 − 8) / 8. */
export const GPADL_HEADER_MAX_PFNS = 26;
/** PFNs that fit in one GPADL_BODY: (240 − 16) / 8. */
export const GPADL_BODY_MAX_PFNS = 28;
