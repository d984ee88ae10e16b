/**
 * Transmit checksum offload over IPv4 (NDIS TCPIP_CHKSUM_INFO; Linux hyperv_net.h
 * ndis_tcp_ip_checksum_info, netvsc_drv.c netvsc_xmit): the host computes the IPv4 header, TCP
 * and UDP checksums of a frame whose checksum PPI asks for them. The capabilities say so
 * (NDIS_OFFLOAD revision 1, IPv4 transmit only); nothing is claimed on receive, where the PPI
 * stays zero and the guest checks for itself. The frame is the host's private copy; every offset
 * in it is checked before a byte is written.
 */

/** TCPIP_CHKSUM_INFO transmit bits (Linux ndis_tcp_ip_checksum_info.transmit). */
export const ChecksumRequest = { IsIpv4: 0x1, IsIpv6: 0x2, Tcp: 0x4, Udp: 0x8, IpHeader: 0x10 } as const;
/** NDIS_OFFLOAD IPv4 transmit flags: IP options 0x1, TCP options 0x4, TCP 0x10, UDP 0x40, IP header 0x100. */
export const IPV4_TRANSMIT_OFFLOAD = 0x1 | 0x4 | 0x10 | 0x40 | 0x100;
const ENCAPSULATION_IEEE_802_3 = 2;

/** OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES: NDIS_OFFLOAD revision 1 (112 bytes), IPv4 transmit checksums only. */
export function encodeOffloadCapabilities(): Uint8Array {
  const b = new Uint8Array(112);
  const v = new DataView(b.buffer);
  b[0] = 0xa7;
  b[1] = 1;
  v.setUint16(2, 112, true);
  v.setUint32(4, ENCAPSULATION_IEEE_802_3, true);
  v.setUint32(8, IPV4_TRANSMIT_OFFLOAD, true);
  return b;
}

/** The one's-complement sum of `bytes` (big-endian 16-bit words) added to `sum`, not folded. */
function sum16(bytes: Uint8Array, start: number, end: number, sum: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/**
 * Fills in the checksums `info` asks for (null: done or nothing asked), or says why it cannot: not
 * IPv4, a header or transport offset that does not fit the frame, a protocol that is not the one
 * asked for. A refused frame is left as it was.
 */
export function applyTransmitChecksums(frame: Uint8Array, info: number): string | null {
  const wants = info & (ChecksumRequest.Tcp | ChecksumRequest.Udp | ChecksumRequest.IpHeader);
  if (wants === 0) return null;
  if (!(info & ChecksumRequest.IsIpv4) || info & ChecksumRequest.IsIpv6) return 'checksum offload is offered for IPv4 only';
  if (info & ChecksumRequest.Tcp && info & ChecksumRequest.Udp) return 'checksum PPI asks for both TCP and UDP';
  if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) return 'checksum PPI on a frame that is not IPv4';
  const ihl = (frame[14]! & 0x0f) * 4;
  const totalLength = (frame[16]! << 8) | frame[17]!;
  if (frame[14]! >> 4 !== 4 || ihl < 20 || totalLength < ihl || 14 + totalLength > frame.length) return 'checksum PPI on a malformed IPv4 header';
  let l4: { at: number; length: number; field: number } | null = null;
  if (wants & (ChecksumRequest.Tcp | ChecksumRequest.Udp)) {
    const udp = (info & ChecksumRequest.Udp) !== 0;
    const at = (info >>> 16) & 0x3ff;
    if (at !== 14 + ihl) return `transport header offset ${at} is not where the IPv4 header ends (${14 + ihl})`;
    if (frame[23] !== (udp ? 17 : 6)) return `checksum PPI asks for ${udp ? 'UDP' : 'TCP'} on IP protocol ${frame[23]}`;
    const length = totalLength - ihl;
    if (length < (udp ? 8 : 20)) return `${udp ? 'UDP' : 'TCP'} segment of ${length} bytes`;
    l4 = { at, length, field: at + (udp ? 6 : 16) };
  }
  if (wants & ChecksumRequest.IpHeader) {
    frame[24] = 0;
    frame[25] = 0;
    const c = fold(sum16(frame, 14, 14 + ihl, 0));
    frame[24] = c >> 8;
    frame[25] = c & 0xff;
  }
  if (l4) {
    frame[l4.field] = 0;
    frame[l4.field + 1] = 0;
    // Pseudo-header (RFC 768, RFC 793): source and destination addresses, protocol, segment length.
    let sum = sum16(frame, 26, 34, 0) + frame[23]! + l4.length;
    sum = sum16(frame, l4.at, l4.at + l4.length, sum);
    let c = fold(sum);
    if (c === 0 && frame[23] === 17) c = 0xffff; // UDP sends a computed zero as all ones
    frame[l4.field] = c >> 8;
    frame[l4.field + 1] = c & 0xff;
  }
  return null;
}
