/**
 * Typed VMBus channel-management messages (Linux include/linux/hyperv.h,
 * struct vmbus_channel_*; OpenVMM vm/devices/vmbus/vmbus_core/src/protocol.rs). Every message
 * starts with an 8-byte header: MessageType u32 @0, padding u32 @4. GPAs and PFNs are u64 on the
 * wire and bigint here, so that a hostile value is seen exactly.
 */
import type { ChannelMessageType as T } from './channel-constants.ts';

/** CHANNELMSG_INITIATE_CONTACT (14), 40 bytes (56 with a Copper client id). */
export interface InitiateContact {
  type: T.InitiateContact;
  version: number;
  targetVcpu: number;
  /** @16 below 5.0: GPA of the interrupt page. Zero from 5.0. */
  interruptPage: bigint;
  /** @16/@17/@20 from 5.0: SINT and VTL for host messages, Copper feature flags. */
  msgSint: number;
  msgVtl: number;
  featureFlags: number;
  monitorPage1: bigint;
  monitorPage2: bigint;
  /** @40, 16 bytes (Copper client_id feature); null when the message is 40 bytes. */
  clientId: string | null;
}

/** CHANNELMSG_VERSION_RESPONSE (15), 16 bytes (20 with Copper supported_features). */
export interface VersionResponse {
  type: T.VersionResponse;
  versionSupported: number;
  connectionState: number;
  msgConnId: number;
  /** Copper only; null encodes the 16-byte form. */
  supportedFeatures: number | null;
}

/** CHANNELMSG_OFFERCHANNEL (1), 196 bytes (Linux struct vmbus_channel_offer_channel). */
export interface OfferChannel {
  type: T.OfferChannel;
  ifType: string;
  ifInstance: string;
  flags: number;
  mmioMegabytes: number;
  /** 120 bytes of device-specific data @60. */
  userDefined: Uint8Array;
  subChannelIndex: number;
  /** reserved3 @182 (OpenVMM mmio_megabytes_optional). */
  mmioMegabytesOptional: number;
  childRelid: number;
  monitorId: number;
  monitorAllocated: boolean;
  isDedicatedInterrupt: boolean;
  connectionId: number;
}

export interface RelidMessage<K extends T> {
  type: K;
  childRelid: number;
}
export type RescindChannelOffer = RelidMessage<T.RescindChannelOffer>;
export type CloseChannel = RelidMessage<T.CloseChannel>;
export type RelidReleased = RelidMessage<T.RelidReleased>;

export interface HeaderOnly<K extends T> {
  type: K;
}
export type RequestOffers = HeaderOnly<T.RequestOffers>;
export type AllOffersDelivered = HeaderOnly<T.AllOffersDelivered>;
export type Unload = HeaderOnly<T.Unload>;
export type UnloadResponse = HeaderOnly<T.UnloadResponse>;

/** CHANNELMSG_OPENCHANNEL (5), 148 bytes; a longer OpenChannel2 (Copper) decodes to the same. */
export interface OpenChannel {
  type: T.OpenChannel;
  childRelid: number;
  openId: number;
  ringGpadlHandle: number;
  targetVp: number;
  /** Page offset in the GPADL where the host → guest ring starts. */
  downstreamRingPageOffset: number;
  /** 120 bytes of device-specific data @28. */
  userData: Uint8Array;
}

/** CHANNELMSG_OPENCHANNEL_RESULT (6), 20 bytes. */
export interface OpenChannelResult {
  type: T.OpenChannelResult;
  childRelid: number;
  openId: number;
  status: number;
}

/**
 * CHANNELMSG_GPADL_HEADER (8). The first range descriptor (byte_count, byte_offset) is decoded;
 * `pfns` are the u64 values that follow it in this message. For the single-range GPADLs Linux
 * and Windows send these are the range's first PFNs; the rest come in GPADL_BODY messages.
 */
export interface GpadlHeader {
  type: T.GpadlHeader;
  childRelid: number;
  gpadl: number;
  rangeBufLen: number;
  rangeCount: number;
  byteCount: number;
  byteOffset: number;
  pfns: bigint[];
}

/** CHANNELMSG_GPADL_BODY (9): msgnumber (reserved, Linux leaves 0), gpadl, u64 PFNs from @16. */
export interface GpadlBody {
  type: T.GpadlBody;
  msgNumber: number;
  gpadl: number;
  pfns: bigint[];
}

/** CHANNELMSG_GPADL_CREATED (10), 20 bytes. */
export interface GpadlCreated {
  type: T.GpadlCreated;
  childRelid: number;
  gpadl: number;
  status: number;
}

/** CHANNELMSG_GPADL_TEARDOWN (11), 16 bytes. */
export interface GpadlTeardown {
  type: T.GpadlTeardown;
  childRelid: number;
  gpadl: number;
}

/** CHANNELMSG_GPADL_TORNDOWN (12), 12 bytes. */
export interface GpadlTorndown {
  type: T.GpadlTorndown;
  gpadl: number;
}

export type ChannelMessage =
  | InitiateContact
  | VersionResponse
  | OfferChannel
  | RescindChannelOffer
  | CloseChannel
  | RelidReleased
  | RequestOffers
  | AllOffersDelivered
  | Unload
  | UnloadResponse
  | OpenChannel
  | OpenChannelResult
  | GpadlHeader
  | GpadlBody
  | GpadlCreated
  | GpadlTeardown
  | GpadlTorndown;

/** Why a message could not be decoded. A value, never an exception: the bytes come from a guest. */
export interface ChannelDecodeError {
  code: 'too-short' | 'too-long' | 'unsupported-type' | 'bad-length';
  /** MessageType @0, or -1 when the message is shorter than its header. */
  messageType: number;
  length: number;
}

export type ChannelDecodeResult = { ok: true; message: ChannelMessage } | { ok: false; error: ChannelDecodeError };
