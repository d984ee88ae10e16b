/** Ethernet + IPv4 + UDP frames as a host-side peer on a switch sends and reads them (tests only). */
function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ipv4(a: string): number[] {
  return a.split('.').map(Number);
}

export function udpFrame(o: {
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  data: Uint8Array;
}): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + o.data.length);
  const dv = new DataView(f.buffer);
  f.set(o.dstMac, 0);
  f.set(o.srcMac, 6);
  dv.setUint16(12, 0x0800);
  f[14] = 0x45;
  dv.setUint16(16, 28 + o.data.length);
  dv.setUint16(18, 1);
  f[22] = 64;
  f[23] = 17;
  f.set(ipv4(o.srcIp), 26);
  f.set(ipv4(o.dstIp), 30);
  dv.setUint16(24, checksum(f.subarray(14, 34)));
  dv.setUint16(34, o.srcPort);
  dv.setUint16(36, o.dstPort);
  dv.setUint16(38, 8 + o.data.length);
  f.set(o.data, 42);
  return f;
}

/** The UDP payload of a frame to `port`, or undefined. */
export function udpPayload(frame: Uint8Array, port: number): Uint8Array | undefined {
  if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x00 || frame[23] !== 17) return undefined;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (dv.getUint16(36) !== port) return undefined;
  return frame.slice(42, 34 + dv.getUint16(38));
}
