/**
 * A netvsp channel's saved state: field-numbered protobuf with a format number. What a channel
 * keeps between guest packets: the NVSP version, the NDIS config (frame size) and version, the
 * receive buffer (its GPADL, pages, transfer-page set id, the geometry the host answered and the
 * packets the guest has not completed yet, each as its sub-allocation slots — the first one is
 * its transaction id), the send buffer (GPADL, pages, sections), the RNDIS state, packet filter
 * and the link state the guest was told, and the MAC; the sub-channels granted, the RSS
 * configuration the guest set, and for each receive packet in flight the channel it went out on.
 * A sub-channel's own state is only its index (it shares everything with its primary).
 * Transmissions keep nothing: each is completed inside the drain that read it, and a save is
 * never taken inside a drain.
 *
 * Decoding checks every value against this build (versions, geometry as the host computes it,
 * slots within the buffer and held once); what depends on the VM (the MAC, jumbo frames, pages
 * inside guest memory) is checked by NetVsp.restoreChannel. Nothing is applied here.
 */
import protobuf from 'protobufjs';
import { HvError } from '../../../hypervisor/hv-error.ts';
import {
  MAX_FRAMES_PER_RECEIVE_PACKET,
  MAX_NETVSP_CHANNELS,
  NvspVersion,
  RECEIVE_HEADER_ROOM,
  RECEIVE_TAIL_UNUSABLE,
  RESERVED_CONTROL_SUBALLOCS,
  SEND_SECTION_SIZE,
  SUPPORTED_NVSP_VERSIONS,
} from './nvsp-protocol.ts';
import { checkInFlight } from './receive-suballocs.ts';
import { KNOWN_PACKET_FILTER_BITS } from './rndis-device.ts';
import { type RssConfig, checkRssConfig } from './rss-parameters.ts';

export const NETVSP_SAVED_STATE_FORMAT = 1;
/** The largest receive or send buffer a channel takes (Linux's largest receive buffer is 31 MiB). */
export const MAX_NETVSP_BUFFER_BYTES = 32 * 1024 * 1024;
/** Frame sizes a channel can have agreed: 1514, or up to 9014 with jumbo frames (MTU 9000). */
export const STANDARD_FRAME_BYTES = 1514;
export const JUMBO_FRAME_BYTES = 9014;

const SCHEMA = `
syntax = "proto3";
package tsvisor.netvsp.v1;

message Packet {
  repeated uint32 slots = 1;
  // The channel (sub_channel_index) it went out on; 0 the primary.
  uint32 channel = 2;
}

message Rss {
  uint32 hash_types = 1;
  bytes key = 2;
  // Channel per entry.
  bytes table = 3;
}

message ReceiveBuffer {
  uint32 gpadl = 1;
  uint32 transfer_page_set_id = 2;
  uint32 sub_alloc_size = 3;
  uint32 sub_alloc_count = 4;
  repeated uint32 pages = 5;
  repeated Packet in_flight = 6;
}

message SendBuffer {
  uint32 gpadl = 1;
  uint32 sections = 2;
  repeated uint32 pages = 3;
}

message NetvspChannel {
  uint32 format = 1;
  uint32 nvsp_version = 2;
  bool ndis_config_seen = 3;
  uint32 max_frame_bytes = 4;
  bool has_ndis_version = 5;
  uint32 ndis_major = 6;
  uint32 ndis_minor = 7;
  ReceiveBuffer receive = 8;
  SendBuffer send = 9;
  // 0 uninitialized, 1 initialized, 2 halted
  uint32 rndis_state = 10;
  uint32 packet_filter = 11;
  // The link state the guest was last told (MEDIA_CONNECT / MEDIA_DISCONNECT).
  bool link_up = 12;
  bytes mac = 13;
  uint32 sub_channels_granted = 14;
  Rss rss = 15;
  // Non-zero: this record is sub-channel n's, and nothing else is set.
  uint32 sub_channel_index = 16;
}
`;

const ChannelType = protobuf.parse(SCHEMA).root.lookupType('tsvisor.netvsp.v1.NetvspChannel');
export const RNDIS_STATES = ['uninitialized', 'initialized', 'halted'] as const;
export type RndisState = (typeof RNDIS_STATES)[number];

export interface NetVspSavedChannel {
  /** 0 before INIT. */
  version: number;
  ndisConfigSeen: boolean;
  maxFrameBytes: number;
  ndisVersion: { major: number; minor: number } | undefined;
  receive: { gpadl: number; id: number; subAllocSize: number; count: number; pages: number[]; inFlight: number[][]; inFlightChannels: number[] } | undefined;
  send: { gpadl: number; sections: number; pages: number[] } | undefined;
  rndis: { state: RndisState; packetFilter: number; linkUp: boolean };
  mac: Uint8Array;
  subChannelsGranted: number;
  rss: RssConfig | null;
}

export function encodeNetVspSubChannel(index: number): Uint8Array {
  return ChannelType.encode(ChannelType.fromObject({ format: NETVSP_SAVED_STATE_FORMAT, subChannelIndex: index })).finish();
}

/** A sub-channel's record: its index (≥ 1), checked to carry nothing else. */
export function decodeNetVspSubChannel(bytes: Uint8Array): number {
  const o = decodeRaw(bytes);
  if (o.subChannelIndex === 0) throw netvspStateError('a primary channel record where a sub-channel record belongs');
  if (o.subChannelIndex >= MAX_NETVSP_CHANNELS) throw netvspStateError(`sub-channel index ${o.subChannelIndex} (below ${MAX_NETVSP_CHANNELS})`);
  // Only the fields set on the wire (proto3 leaves defaults out): the format and the index.
  const present = Object.keys(ChannelType.toObject(ChannelType.decode(bytes)));
  if (present.some((k) => k !== 'format' && k !== 'subChannelIndex')) throw netvspStateError(`sub-channel ${o.subChannelIndex}'s record carries channel state`);
  return o.subChannelIndex;
}

export function encodeNetVspChannel(s: NetVspSavedChannel): Uint8Array {
  return ChannelType.encode(
    ChannelType.fromObject({
      format: NETVSP_SAVED_STATE_FORMAT,
      nvspVersion: s.version,
      ndisConfigSeen: s.ndisConfigSeen,
      maxFrameBytes: s.maxFrameBytes,
      hasNdisVersion: s.ndisVersion !== undefined,
      ndisMajor: s.ndisVersion?.major ?? 0,
      ndisMinor: s.ndisVersion?.minor ?? 0,
      receive: s.receive && {
        gpadl: s.receive.gpadl,
        transferPageSetId: s.receive.id,
        subAllocSize: s.receive.subAllocSize,
        subAllocCount: s.receive.count,
        pages: s.receive.pages,
        inFlight: s.receive.inFlight.map((slots, i) => ({ slots, channel: s.receive!.inFlightChannels[i] ?? 0 })),
      },
      send: s.send && { gpadl: s.send.gpadl, sections: s.send.sections, pages: s.send.pages },
      rndisState: RNDIS_STATES.indexOf(s.rndis.state),
      packetFilter: s.rndis.packetFilter,
      linkUp: s.rndis.linkUp,
      mac: s.mac,
      subChannelsGranted: s.subChannelsGranted,
      rss: s.rss && { hashTypes: s.rss.hashTypes, key: s.rss.key, table: s.rss.table },
    }),
  ).finish();
}

export function netvspStateError(what: string): HvError {
  return new HvError('NETVSP_BAD_SAVED_STATE', `netvsp saved state: ${what}`);
}

interface Raw {
  format: number;
  nvspVersion: number;
  ndisConfigSeen: boolean;
  maxFrameBytes: number;
  hasNdisVersion: boolean;
  ndisMajor: number;
  ndisMinor: number;
  receive: {
    gpadl: number;
    transferPageSetId: number;
    subAllocSize: number;
    subAllocCount: number;
    pages: number[];
    inFlight: { slots: number[]; channel: number }[];
  } | null;
  send: { gpadl: number; sections: number; pages: number[] } | null;
  rndisState: number;
  packetFilter: number;
  linkUp: boolean;
  mac: Uint8Array;
  subChannelsGranted: number;
  rss: { hashTypes: number; key: Uint8Array; table: Uint8Array } | null;
  subChannelIndex: number;
}

function decodeRaw(bytes: Uint8Array): Raw {
  let o: Raw;
  try {
    o = ChannelType.toObject(ChannelType.decode(bytes), { defaults: true, arrays: true }) as Raw;
  } catch (e) {
    throw netvspStateError(`undecodable (${e instanceof Error ? e.message : String(e)})`);
  }
  if (o.format !== NETVSP_SAVED_STATE_FORMAT) throw netvspStateError(`format ${o.format} is not supported (this build reads ${NETVSP_SAVED_STATE_FORMAT})`);
  return o;
}

/** Decodes and checks against this build; throws NETVSP_BAD_SAVED_STATE naming the field. */
export function decodeNetVspChannel(bytes: Uint8Array): NetVspSavedChannel {
  const bad = netvspStateError;
  const o = decodeRaw(bytes);
  if (o.subChannelIndex !== 0) throw bad(`sub-channel ${o.subChannelIndex}'s record where a primary channel record belongs`);
  const version = o.nvspVersion;
  if (version !== 0 && !SUPPORTED_NVSP_VERSIONS.includes(version)) throw bad(`NVSP version 0x${version.toString(16)} is not one this host speaks`);
  const mac = Uint8Array.from(o.mac);
  if (mac.length !== 6) throw bad(`a MAC of ${mac.length} bytes`);
  const state = RNDIS_STATES[o.rndisState];
  if (state === undefined) throw bad(`RNDIS state ${o.rndisState}`);
  if ((o.packetFilter & ~KNOWN_PACKET_FILTER_BITS) !== 0) throw bad(`packet filter 0x${o.packetFilter.toString(16)} has bits this host does not keep`);
  const frame = o.maxFrameBytes;
  if (frame !== STANDARD_FRAME_BYTES && !(frame > STANDARD_FRAME_BYTES && frame <= JUMBO_FRAME_BYTES && o.ndisConfigSeen)) {
    throw bad(`frame size ${frame} (1514, or up to 9014 after an NDIS config)`);
  }
  if (version === 0 && (o.ndisConfigSeen || o.hasNdisVersion || o.receive || o.send || state !== 'uninitialized')) throw bad('channel state before NVSP INIT');
  if (!o.hasNdisVersion && (o.ndisMajor !== 0 || o.ndisMinor !== 0)) throw bad('an NDIS version without one announced');
  if (o.receive && version >= NvspVersion.V2 && !o.ndisConfigSeen) throw bad('a receive buffer without the NDIS config NVSP 2 requires first');
  if (o.send && !o.receive) throw bad('a send buffer without a receive buffer');
  if (!o.receive && (state !== 'uninitialized' || o.packetFilter !== 0))
    throw bad(`RNDIS ${state} with filter 0x${o.packetFilter.toString(16)} before the receive buffer`);
  if (state !== 'initialized' && o.packetFilter !== 0) throw bad(`packet filter 0x${o.packetFilter.toString(16)} while RNDIS is ${state}`);

  let receive: NetVspSavedChannel['receive'];
  if (o.receive) {
    const r = o.receive;
    const pages = checkPages('receive', r.pages);
    const subAllocSize = RECEIVE_HEADER_ROOM + frame + RECEIVE_TAIL_UNUSABLE;
    if (r.subAllocSize !== subAllocSize)
      throw bad(`receive sub-allocations of ${r.subAllocSize} bytes for ${frame}-byte frames (this host makes them ${subAllocSize})`);
    const count = Math.floor((pages.length * 4096) / subAllocSize);
    if (r.subAllocCount !== count || count <= RESERVED_CONTROL_SUBALLOCS)
      throw bad(`${r.subAllocCount} receive sub-allocations in ${pages.length} pages (this host makes ${count}, more than ${RESERVED_CONTROL_SUBALLOCS})`);
    if (r.transferPageSetId > 0xffff) throw bad(`transfer-page set id ${r.transferPageSetId} is not 16-bit`);
    const inFlight = r.inFlight.map((p) => p.slots.slice());
    const why = checkInFlight(count, RESERVED_CONTROL_SUBALLOCS, MAX_FRAMES_PER_RECEIVE_PACKET, inFlight);
    if (why) throw bad(`receive packets in flight: ${why}`);
    const inFlightChannels = r.inFlight.map((p) => p.channel);
    for (const [i, p] of r.inFlight.entries()) {
      if (p.channel > o.subChannelsGranted) throw bad(`receive packet ${i} on channel ${p.channel}; ${o.subChannelsGranted} sub-channel(s) granted`);
      if (p.channel !== 0 && p.slots[0]! < RESERVED_CONTROL_SUBALLOCS) throw bad(`control packet ${i} on sub-channel ${p.channel}`);
    }
    receive = { gpadl: r.gpadl, id: r.transferPageSetId, subAllocSize, count, pages, inFlight, inFlightChannels };
  }
  let send: NetVspSavedChannel['send'];
  if (o.send) {
    const pages = checkPages('send', o.send.pages);
    const sections = Math.floor((pages.length * 4096) / SEND_SECTION_SIZE);
    if (o.send.sections !== sections || sections === 0) throw bad(`${o.send.sections} send sections in ${pages.length} pages (this host makes ${sections})`);
    send = { gpadl: o.send.gpadl, sections, pages };
  }
  const granted = o.subChannelsGranted;
  if (granted >= MAX_NETVSP_CHANNELS) throw bad(`${granted} sub-channels granted (below ${MAX_NETVSP_CHANNELS})`);
  if (granted > 0 && (!receive || version < NvspVersion.V5)) throw bad(`${granted} sub-channels granted without a receive buffer at NVSP 5 or later`);
  if (receive && granted > receive.count - RESERVED_CONTROL_SUBALLOCS - 1)
    throw bad(`${granted} sub-channels granted for ${receive.count} receive sub-allocations`);
  let rss: RssConfig | null = null;
  if (o.rss) {
    if (state !== 'initialized') throw bad(`RSS set while RNDIS is ${state}`);
    rss = { hashTypes: o.rss.hashTypes, key: Uint8Array.from(o.rss.key), table: Uint8Array.from(o.rss.table) };
    const why = checkRssConfig(rss, 1 + granted);
    if (why) throw bad(`RSS: ${why}`);
  }
  return {
    version,
    ndisConfigSeen: o.ndisConfigSeen,
    maxFrameBytes: frame,
    ndisVersion: o.hasNdisVersion ? { major: o.ndisMajor, minor: o.ndisMinor } : undefined,
    receive,
    send,
    rndis: { state, packetFilter: o.packetFilter, linkUp: o.linkUp },
    mac,
    subChannelsGranted: granted,
    rss,
  };
}

function checkPages(which: string, pages: number[]): number[] {
  const max = MAX_NETVSP_BUFFER_BYTES / 4096;
  if (pages.length === 0 || pages.length > max) throw netvspStateError(`a ${which} buffer of ${pages.length} pages (1..${max})`);
  return pages.slice();
}
