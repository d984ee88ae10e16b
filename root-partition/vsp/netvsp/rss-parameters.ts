/**
 * RSS over RNDIS (NDIS 6.x): OID_GEN_RECEIVE_SCALE_CAPABILITIES, what the host answers, and
 * OID_GEN_RECEIVE_SCALE_PARAMETERS, what the guest sets (Linux rndis_filter.c
 * rndis_set_rss_param_msg; FreeBSD hn_rndis.c; NDIS_RECEIVE_SCALE_CAPABILITIES / _PARAMETERS).
 * Every offset and length of the guest's structure is checked against the bytes it sent.
 */
import { NdisStatus } from './rndis-protocol.ts';

/** NDIS_HASH_* in NDIS_RECEIVE_SCALE_PARAMETERS.HashInformation (bits 7:0 are the function). */
export const RssHashType = {
  Ipv4: 0x100,
  TcpIpv4: 0x200,
  Ipv6: 0x400,
  TcpIpv6: 0x1000,
  UdpIpv4: 0x4000,
  UdpIpv6: 0x8000,
} as const;
export const KNOWN_RSS_HASH_TYPES = Object.values(RssHashType).reduce((a, b) => a | b, 0);
export const RSS_HASH_FUNCTION_TOEPLITZ = 1;
/** NDIS_RSS_CAPS_HASH_TYPE_* in NDIS_RECEIVE_SCALE_CAPABILITIES.CapabilitiesFlags (numbered apart from the hash types). */
export const RssCapability = { TcpIpv4: 0x100, TcpIpv6: 0x200, UdpIpv4: 0x800, UdpIpv6: 0x1000 } as const;
/** NDIS_RSS_PARAM_FLAG_*: keep what was set before, or switch RSS off. */
export const RssParamFlag = { HashInfoUnchanged: 0x2, TableUnchanged: 0x4, KeyUnchanged: 0x8, Disable: 0x10 } as const;
/** Linux NETVSC_HASH_KEYLEN; OpenVMM refuses any other size. */
export const RSS_KEY_BYTES = 40;
/** NDIS's largest indirection table; Linux sends ITAB_NUM = 128 entries. */
export const MAX_RSS_TABLE_ENTRIES = 128;
const RSS_PARAMETERS_TYPE = 0x89;
/** NDIS_SIZEOF_RECEIVE_SCALE_PARAMETERS_REVISION_1 (through HashSecretKeyOffset). */
const RSS_PARAMETERS_MIN_BYTES = 28;

/** What the guest enabled: Toeplitz over the enabled `hashTypes`, hash & (entries − 1) picks a table entry, the entry a channel. */
export interface RssConfig {
  hashTypes: number;
  key: Uint8Array;
  table: Uint8Array;
}

/**
 * NDIS_RECEIVE_SCALE_CAPABILITIES revision 2 (18 bytes): Toeplitz with TCP and UDP over IPv4 and
 * IPv6, one interrupt message, `queues` receive queues, 128 table entries (never 0: OpenVMM notes
 * DPDK needs it).
 */
export function encodeRssCapabilities(queues: number): Uint8Array {
  const b = new Uint8Array(18);
  const dv = new DataView(b.buffer);
  b[0] = 0x88;
  b[1] = 2;
  dv.setUint16(2, 18, true);
  dv.setUint32(4, RSS_HASH_FUNCTION_TOEPLITZ | RssCapability.TcpIpv4 | RssCapability.TcpIpv6 | RssCapability.UdpIpv4 | RssCapability.UdpIpv6, true);
  dv.setUint32(8, 1, true);
  dv.setUint32(12, queues, true);
  dv.setUint16(16, MAX_RSS_TABLE_ENTRIES, true);
  return b;
}

export type RssSetResult = { status: typeof NdisStatus.Success; rss: RssConfig | null } | { status: number; why: string };

/**
 * Decodes OID_GEN_RECEIVE_SCALE_PARAMETERS against `channels` open-able channels (1 + the
 * sub-channels granted) and the configuration in force (`previous`, for the UNCHANGED flags).
 * rss null: RSS off (the disable flag or hash function 0), every frame to the primary channel.
 */
export function decodeRssParameters(data: Uint8Array, channels: number, previous: RssConfig | null): RssSetResult {
  const bad = (status: number, why: string): RssSetResult => ({ status, why });
  if (data.length < RSS_PARAMETERS_MIN_BYTES)
    return bad(NdisStatus.InvalidLength, `RSS parameters of ${data.length} bytes (at least ${RSS_PARAMETERS_MIN_BYTES})`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const size = dv.getUint16(2, true);
  if (data[0] !== RSS_PARAMETERS_TYPE) return bad(NdisStatus.InvalidData, `object type 0x${data[0]!.toString(16)} is not RSS parameters (0x89)`);
  if (size < RSS_PARAMETERS_MIN_BYTES || size > data.length)
    return bad(NdisStatus.InvalidLength, `object size ${size} outside ${RSS_PARAMETERS_MIN_BYTES}..${data.length}`);
  const flags = dv.getUint16(4, true);
  const hashInfo = dv.getUint32(8, true);
  const fn = flags & RssParamFlag.HashInfoUnchanged ? (previous ? RSS_HASH_FUNCTION_TOEPLITZ : 0) : hashInfo & 0xff;
  if (flags & RssParamFlag.Disable || fn === 0) return { status: NdisStatus.Success, rss: null };
  if (fn !== RSS_HASH_FUNCTION_TOEPLITZ) return bad(NdisStatus.InvalidData, `hash function ${fn} (only Toeplitz, 1)`);
  const hashTypes = flags & RssParamFlag.HashInfoUnchanged ? previous!.hashTypes : hashInfo & KNOWN_RSS_HASH_TYPES;

  let table: Uint8Array;
  if (flags & RssParamFlag.TableUnchanged) {
    if (!previous) return bad(NdisStatus.InvalidData, 'indirection table "unchanged" with none set');
    table = previous.table.slice();
  } else {
    const bytes = dv.getUint16(12, true);
    const offset = dv.getUint32(16, true);
    const entries = bytes / 4;
    if (bytes === 0 || bytes % 4 !== 0 || entries > MAX_RSS_TABLE_ENTRIES || (entries & (entries - 1)) !== 0)
      return bad(NdisStatus.InvalidLength, `indirection table of ${bytes} bytes (4 × a power of two ≤ ${MAX_RSS_TABLE_ENTRIES})`);
    if (offset < size || offset + bytes > data.length)
      return bad(NdisStatus.InvalidLength, `indirection table at ${offset}..${offset + bytes} outside the ${data.length}-byte message's data (${size}..)`);
    table = new Uint8Array(entries);
    for (let i = 0; i < entries; i++) {
      const channel = dv.getUint32(offset + 4 * i, true);
      if (channel >= channels) return bad(NdisStatus.InvalidData, `indirection entry ${i} names channel ${channel}; there are ${channels}`);
      table[i] = channel;
    }
  }
  let key: Uint8Array;
  if (flags & RssParamFlag.KeyUnchanged) {
    if (!previous) return bad(NdisStatus.InvalidData, 'hash key "unchanged" with none set');
    key = previous.key.slice();
  } else {
    const bytes = dv.getUint16(20, true);
    const offset = dv.getUint32(24, true);
    if (bytes !== RSS_KEY_BYTES) return bad(NdisStatus.InvalidLength, `hash key of ${bytes} bytes (${RSS_KEY_BYTES})`);
    if (offset < size || offset + bytes > data.length)
      return bad(NdisStatus.InvalidLength, `hash key at ${offset}..${offset + bytes} outside the ${data.length}-byte message's data (${size}..)`);
    key = data.slice(offset, offset + bytes);
  }
  return { status: NdisStatus.Success, rss: { hashTypes, key, table } };
}

/** Why `rss` cannot be a configuration for `channels` channels, or null (saved states). */
export function checkRssConfig(rss: RssConfig, channels: number): string | null {
  if (rss.key.length !== RSS_KEY_BYTES) return `a hash key of ${rss.key.length} bytes`;
  const n = rss.table.length;
  if (n === 0 || n > MAX_RSS_TABLE_ENTRIES || (n & (n - 1)) !== 0) return `an indirection table of ${n} entries`;
  if ((rss.hashTypes & ~KNOWN_RSS_HASH_TYPES) !== 0) return `hash types 0x${rss.hashTypes.toString(16)}`;
  const over = rss.table.findIndex((c) => c >= channels);
  return over >= 0 ? `indirection entry ${over} names channel ${rss.table[over]}; there are ${channels}` : null;
}
