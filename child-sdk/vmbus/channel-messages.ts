// VMBus channel messages, guest side: encoders for what the guest posts and a checker plus field
// readers for what the host sends (layouts: Linux
// include/linux/hyperv.h packed structs — misaligned fields, so raw loads/stores at offsets).
// Allocation-free: every function works on caller-provided memory.
import {
  ChannelMessageType, CHANNEL_HEADER_SIZE, OFFER_CHANNEL_SIZE, RELID_MESSAGE_SIZE, OPEN_CHANNEL_SIZE,
  OPEN_CHANNEL_USERDATA_SIZE, OPEN_CHANNEL_RESULT_SIZE, GPADL_HEADER_SIZE, GPADL_BODY_SIZE,
  GPADL_CREATED_SIZE, GPADL_TEARDOWN_SIZE, GPADL_TORNDOWN_SIZE, INITIATE_CONTACT_SIZE, VERSION_RESPONSE_SIZE,
  VMBUS_MAX_MESSAGE_SIZE, VERSION_WIN10_V5, DECODE_TOO_SHORT, DECODE_TOO_LONG, DECODE_UNSUPPORTED_TYPE,
  DECODE_BAD_LENGTH,
} from "./channel-protocol";

function header(out: usize, type: u32, size: u32): u32 {
  memory.fill(out, 0, size);
  store<u32>(out, type, 0);
  return size;
}

/** INITIATE_CONTACT: below 5.0 @16 is the interrupt page GPA; from 5.0 msg_sint @16, msg_vtl @17. */
export function encodeInitiateContact(out: usize, version: u32, targetVcpu: u32, interruptPageOrSint: u32,
  monitorPage1: u32, monitorPage2: u32): u32 {
  header(out, ChannelMessageType.InitiateContact, INITIATE_CONTACT_SIZE);
  store<u32>(out, version, 8);
  store<u32>(out, targetVcpu, 12);
  if (version >= VERSION_WIN10_V5) store<u8>(out, <u8>interruptPageOrSint, 16); // msg_vtl 0
  else store<u64>(out, <u64>interruptPageOrSint, 16);
  store<u64>(out, <u64>monitorPage1, 24);
  store<u64>(out, <u64>monitorPage2, 32);
  return INITIATE_CONTACT_SIZE;
}

/** REQUESTOFFERS and UNLOAD: the header alone. */
export function encodeHeaderOnly(out: usize, type: u32): u32 {
  return header(out, type, CHANNEL_HEADER_SIZE);
}

/** CLOSECHANNEL and RELID_RELEASED: child_relid @8. */
export function encodeRelidMessage(out: usize, type: u32, relid: u32): u32 {
  header(out, type, RELID_MESSAGE_SIZE);
  store<u32>(out, relid, 8);
  return RELID_MESSAGE_SIZE;
}

/** OPENCHANNEL; userData (120 bytes) may be 0 for zeros. */
export function encodeOpenChannel(out: usize, relid: u32, openId: u32, gpadl: u32, targetVp: u32,
  downstreamPageOffset: u32, userData: usize): u32 {
  header(out, ChannelMessageType.OpenChannel, OPEN_CHANNEL_SIZE);
  store<u32>(out, relid, 8);
  store<u32>(out, openId, 12);
  store<u32>(out, gpadl, 16);
  store<u32>(out, targetVp, 20);
  store<u32>(out, downstreamPageOffset, 24);
  if (userData != 0) memory.copy(out + 28, userData, OPEN_CHANNEL_USERDATA_SIZE);
  return OPEN_CHANNEL_SIZE;
}

/**
 * GPADL_HEADER for a single page-aligned range of `totalPages` pages, carrying `pfnCount` PFNs
 * read as u64 from `pfns` (Linux create_gpadl_header: byte_offset 0, byte_count = pages × 4096).
 */
export function encodeGpadlHeader(out: usize, relid: u32, gpadl: u32, totalPages: u32, pfns: usize, pfnCount: u32): u32 {
  const size = GPADL_HEADER_SIZE + 8 * pfnCount;
  header(out, ChannelMessageType.GpadlHeader, size);
  store<u32>(out, relid, 8);
  store<u32>(out, gpadl, 12);
  store<u16>(out, <u16>(8 + 8 * totalPages), 16); // range_buflen
  store<u16>(out, 1, 18); // rangecount
  store<u32>(out, totalPages << 12, 20); // byte_count
  store<u32>(out, 0, 24); // byte_offset
  memory.copy(out + GPADL_HEADER_SIZE, pfns, 8 * pfnCount);
  return size;
}

/** GPADL_BODY: msgnumber (left 0 as Linux does), gpadl, PFNs. */
export function encodeGpadlBody(out: usize, msgNumber: u32, gpadl: u32, pfns: usize, pfnCount: u32): u32 {
  const size = GPADL_BODY_SIZE + 8 * pfnCount;
  header(out, ChannelMessageType.GpadlBody, size);
  store<u32>(out, msgNumber, 8);
  store<u32>(out, gpadl, 12);
  memory.copy(out + GPADL_BODY_SIZE, pfns, 8 * pfnCount);
  return size;
}

/** GPADL_TEARDOWN: child_relid @8, gpadl @12. Returns the message length. */
export function encodeGpadlTeardown(out: usize, relid: u32, gpadl: u32): u32 {
  header(out, ChannelMessageType.GpadlTeardown, GPADL_TEARDOWN_SIZE);
  store<u32>(out, relid, 8);
  store<u32>(out, gpadl, 12);
  return GPADL_TEARDOWN_SIZE;
}

/** Minimum size of each message type, or 0 for a type this codec does not know. */
function minimumSize(type: u32): u32 {
  switch (type) {
    case ChannelMessageType.OfferChannel: return OFFER_CHANNEL_SIZE;
    case ChannelMessageType.RescindChannelOffer:
    case ChannelMessageType.CloseChannel:
    case ChannelMessageType.RelidReleased: return RELID_MESSAGE_SIZE;
    case ChannelMessageType.RequestOffers:
    case ChannelMessageType.AllOffersDelivered:
    case ChannelMessageType.Unload:
    case ChannelMessageType.UnloadResponse: return CHANNEL_HEADER_SIZE;
    case ChannelMessageType.OpenChannel: return OPEN_CHANNEL_SIZE;
    case ChannelMessageType.OpenChannelResult: return OPEN_CHANNEL_RESULT_SIZE;
    case ChannelMessageType.GpadlHeader: return GPADL_HEADER_SIZE;
    case ChannelMessageType.GpadlBody: return GPADL_BODY_SIZE;
    case ChannelMessageType.GpadlCreated: return GPADL_CREATED_SIZE;
    case ChannelMessageType.GpadlTeardown: return GPADL_TEARDOWN_SIZE;
    case ChannelMessageType.GpadlTorndown: return GPADL_TORNDOWN_SIZE;
    case ChannelMessageType.InitiateContact: return INITIATE_CONTACT_SIZE;
    case ChannelMessageType.VersionResponse: return VERSION_RESPONSE_SIZE;
  }
  return 0;
}

/**
 * Checks a message (already copied out of the SynIC slot) and returns its type, or a negative
 * DECODE_* code: the same verdicts as the host's decodeChannelMessage.
 */
export function checkChannelMessage(msg: usize, length: u32): i32 {
  if (length > VMBUS_MAX_MESSAGE_SIZE) return DECODE_TOO_LONG;
  if (length < CHANNEL_HEADER_SIZE) return DECODE_TOO_SHORT;
  const type = load<u32>(msg, 0);
  const min = minimumSize(type);
  if (min == 0) return DECODE_UNSUPPORTED_TYPE;
  if (length < min) return DECODE_TOO_SHORT;
  if ((type == ChannelMessageType.GpadlHeader || type == ChannelMessageType.GpadlBody) && ((length - min) & 7) != 0) {
    return DECODE_BAD_LENGTH;
  }
  return <i32>type;
}

// Field readers for host → guest messages (offsets from Linux include/linux/hyperv.h).
/** u8 at `offset` of the message at `msg`, widened to u32. */
export function readU8(msg: usize, offset: u32): u32 { return <u32>load<u8>(msg + offset); }
/** u16 (little-endian, possibly misaligned) at `offset` of the message at `msg`. */
export function readU16(msg: usize, offset: u32): u32 { return <u32>load<u16>(msg + offset); }
/** u32 (little-endian, possibly misaligned) at `offset` of the message at `msg`. */
export function readU32(msg: usize, offset: u32): u32 { return load<u32>(msg + offset); }

/** Byte offsets of the host → guest message fields the client reads (Linux include/linux/hyperv.h). */
export const VERSION_RESPONSE_SUPPORTED: u32 = 8; // u8
export const VERSION_RESPONSE_STATE: u32 = 9; // u8
export const VERSION_RESPONSE_MSG_CONN_ID: u32 = 12; // u32
export const OFFER_IF_TYPE: u32 = 8; // 16-byte GUID, wire layout
export const OFFER_IF_INSTANCE: u32 = 24;
export const OFFER_FLAGS: u32 = 56; // u16
export const OFFER_MMIO_MEGABYTES: u32 = 58; // u16
export const OFFER_USER_DEFINED: u32 = 60; // 120 bytes
export const OFFER_SUB_CHANNEL_INDEX: u32 = 180; // u16
export const OFFER_CHILD_RELID: u32 = 184; // u32
export const OFFER_MONITOR_ID: u32 = 188; // u8
export const OFFER_MONITOR_ALLOCATED: u32 = 189; // u8, bit 0
export const OFFER_DEDICATED_INTERRUPT: u32 = 190; // u16, bit 0
export const OFFER_CONNECTION_ID: u32 = 192; // u32
export const RELID_CHILD_RELID: u32 = 8; // RESCIND_CHANNELOFFER, OPENCHANNEL_RESULT, GPADL_CREATED
export const OPEN_RESULT_OPEN_ID: u32 = 12;
export const OPEN_RESULT_STATUS: u32 = 16;
export const GPADL_CREATED_GPADL: u32 = 12;
export const GPADL_CREATED_STATUS: u32 = 16;
export const GPADL_TORNDOWN_GPADL: u32 = 8;
