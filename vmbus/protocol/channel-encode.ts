/**
 * Encoders for VMBus channel messages (layouts: Linux include/linux/hyperv.h —
 * all structs there are packed, so offsets are exact). Each returns a fresh buffer of the
 * message's wire size, ready to be the payload of a type-1 SynIC message.
 */
import * as C from './channel-constants.ts';
import type { ChannelMessage, InitiateContact, OfferChannel, OpenChannel, VersionResponse } from './channel-messages.ts';
import { guidLiteral } from './guid.ts';

const T = C.ChannelMessageType;

function message(type: number, size: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  return { bytes, view };
}

function copyFixed(dst: Uint8Array, at: number, src: Uint8Array, size: number): void {
  dst.set(src.subarray(0, size), at);
}

function initiateContact(m: InitiateContact): Uint8Array {
  const size = m.clientId === null ? C.INITIATE_CONTACT_SIZE : C.INITIATE_CONTACT_CLIENT_ID_SIZE;
  const { bytes, view } = message(T.InitiateContact, size);
  view.setUint32(8, m.version, true);
  view.setUint32(12, m.targetVcpu, true);
  if (m.version >= C.VmbusVersion.Win10V5) {
    view.setUint8(16, m.msgSint);
    view.setUint8(17, m.msgVtl);
    view.setUint32(20, m.featureFlags, true);
  } else {
    view.setBigUint64(16, m.interruptPage, true);
  }
  view.setBigUint64(24, m.monitorPage1, true);
  view.setBigUint64(32, m.monitorPage2, true);
  if (m.clientId !== null) bytes.set(guidLiteral(m.clientId), 40);
  return bytes;
}

function versionResponse(m: VersionResponse): Uint8Array {
  const size = m.supportedFeatures === null ? C.VERSION_RESPONSE_SIZE : C.VERSION_RESPONSE_COPPER_SIZE;
  const { bytes, view } = message(T.VersionResponse, size);
  view.setUint8(8, m.versionSupported);
  view.setUint8(9, m.connectionState);
  view.setUint32(12, m.msgConnId, true);
  if (m.supportedFeatures !== null) view.setUint32(16, m.supportedFeatures, true);
  return bytes;
}

function offerChannel(m: OfferChannel): Uint8Array {
  const { bytes, view } = message(T.OfferChannel, C.OFFER_CHANNEL_SIZE);
  bytes.set(guidLiteral(m.ifType), 8);
  bytes.set(guidLiteral(m.ifInstance), 24);
  view.setUint16(56, m.flags, true);
  view.setUint16(58, m.mmioMegabytes, true);
  copyFixed(bytes, 60, m.userDefined, C.OFFER_USER_DEFINED_SIZE);
  view.setUint16(180, m.subChannelIndex, true);
  view.setUint16(182, m.mmioMegabytesOptional, true);
  view.setUint32(184, m.childRelid, true);
  view.setUint8(188, m.monitorId);
  view.setUint8(189, m.monitorAllocated ? 1 : 0);
  view.setUint16(190, m.isDedicatedInterrupt ? 1 : 0, true);
  view.setUint32(192, m.connectionId, true);
  return bytes;
}

function openChannel(m: OpenChannel): Uint8Array {
  const { bytes, view } = message(T.OpenChannel, C.OPEN_CHANNEL_SIZE);
  view.setUint32(8, m.childRelid, true);
  view.setUint32(12, m.openId, true);
  view.setUint32(16, m.ringGpadlHandle, true);
  view.setUint32(20, m.targetVp, true);
  view.setUint32(24, m.downstreamRingPageOffset, true);
  copyFixed(bytes, 28, m.userData, C.OPEN_CHANNEL_USERDATA_SIZE);
  return bytes;
}

function u32Fields(type: number, size: number, fields: number[]): Uint8Array {
  const { bytes, view } = message(type, size);
  fields.forEach((v, i) => view.setUint32(8 + 4 * i, v, true));
  return bytes;
}

/** Encodes any channel message. Throws only on programming errors (a malformed GUID literal). */
export function encodeChannelMessage(m: ChannelMessage): Uint8Array {
  switch (m.type) {
    case T.InitiateContact:
      return initiateContact(m);
    case T.VersionResponse:
      return versionResponse(m);
    case T.OfferChannel:
      return offerChannel(m);
    case T.OpenChannel:
      return openChannel(m);
    case T.RescindChannelOffer:
    case T.CloseChannel:
    case T.RelidReleased:
      return u32Fields(m.type, C.RELID_MESSAGE_SIZE, [m.childRelid]);
    case T.RequestOffers:
    case T.AllOffersDelivered:
    case T.Unload:
    case T.UnloadResponse:
      return u32Fields(m.type, C.CHANNEL_HEADER_SIZE, []);
    case T.OpenChannelResult:
      return u32Fields(m.type, C.OPEN_CHANNEL_RESULT_SIZE, [m.childRelid, m.openId, m.status]);
    case T.GpadlCreated:
      return u32Fields(m.type, C.GPADL_CREATED_SIZE, [m.childRelid, m.gpadl, m.status]);
    case T.GpadlTeardown:
      return u32Fields(m.type, C.GPADL_TEARDOWN_SIZE, [m.childRelid, m.gpadl]);
    case T.GpadlTorndown:
      return u32Fields(m.type, C.GPADL_TORNDOWN_SIZE, [m.gpadl]);
    case T.GpadlHeader: {
      const at = C.GPADL_HEADER_FIXED_SIZE + C.GPADL_RANGE_FIXED_SIZE;
      const { bytes, view } = message(m.type, at + 8 * m.pfns.length);
      view.setUint32(8, m.childRelid, true);
      view.setUint32(12, m.gpadl, true);
      view.setUint16(16, m.rangeBufLen, true);
      view.setUint16(18, m.rangeCount, true);
      view.setUint32(20, m.byteCount, true);
      view.setUint32(24, m.byteOffset, true);
      m.pfns.forEach((pfn, i) => view.setBigUint64(at + 8 * i, pfn, true));
      return bytes;
    }
    case T.GpadlBody: {
      const at = C.GPADL_BODY_FIXED_SIZE;
      const { bytes, view } = message(m.type, at + 8 * m.pfns.length);
      view.setUint32(8, m.msgNumber, true);
      view.setUint32(12, m.gpadl, true);
      m.pfns.forEach((pfn, i) => view.setBigUint64(at + 8 * i, pfn, true));
      return bytes;
    }
  }
}

/**
 * Splits a single-range, page-aligned buffer into GPADL_HEADER + GPADL_BODY messages the way
 * Linux create_gpadl_header() does: up to 26 PFNs in the header, up to 28 per body, msgnumber 0.
 */
export function encodeGpadl(childRelid: number, gpadl: number, pfns: bigint[]): Uint8Array[] {
  const first = pfns.slice(0, C.GPADL_HEADER_MAX_PFNS);
  const out = [
    encodeChannelMessage({
      type: T.GpadlHeader,
      childRelid,
      gpadl,
      rangeBufLen: C.GPADL_RANGE_FIXED_SIZE + 8 * pfns.length,
      rangeCount: 1,
      byteCount: pfns.length * 4096,
      byteOffset: 0,
      pfns: first,
    }),
  ];
  for (let i = first.length; i < pfns.length; i += C.GPADL_BODY_MAX_PFNS) {
    out.push(
      encodeChannelMessage({
        type: T.GpadlBody,
        msgNumber: 0,
        gpadl,
        pfns: pfns.slice(i, i + C.GPADL_BODY_MAX_PFNS),
      }),
    );
  }
  return out;
}
