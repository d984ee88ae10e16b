/**
 * Transmit checksum offload over IPv4: the capabilities netvsp reports (NDIS_OFFLOAD revision 1,
 * IPv4 transmit only), the checksums it fills in when a packet's TCPIP_CHKSUM_INFO PPI asks (a
 * zeroed field, or Linux's pseudo-header seed, gives the same sum, which verifies to 0xffff), and
 * PPIs that do not fit the frame refused without a byte of it changed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyTransmitChecksums } from '../../root-partition/vsp/netvsp/checksum-offload.ts';
import { NetVspRig, queryMsg, u32s } from './netvsp-rig.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const MAC = [0, 0x15, 0x5d, 0, 0, 1];

/** An Ethernet + IPv4 frame carrying `proto` (17 UDP with an 8-byte header, 6 TCP with 20) and `payload` bytes; every checksum 0. */
function ipv4Frame(proto: 6 | 17, payload: number): Uint8Array {
  const l4 = (proto === 17 ? 8 : 20) + payload;
  const f = new Uint8Array(14 + 20 + l4);
  f.set(MAC, 0);
  f.set([0, 0x15, 0x5d, 0, 0, 2, 0x08, 0x00], 6);
  f.set([0x45, 0, (20 + l4) >> 8, (20 + l4) & 0xff, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 3, 2, 10, 0, 3, 1], 14);
  f.set([0x9c, 0x49, 0x00, 0x07], 34); // ports 40009 → 7
  if (proto === 17) f.set([l4 >> 8, l4 & 0xff], 38);
  else f[46] = 0x50; // TCP data offset 5
  for (let i = 0; i < payload; i++) f[f.length - payload + i] = (i * 37 + 11) & 0xff;
  return f;
}

/** The one's-complement sum of 16-bit words, folded (RFC 1071): 0xffff over data that carries its own correct checksum. */
function onesSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudoAndSegment(f: Uint8Array): Uint8Array {
  const l4 = f.subarray(34);
  return Uint8Array.from([...f.subarray(26, 34), 0, f[23]!, l4.length >> 8, l4.length & 0xff, ...l4]);
}

/** A PACKET_MSG with one checksum PPI (size 16, type 0, offset 12, value `info`) before the frame. */
function packetWithChecksumPpi(f: Uint8Array, info: number): Uint8Array {
  const b = new Uint8Array(44 + 16 + f.length);
  b.set(u32s(1, b.length, 36 + 16, f.length, 0, 0, 0, 36, 16, 0, 0));
  b.set(u32s(16, 0, 12, info), 44);
  b.set(f, 60);
  return b;
}

function sendSection(rig: NetVspRig, msg: Uint8Array, transactionId: bigint): void {
  rig.memory.u8.set(msg, NetVspRig.TX_GPA);
  rig.send(u32s(107, 0, 0, msg.length), { transactionId });
}

const IPV4 = 0x1,
  TCP = 0x4,
  UDP = 0x8,
  IP_HEADER = 0x10;

describe('netvsp: transmit checksum offload (IPv4)', () => {
  it('reports NDIS_OFFLOAD revision 1 with IPv4 transmit checksums (IP options, TCP options, TCP, UDP, IP header) and nothing else', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    rig.completeAll();
    rig.control(queryMsg(5, 0xfc01020d));
    const m = rig.lastControlMessage();
    expect(hex(m.subarray(0, 24))).toBe(hex(u32s(0x80000004, 24 + 112, 5, 0, 112, 16)));
    expect(hex(m.subarray(24, 36))).toBe('a7017000' + '02000000' + '55010000');
    expect(m.subarray(36, 24 + 112).every((b) => b === 0)).toBe(true);
  });

  it('fills in the IPv4 header and UDP checksums the PPI asks for; TCP from a zeroed field or from Linux’s pseudo-header seed', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const udp = ipv4Frame(17, 101);
    sendSection(rig, packetWithChecksumPpi(udp, IPV4 | UDP | IP_HEADER | (34 << 16)), 1n);
    const sent = rig.transmitted[0]!.frame;
    expect(onesSum(sent.subarray(14, 34))).toBe(0xffff);
    expect(onesSum(pseudoAndSegment(sent))).toBe(0xffff);
    expect(hex(sent.subarray(24, 26))).not.toBe('0000');
    expect(hex(sent.subarray(40, 42))).not.toBe('0000');
    // Only the two checksum fields changed.
    const changed = [...sent].flatMap((b, i) => (b !== udp[i] ? [i] : []));
    expect(changed.every((i) => i === 24 || i === 25 || i === 40 || i === 41)).toBe(true);

    const tcp = ipv4Frame(6, 64);
    sendSection(rig, packetWithChecksumPpi(tcp, IPV4 | TCP | (34 << 16)), 2n);
    const zeroed = rig.transmitted[1]!.frame.slice();
    expect(onesSum(pseudoAndSegment(zeroed))).toBe(0xffff);
    expect(hex(zeroed.subarray(24, 26))).toBe('0000'); // the IP header checksum was not asked for
    const seeded = tcp.slice();
    const seed = (~onesSum(pseudoAndSegment(tcp).subarray(0, 12)) & 0xffff) ^ 0xffff; // Linux: csum_tcpudp_magic's complement
    seeded[50] = seed >> 8;
    seeded[51] = seed & 0xff;
    sendSection(rig, packetWithChecksumPpi(seeded, IPV4 | TCP | (34 << 16)), 3n);
    expect(hex(rig.transmitted[2]!.frame)).toBe(hex(zeroed));
    expect(rig.channel.stats.checksumsOffloaded).toBe(3);
    expect(rig.completions.slice(-3).map((c) => new DataView(c.payload.buffer).getUint32(4, true))).toEqual([1, 1, 1]);
  });

  it('refuses a PPI that does not fit its frame (counted, FAIL, nothing sent) and sends a frame without one untouched', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const udp = ipv4Frame(17, 40);
    const refused: [number, Uint8Array][] = [
      [IPV4 | UDP | (40 << 16), udp], // transport offset not where the IPv4 header ends
      [IPV4 | TCP | (34 << 16), udp], // TCP asked on a UDP datagram
      [0x2 | UDP | (54 << 16), udp], // IPv6: not offered
      [IPV4 | UDP | TCP | (34 << 16), udp], // both
      [IPV4 | UDP | (34 << 16), Uint8Array.from([...udp.subarray(0, 16), 0xff, 0xff, ...udp.subarray(18)])], // total length past the frame
      [IPV4 | IP_HEADER, Uint8Array.from([...udp.subarray(0, 12), 0x86, 0xdd, ...udp.subarray(14)])], // not IPv4
    ];
    refused.forEach(([info, f], i) => sendSection(rig, packetWithChecksumPpi(f, info), BigInt(10 + i)));
    expect(rig.transmitted).toEqual([]);
    expect(rig.channel.stats.transmitErrors).toBe(refused.length);
    expect(rig.completions.slice(-refused.length).map((c) => new DataView(c.payload.buffer).getUint32(4, true))).toEqual(refused.map(() => 2));
    sendSection(rig, packetWithChecksumPpi(udp, 0), 20n); // a PPI asking for nothing
    expect(hex(rig.transmitted[0]!.frame)).toBe(hex(udp));
    expect(rig.channel.stats.checksumsOffloaded).toBe(0);
  });
});

describe('netvsp: transmit checksum offload, any PPI on any frame (property)', () => {
  it('never throws; a refused frame is unchanged, an accepted one changed only in the checksum fields asked for, each verifying', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        // Any u32, or one built from the fields a guest sets (IP version bits, TCP/UDP, IP header, offset).
        fc.oneof(
          fc.integer({ min: 0, max: 0xffffffff }),
          fc
            .tuple(fc.constantFrom(0, 1, 2, 3), fc.constantFrom(0, TCP, UDP, TCP | UDP), fc.boolean(), fc.constantFrom(34, 0, 33, 35, 1023))
            .map(([version, l4, ip, offset]) => (version | l4 | (ip ? IP_HEADER : 0) | (offset << 16)) >>> 0),
        ),
        fc.boolean(),
        fc.constantFrom<6 | 17>(6, 17),
        fc.integer({ min: 0, max: 120 }),
        (noise, info, shaped, proto, payload) => {
          // Half the frames are real IPv4 datagrams (with noise as payload), half are noise.
          const f = shaped ? ipv4Frame(proto, payload) : noise.slice();
          if (shaped) f.set(noise.subarray(0, Math.min(noise.length, payload)), f.length - payload);
          const before = f.slice();
          const refused = applyTransmitChecksums(f, info);
          const changed = [...f].flatMap((b, i) => (b !== before[i] ? [i] : []));
          if (refused !== null) {
            expect(changed).toEqual([]);
            return;
          }
          const allowed = new Set<number>();
          if (info & IP_HEADER) allowed.add(24).add(25);
          if (info & (TCP | UDP)) {
            const field = 34 + (info & UDP ? 6 : 16);
            allowed.add(field).add(field + 1);
          }
          for (const i of changed) expect(allowed.has(i)).toBe(true);
          if (info & IP_HEADER) expect(onesSum(f.subarray(14, 34))).toBe(0xffff);
          if (info & (TCP | UDP)) expect(onesSum(pseudoAndSegment(f.subarray(0, 14 + ((f[16]! << 8) | f[17]!))))).toBe(0xffff);
        },
      ),
      { numRuns: 500 },
    );
  });
});
