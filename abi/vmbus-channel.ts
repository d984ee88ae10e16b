// VMBus channel management as both sides speak it (Linux include/linux/hyperv.h, enum
// vmbus_channel_message_type and the VERSION_* values; QEMU include/hw/hyperv/vmbus-proto.h;
// OpenVMM vm/devices/vmbus/vmbus_core/src/protocol.rs): the SynIC routing, message types,
// protocol versions, message sizes and the interface GUIDs of the devices. Read by the host
// (vmbus/protocol/channel-constants.ts, the VSPs) and by the guest (child-sdk/vmbus/
// channel-protocol.ts, the drivers), so the numbers exist once.

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

// Message sizes including the 8-byte header (Linux struct vmbus_channel_*).
export const CHANNEL_HEADER_SIZE = 8;
export const OFFER_CHANNEL_SIZE = 196;
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
/** PFNs that fit after the header and one range: (240 − 20 − 8) / 8 (Linux create_gpadl_header). */
export const GPADL_HEADER_MAX_PFNS = 26;
/** PFNs that fit in one GPADL_BODY: (240 − 16) / 8. */
export const GPADL_BODY_MAX_PFNS = 28;

// Interface (device class) GUIDs of the devices, as their 16 wire bytes — Data1, Data2 and Data3
// little-endian, then Data4 as written — read as four little-endian u32 words: the guest lays
// them out with memory.data<u32>([G.W0, G.W1, G.W2, G.W3]), the host formats them as text
// (vmbus/protocol/guid.ts, guidFromWords).
/** Synthetic SCSI controller (Linux HV_SCSI_GUID; storvsc, storvsp): {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}. */
export enum StorvscInterface {
  W0 = 0xba6163d9,
  W1 = 0x4d2904a1,
  W2 = 0xe27205b6,
  W3 = 0x7fdcb1ff,
}

/** Accelerated IDE controller (Linux HV_IDE_GUID): {32412632-86cb-44a2-9b5c-50d1417354f5}. */
export enum IdeInterface {
  W0 = 0x32412632,
  W1 = 0x44a286cb,
  W2 = 0xd1505c9b,
  W3 = 0xf5547341,
}

/** Synthetic network adapter (Linux HV_NIC_GUID; netvsc, netvsp): {f8615163-df3e-46c5-913f-f2d2f965ed0e}. */
export enum NetvscInterface {
  W0 = 0xf8615163,
  W1 = 0x46c5df3e,
  W2 = 0xd2f23f91,
  W3 = 0x0eed65f9,
}

/** Heartbeat integration service (Linux HV_HEART_BEAT_GUID): {57164f39-9115-4e78-ab55-382f3bd5422d}. */
export enum HeartbeatInterface {
  W0 = 0x57164f39,
  W1 = 0x4e789115,
  W2 = 0x2f3855ab,
  W3 = 0x2d42d53b,
}

/** Shutdown integration service (Linux HV_SHUTDOWN_GUID): {0e0b6031-5213-4934-818b-38d90ced39db}. */
export enum ShutdownInterface {
  W0 = 0x0e0b6031,
  W1 = 0x49345213,
  W2 = 0xd9388b81,
  W3 = 0xdb39ed0c,
}

/** Time synchronization integration service (Linux HV_TS_GUID): {9527e630-d0ae-497b-adce-e80ab0175caf}. */
export enum TimeSyncInterface {
  W0 = 0x9527e630,
  W1 = 0x497bd0ae,
  W2 = 0x0ae8cead,
  W3 = 0xaf5c17b0,
}

/** Key-value pair exchange integration service (Linux HV_KVP_GUID): {a9a0f4e7-5a45-4d96-b827-8a841e8c03e6}. */
export enum KvpInterface {
  W0 = 0xa9a0f4e7,
  W1 = 0x4d965a45,
  W2 = 0x848a27b8,
  W3 = 0xe6038c1e,
}

/** tsvisor's example echo device (not a Hyper-V device): {a7b3d43e-9b0c-4c62-8f3a-5e6d2c1b0e11}. */
export enum EchoInterface {
  W0 = 0xa7b3d43e,
  W1 = 0x4c629b0c,
  W2 = 0x6d5e3a8f,
  W3 = 0x110e1b2c,
}
