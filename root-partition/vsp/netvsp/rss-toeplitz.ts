/**
 * Receive-side scaling's hash as NDIS defines it ("RSS hashing functions", "Verifying the RSS
 * hash calculation" in the Windows driver docs; Linux netvsc sets the same key and types): the
 * Toeplitz hash of the received packet's source address, destination address, then (for TCP or
 * UDP when the guest enabled that type) source port and destination port, in network order.
 */
import { RssHashType } from './rss-parameters.ts';

/** Toeplitz hash of `input` under `key` (key ≥ input length + 4 bytes; NDIS keys are 40 bytes). */
export function toeplitzHash(key: Uint8Array, input: Uint8Array): number {
  let result = 0;
  // The 32-bit window of the key that lines up with the current input bit.
  let window = ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
  for (let i = 0; i < input.length; i++) {
    const next = key[i + 4] ?? 0;
    for (let bit = 7; bit >= 0; bit--) {
      if ((input[i]! >> bit) & 1) result = (result ^ window) >>> 0;
      window = ((window << 1) | ((next >> bit) & 1)) >>> 0;
    }
  }
  return result;
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/**
 * The bytes to hash for an Ethernet frame under the enabled hash `types`, or null when the
 * frame is nothing RSS hashes (not IP, a type the guest did not enable, truncated headers). An
 * IPv4 fragment and an IPv6 packet with extension headers hash on their addresses only.
 */
export function rssHashInput(frame: Uint8Array, types: number): Uint8Array | null {
  let l3 = 14;
  let etherType = (frame[12]! << 8) | frame[13]!;
  if (etherType === 0x8100 && frame.length >= 18) {
    etherType = (frame[16]! << 8) | frame[17]!;
    l3 = 18;
  }
  if (etherType === 0x0800) {
    if (!(types & (RssHashType.Ipv4 | RssHashType.TcpIpv4 | RssHashType.UdpIpv4)) || frame.length < l3 + 20) return null;
    const ihl = (frame[l3]! & 0x0f) * 4;
    if (frame[l3]! >> 4 !== 4 || ihl < 20) return null;
    const proto = frame[l3 + 9]!;
    const fragmented = (((frame[l3 + 6]! << 8) | frame[l3 + 7]!) & 0x3fff) !== 0;
    const l4 = l3 + ihl;
    const ports =
      !fragmented &&
      frame.length >= l4 + 4 &&
      ((proto === IPPROTO_TCP && types & RssHashType.TcpIpv4) || (proto === IPPROTO_UDP && types & RssHashType.UdpIpv4));
    if (ports) return concat(frame.subarray(l3 + 12, l3 + 20), frame.subarray(l4, l4 + 4));
    return types & RssHashType.Ipv4 ? frame.slice(l3 + 12, l3 + 20) : null;
  }
  if (etherType === 0x86dd) {
    if (!(types & (RssHashType.Ipv6 | RssHashType.TcpIpv6 | RssHashType.UdpIpv6)) || frame.length < l3 + 40) return null;
    const next = frame[l3 + 6]!;
    const l4 = l3 + 40;
    const ports = frame.length >= l4 + 4 && ((next === IPPROTO_TCP && types & RssHashType.TcpIpv6) || (next === IPPROTO_UDP && types & RssHashType.UdpIpv6));
    if (ports) return concat(frame.subarray(l3 + 8, l3 + 40), frame.subarray(l4, l4 + 4));
    return types & RssHashType.Ipv6 ? frame.slice(l3 + 8, l3 + 40) : null;
  }
  return null;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
