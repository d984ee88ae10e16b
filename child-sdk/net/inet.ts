// Byte-order and checksum helpers for the stack (network byte order is big-endian; RFC 1071).

export function be16(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p)); }
export function be32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }
export function putBe16(p: usize, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
export function putBe32(p: usize, v: u32): void { store<u32>(p, bswap<u32>(v)); }

/** The Internet checksum of `length` bytes at `p` (one's complement of the one's-complement sum). */
export function inetChecksum(p: usize, length: u32): u32 {
  let sum: u32 = 0;
  let i: u32 = 0;
  for (; i + 1 < length; i += 2) sum += be16(p + i);
  if (i < length) sum += <u32>load<u8>(p + i) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}
