// VMBus channel-management constants, guest side. The numbers the host uses too — SynIC routing,
// CHANNELMSG_* types, protocol versions, message sizes — come from abi/vmbus-channel.ts (Linux
// include/linux/hyperv.h); the shared vectors in test/vectors/channel/ check the encodings.

export { ChannelMessageType } from "../../abi/vmbus-channel";
import * as A from "../../abi/vmbus-channel";
import { VmbusVersion } from "../../abi/vmbus-channel";

// Typed u32 here: abi/ constants are untyped (i32 to AssemblyScript), the guest compares them with u32s.
export const VMBUS_SYNIC_MESSAGE_TYPE: u32 = A.VMBUS_SYNIC_MESSAGE_TYPE;
export const VMBUS_MESSAGE_SINT: u32 = A.VMBUS_MESSAGE_SINT;
export const VMBUS_MESSAGE_CONNECTION_ID: u32 = A.VMBUS_MESSAGE_CONNECTION_ID;
export const VMBUS_MESSAGE_CONNECTION_ID_4: u32 = A.VMBUS_MESSAGE_CONNECTION_ID_4;
export const VMBUS_MAX_MESSAGE_SIZE: u32 = A.VMBUS_MAX_MESSAGE_SIZE;
export const VMBUS_MAX_RELID: u32 = A.VMBUS_MAX_RELID;
export const CHANNEL_HEADER_SIZE: u32 = A.CHANNEL_HEADER_SIZE;
export const OFFER_CHANNEL_SIZE: u32 = A.OFFER_CHANNEL_SIZE;
export const RELID_MESSAGE_SIZE: u32 = A.RELID_MESSAGE_SIZE;
export const OPEN_CHANNEL_SIZE: u32 = A.OPEN_CHANNEL_SIZE;
export const OPEN_CHANNEL_USERDATA_SIZE: u32 = A.OPEN_CHANNEL_USERDATA_SIZE;
export const OPEN_CHANNEL_RESULT_SIZE: u32 = A.OPEN_CHANNEL_RESULT_SIZE;
export const GPADL_CREATED_SIZE: u32 = A.GPADL_CREATED_SIZE;
export const GPADL_TEARDOWN_SIZE: u32 = A.GPADL_TEARDOWN_SIZE;
export const GPADL_TORNDOWN_SIZE: u32 = A.GPADL_TORNDOWN_SIZE;
export const INITIATE_CONTACT_SIZE: u32 = A.INITIATE_CONTACT_SIZE;
export const VERSION_RESPONSE_SIZE: u32 = A.VERSION_RESPONSE_SIZE;
export const GPADL_HEADER_MAX_PFNS: u32 = A.GPADL_HEADER_MAX_PFNS;
export const GPADL_BODY_MAX_PFNS: u32 = A.GPADL_BODY_MAX_PFNS;

/** Protocol versions the guest proposes, by the names Linux gives them (VERSION_*). */
export const VERSION_WIN8_1: u32 = VmbusVersion.Win8_1;
export const VERSION_WIN10: u32 = VmbusVersion.Win10;
export const VERSION_WIN10_V4_1: u32 = VmbusVersion.Win10V4_1;
export const VERSION_WIN10_V5: u32 = VmbusVersion.Win10V5;
export const VERSION_WIN10_V5_1: u32 = VmbusVersion.Win10V5_1;
export const VERSION_WIN10_V5_2: u32 = VmbusVersion.Win10V5_2;
export const VERSION_WIN10_V5_3: u32 = VmbusVersion.Win10V5_3;
export const VERSION_COPPER: u32 = VmbusVersion.Copper;

/** GPADL_HEADER with its one range (header, relid, gpadl, range_buflen, rangecount, range), before the PFNs. */
export const GPADL_HEADER_SIZE: u32 = A.GPADL_HEADER_FIXED_SIZE + A.GPADL_RANGE_FIXED_SIZE;
export const GPADL_BODY_SIZE: u32 = A.GPADL_BODY_FIXED_SIZE;

/** Decode results that are not a message type (same codes as the host decoder's errors). */
export const DECODE_TOO_SHORT: i32 = -1;
export const DECODE_TOO_LONG: i32 = -2;
export const DECODE_UNSUPPORTED_TYPE: i32 = -3;
export const DECODE_BAD_LENGTH: i32 = -4;
