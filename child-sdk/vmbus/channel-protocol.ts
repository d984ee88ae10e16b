// VMBus channel-management constants, guest side
// (Linux include/linux/hyperv.h). The host keeps the same numbers in vmbus/protocol/
// channel-constants.ts; the shared vectors in test/vectors/channel/ keep the two in step.

export const VMBUS_SYNIC_MESSAGE_TYPE: u32 = 1;
export const VMBUS_MESSAGE_SINT: u32 = 2;
export const VMBUS_MESSAGE_CONNECTION_ID: u32 = 1;
/** INITIATE_CONTACT from protocol 5.0 on (later messages use VERSION_RESPONSE.msg_conn_id). */
export const VMBUS_MESSAGE_CONNECTION_ID_4: u32 = 4;
export const VMBUS_MAX_MESSAGE_SIZE: u32 = 240;
export const VMBUS_MAX_RELID: u32 = 2047;

/** CHANNELMSG_* (Linux enum vmbus_channel_message_type). */
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
}

/** Protocol versions, major << 16 | minor. */
export const VERSION_WIN8_1: u32 = 0x00030000;
export const VERSION_WIN10: u32 = 0x00040000;
export const VERSION_WIN10_V4_1: u32 = 0x00040001;
export const VERSION_WIN10_V5: u32 = 0x00050000;
export const VERSION_WIN10_V5_1: u32 = 0x00050001;
export const VERSION_WIN10_V5_2: u32 = 0x00050002;
export const VERSION_WIN10_V5_3: u32 = 0x00050003;
export const VERSION_COPPER: u32 = 0x00060000;

/** Message sizes including the 8-byte header (Linux hyperv.h packed structs). */
export const CHANNEL_HEADER_SIZE: u32 = 8;
export const OFFER_CHANNEL_SIZE: u32 = 196;
export const RELID_MESSAGE_SIZE: u32 = 12;
export const OPEN_CHANNEL_SIZE: u32 = 148;
export const OPEN_CHANNEL_USERDATA_SIZE: u32 = 120;
export const OPEN_CHANNEL_RESULT_SIZE: u32 = 20;
export const GPADL_HEADER_SIZE: u32 = 28; // header, relid, gpadl, range_buflen, rangecount, one range
export const GPADL_BODY_SIZE: u32 = 16;
export const GPADL_CREATED_SIZE: u32 = 20;
export const GPADL_TEARDOWN_SIZE: u32 = 16;
export const GPADL_TORNDOWN_SIZE: u32 = 12;
export const INITIATE_CONTACT_SIZE: u32 = 40;
export const VERSION_RESPONSE_SIZE: u32 = 16;
/** (240 − 20 − 8) / 8 and (240 − 16) / 8 (Linux create_gpadl_header). */
export const GPADL_HEADER_MAX_PFNS: u32 = 26;
export const GPADL_BODY_MAX_PFNS: u32 = 28;

/** Decode results that are not a message type (same codes as the host decoder's errors). */
export const DECODE_TOO_SHORT: i32 = -1;
export const DECODE_TOO_LONG: i32 = -2;
export const DECODE_UNSUPPORTED_TYPE: i32 = -3;
export const DECODE_BAD_LENGTH: i32 = -4;
