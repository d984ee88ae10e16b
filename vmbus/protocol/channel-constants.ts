/**
 * VMBus channel-management constants of the host side. The numbers both sides share — SynIC
 * routing, CHANNELMSG_* types, protocol versions, message sizes, device interface GUIDs — live in
 * abi/vmbus-channel.ts, which the child SDK compiles too; what only the server uses is here.
 */
import { VmbusVersion } from '../../abi/vmbus-channel.ts';

export {
  ChannelMessageType,
  VmbusVersion,
  VMBUS_SYNIC_MESSAGE_TYPE,
  VMBUS_MESSAGE_SINT,
  VMBUS_MESSAGE_CONNECTION_ID,
  VMBUS_EVENT_CONNECTION_ID,
  VMBUS_MONITOR_CONNECTION_ID,
  VMBUS_MESSAGE_CONNECTION_ID_4,
  VMBUS_MAX_MESSAGE_SIZE,
  VMBUS_FIRST_RELID,
  VMBUS_MAX_RELID,
  OFFER_CHANNEL_SIZE,
  CHANNEL_HEADER_SIZE,
  RELID_MESSAGE_SIZE,
  OPEN_CHANNEL_SIZE,
  OPEN_CHANNEL_USERDATA_SIZE,
  OPEN_CHANNEL_RESULT_SIZE,
  GPADL_HEADER_FIXED_SIZE,
  GPADL_RANGE_FIXED_SIZE,
  GPADL_BODY_FIXED_SIZE,
  GPADL_CREATED_SIZE,
  GPADL_TEARDOWN_SIZE,
  GPADL_TORNDOWN_SIZE,
  INITIATE_CONTACT_SIZE,
  INITIATE_CONTACT_CLIENT_ID_SIZE,
  VERSION_RESPONSE_SIZE,
  VERSION_RESPONSE_COPPER_SIZE,
  OFFER_USER_DEFINED_SIZE,
  GPADL_HEADER_MAX_PFNS,
  GPADL_BODY_MAX_PFNS,
} from '../../abi/vmbus-channel.ts';

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
