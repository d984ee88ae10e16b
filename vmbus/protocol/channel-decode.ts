/**
 * Decoder for VMBus channel messages. The input may be a view of shared guest memory: the
 * decoder copies it first, so a guest changing the bytes while we look cannot make the checks
 * and the use disagree. It never throws on any input; a bad message is a ChannelDecodeError.
 * Messages may be longer than their fixed layout (OpenVMM accepts trailing bytes, e.g.
 * OpenChannel2 after OPENCHANNEL); never longer than one SynIC payload (240 bytes).
 */
import * as C from './channel-constants.ts';
import type { ChannelDecodeError, ChannelDecodeResult, ChannelMessage } from './channel-messages.ts';
import { guidFromBytes } from './guid.ts';

const T = C.ChannelMessageType;

/** Minimum size (header included) of each message type this codec knows. */
const MIN_SIZE = new Map<number, number>([
  [T.OfferChannel, C.OFFER_CHANNEL_SIZE],
  [T.RescindChannelOffer, C.RELID_MESSAGE_SIZE],
  [T.RequestOffers, C.CHANNEL_HEADER_SIZE],
  [T.AllOffersDelivered, C.CHANNEL_HEADER_SIZE],
  [T.OpenChannel, C.OPEN_CHANNEL_SIZE],
  [T.OpenChannelResult, C.OPEN_CHANNEL_RESULT_SIZE],
  [T.CloseChannel, C.RELID_MESSAGE_SIZE],
  [T.GpadlHeader, C.GPADL_HEADER_FIXED_SIZE + C.GPADL_RANGE_FIXED_SIZE],
  [T.GpadlBody, C.GPADL_BODY_FIXED_SIZE],
  [T.GpadlCreated, C.GPADL_CREATED_SIZE],
  [T.GpadlTeardown, C.GPADL_TEARDOWN_SIZE],
  [T.GpadlTorndown, C.GPADL_TORNDOWN_SIZE],
  [T.RelidReleased, C.RELID_MESSAGE_SIZE],
  [T.InitiateContact, C.INITIATE_CONTACT_SIZE],
  [T.VersionResponse, C.VERSION_RESPONSE_SIZE],
  [T.Unload, C.CHANNEL_HEADER_SIZE],
  [T.UnloadResponse, C.CHANNEL_HEADER_SIZE],
]);

function fail(code: ChannelDecodeError['code'], messageType: number, length: number): ChannelDecodeResult {
  return { ok: false, error: { code, messageType, length } };
}

function readPfns(view: DataView, from: number, to: number): bigint[] {
  const pfns: bigint[] = [];
  for (let at = from; at + 8 <= to; at += 8) pfns.push(view.getBigUint64(at, true));
  return pfns;
}

/** Decodes one channel message (the SynIC payload, PayloadSize bytes). */
export function decodeChannelMessage(input: Uint8Array): ChannelDecodeResult {
  const length = input.length;
  if (length > C.VMBUS_MAX_MESSAGE_SIZE) return fail('too-long', -1, length);
  // Private copy (see the file comment); not input.slice(), which shares memory for a Buffer.
  const bytes = new Uint8Array(input);
  const view = new DataView(bytes.buffer);
  if (length < C.CHANNEL_HEADER_SIZE) return fail('too-short', -1, length);
  const type = view.getUint32(0, true);
  const min = MIN_SIZE.get(type);
  if (min === undefined) return fail('unsupported-type', type, length);
  if (length < min) return fail('too-short', type, length);
  const u32 = (at: number) => view.getUint32(at, true);
  const m = decodeKnown(type, bytes, view, u32);
  return m === null ? fail('bad-length', type, length) : { ok: true, message: m };
}

function decodeKnown(type: number, bytes: Uint8Array, view: DataView, u32: (at: number) => number): ChannelMessage | null {
  const length = bytes.length;
  switch (type) {
    case T.InitiateContact: {
      const version = u32(8);
      const modern = version >= C.VmbusVersion.Win10V5;
      return {
        type,
        version,
        targetVcpu: u32(12),
        interruptPage: modern ? 0n : view.getBigUint64(16, true),
        msgSint: modern ? view.getUint8(16) : 0,
        msgVtl: modern ? view.getUint8(17) : 0,
        featureFlags: modern ? u32(20) : 0,
        monitorPage1: view.getBigUint64(24, true),
        monitorPage2: view.getBigUint64(32, true),
        clientId: length >= C.INITIATE_CONTACT_CLIENT_ID_SIZE ? guidFromBytes(bytes, 40) : null,
      };
    }
    case T.VersionResponse:
      return {
        type,
        versionSupported: view.getUint8(8),
        connectionState: view.getUint8(9),
        msgConnId: u32(12),
        supportedFeatures: length >= C.VERSION_RESPONSE_COPPER_SIZE ? u32(16) : null,
      };
    case T.OfferChannel:
      return {
        type,
        ifType: guidFromBytes(bytes, 8),
        ifInstance: guidFromBytes(bytes, 24),
        flags: view.getUint16(56, true),
        mmioMegabytes: view.getUint16(58, true),
        userDefined: bytes.slice(60, 60 + C.OFFER_USER_DEFINED_SIZE),
        subChannelIndex: view.getUint16(180, true),
        mmioMegabytesOptional: view.getUint16(182, true),
        childRelid: u32(184),
        monitorId: view.getUint8(188),
        monitorAllocated: (view.getUint8(189) & 1) !== 0,
        isDedicatedInterrupt: (view.getUint16(190, true) & 1) !== 0,
        connectionId: u32(192),
      };
    case T.RescindChannelOffer:
    case T.CloseChannel:
    case T.RelidReleased:
      return { type, childRelid: u32(8) };
    case T.RequestOffers:
    case T.AllOffersDelivered:
    case T.Unload:
    case T.UnloadResponse:
      return { type };
    case T.OpenChannel:
      return {
        type,
        childRelid: u32(8),
        openId: u32(12),
        ringGpadlHandle: u32(16),
        targetVp: u32(20),
        downstreamRingPageOffset: u32(24),
        userData: bytes.slice(28, 28 + C.OPEN_CHANNEL_USERDATA_SIZE),
      };
    case T.OpenChannelResult:
      return { type, childRelid: u32(8), openId: u32(12), status: u32(16) };
    case T.GpadlHeader: {
      const at = C.GPADL_HEADER_FIXED_SIZE + C.GPADL_RANGE_FIXED_SIZE;
      if ((length - at) % 8 !== 0) return null;
      return {
        type,
        childRelid: u32(8),
        gpadl: u32(12),
        rangeBufLen: view.getUint16(16, true),
        rangeCount: view.getUint16(18, true),
        byteCount: u32(20),
        byteOffset: u32(24),
        pfns: readPfns(view, at, length),
      };
    }
    case T.GpadlBody:
      if ((length - C.GPADL_BODY_FIXED_SIZE) % 8 !== 0) return null;
      return { type, msgNumber: u32(8), gpadl: u32(12), pfns: readPfns(view, C.GPADL_BODY_FIXED_SIZE, length) };
    case T.GpadlCreated:
      return { type, childRelid: u32(8), gpadl: u32(12), status: u32(16) };
    case T.GpadlTeardown:
      return { type, childRelid: u32(8), gpadl: u32(12) };
    case T.GpadlTorndown:
      return { type, gpadl: u32(8) };
  }
  return null;
}
