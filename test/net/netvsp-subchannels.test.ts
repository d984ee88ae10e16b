import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rssHashInput, toeplitzHash } from '../../root-partition/vsp/netvsp/rss-toeplitz.ts';
import { RssHashType, decodeRssParameters } from '../../root-partition/vsp/netvsp/rss-parameters.ts';
import { NdisStatus } from '../../root-partition/vsp/netvsp/rndis-protocol.ts';
import { NetVspRig, type SubChannelRig, packetMsg, queryMsg, setMsg, u32s } from './netvsp-rig.ts';
import { udpFrame } from './udp-frame.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const MAC = Uint8Array.from([0, 0x15, 0x5d, 0, 0, 1]);
const PEER = Uint8Array.from([0, 0x15, 0x5d, 0, 0, 2]);
/** The key Microsoft's RSS verification examples use (and Linux netvsc_hash_key's first bytes differ: any 40 bytes work). */
const MS_KEY = Buffer.from('6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa', 'hex');

const subchannelRequest = (count: number, op = 1) => u32s(133, op, count, 0, 0, 0, 0, 0, 0, 0);
const HASH_LINUX = 0x1 | RssHashType.Ipv4 | RssHashType.TcpIpv4 | RssHashType.Ipv6 | RssHashType.TcpIpv6 | RssHashType.UdpIpv4;

/** OID_GEN_RECEIVE_SCALE_PARAMETERS as Linux lays it out: 40-byte header, table @40 (u32 per entry), key after it. */
function rssParams(o: {
  table: number[];
  key?: Uint8Array;
  flags?: number;
  hashInfo?: number;
  tableOffset?: number;
  keyOffset?: number;
  keySize?: number;
}): Uint8Array {
  const key = o.key ?? MS_KEY;
  const tableBytes = 4 * o.table.length;
  const b = new Uint8Array(40 + tableBytes + key.length);
  const dv = new DataView(b.buffer);
  b[0] = 0x89;
  b[1] = 2;
  dv.setUint16(2, 40, true);
  dv.setUint16(4, o.flags ?? 0, true);
  dv.setUint32(8, o.hashInfo ?? HASH_LINUX, true);
  dv.setUint16(12, tableBytes, true);
  dv.setUint32(16, o.tableOffset ?? 40, true);
  dv.setUint16(20, o.keySize ?? key.length, true);
  dv.setUint32(24, o.keyOffset ?? 40 + tableBytes, true);
  o.table.forEach((c, i) => dv.setUint32(40 + 4 * i, c, true));
  b.set(key, 40 + tableBytes);
  return b;
}

/** Sends a SET and returns the SET_CMPLT status. */
function setOid(rig: NetVspRig, oid: number, data: Uint8Array): number {
  rig.control(setMsg(9, oid, data));
  const done = rig.lastControlMessage();
  rig.transferPages.pop();
  return new DataView(done.buffer).getUint32(12, true);
}

function multiQueueRig(maxChannels = 4, granted = 1): { rig: NetVspRig; subs: SubChannelRig[] } {
  const rig = new NetVspRig({ maxChannels });
  rig.linuxInit();
  rig.completeAll();
  rig.send(subchannelRequest(granted));
  rig.completions.length = 0;
  const subs = Array.from({ length: rig.channel.grantedSubChannels }, (_, i) => rig.openSubChannel(i + 1));
  return { rig, subs };
}

const flow = (i: number, data = Uint8Array.of(i & 0xff, i >> 8, 0xab)) =>
  udpFrame({ dstMac: MAC, srcMac: PEER, srcIp: `10.0.${i >> 8}.${i & 0xff}`, dstIp: '10.0.0.1', srcPort: 1024 + i, dstPort: 7, data });

describe('RSS Toeplitz hash', () => {
  // Microsoft's "Verifying the RSS hash calculation": source, destination, IPv4 only, IPv4 with TCP.
  const vectors: [string, number, string, number, number, number][] = [
    ['66.9.149.187', 2794, '161.142.100.80', 1766, 0x323e8fc2, 0x51ccc178],
    ['199.92.111.2', 14230, '65.69.140.83', 4739, 0xd718262a, 0xc626b0ea],
    ['24.19.198.95', 12898, '12.22.207.184', 38024, 0xd2d0a5de, 0x5c2b394a],
    ['38.27.205.30', 48228, '209.142.163.6', 2217, 0x82989176, 0xafc7327f],
    ['153.39.163.191', 44251, '202.188.127.2', 1303, 0x5d1809c5, 0x10e828a2],
  ];
  it.each(vectors)('%s:%i -> %s:%i hashes as the published values', (src, sport, dst, dport, ip, tcp) => {
    const addr = Uint8Array.from([...src.split('.').map(Number), ...dst.split('.').map(Number)]);
    const ports = Uint8Array.of(sport >> 8, sport & 0xff, dport >> 8, dport & 0xff);
    expect(toeplitzHash(MS_KEY, addr)).toBe(ip);
    expect(toeplitzHash(MS_KEY, Uint8Array.from([...addr, ...ports]))).toBe(tcp);
  });

  it('takes addresses and ports from the frame only for the types the guest enabled', () => {
    const f = udpFrame({ dstMac: MAC, srcMac: PEER, srcIp: '66.9.149.187', dstIp: '161.142.100.80', srcPort: 2794, dstPort: 1766, data: new Uint8Array(4) });
    expect(hex(rssHashInput(f, RssHashType.Ipv4 | RssHashType.UdpIpv4)!)).toBe('420995bba18e6450' + '0aea06e6');
    expect(hex(rssHashInput(f, RssHashType.Ipv4 | RssHashType.TcpIpv4)!)).toBe('420995bba18e6450');
    expect(rssHashInput(f, RssHashType.TcpIpv4)).toBeNull();
    const fragment = f.slice();
    fragment[20] = 0x20; // more fragments: the ports may not be there
    expect(hex(rssHashInput(fragment, RssHashType.Ipv4 | RssHashType.UdpIpv4)!)).toBe('420995bba18e6450');
    const arp = f.slice();
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(rssHashInput(arp, HASH_LINUX)).toBeNull();
    expect(rssHashInput(f.subarray(0, 30), HASH_LINUX)).toBeNull();
  });
});

describe('NVSP SUBCHANNEL', () => {
  it('grants what was asked within the NIC, answers in the request number, then sends the send indirection table (hex)', () => {
    const rig = new NetVspRig({ maxChannels: 4 });
    rig.linuxInit();
    rig.completions.length = 0;
    rig.send(subchannelRequest(3), { transactionId: 0x55n });
    expect(rig.completions).toHaveLength(1);
    expect(rig.completions[0]!.transactionId).toBe(0x55n);
    expect(hex(rig.completions[0]!.payload)).toBe('85000000' + '01000000' + '03000000' + '00'.repeat(28));
    expect(rig.inband.map(hex)).toEqual([
      '86000000' + '10000000' + '0c000000' + [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3].map((c) => `0${c}000000`).join(''),
    ]);
    expect(rig.granted).toEqual([3]);
    expect(rig.channel.grantedSubChannels).toBe(3);
  });

  it.each([4, 100, 0xffffffff])('a request for %i sub-channels gets the NIC maximum (3 beside the primary)', (n) => {
    const rig = new NetVspRig({ maxChannels: 4 });
    rig.linuxInit();
    rig.completions.length = 0;
    rig.send(subchannelRequest(n));
    expect(hex(rig.completions[0]!.payload.subarray(0, 12))).toBe('850000000100000003000000');
    expect(rig.granted).toEqual([3]);
    // Only granted sub-channels can be opened.
    expect(rig.channel.attachSubChannel(4, rig.openSubChannel(3).sink)).toBe(false);
  });

  it('refuses before INIT, below NVSP 5, before the receive buffer, repeated, for 0, with another operation, and on a single-queue NIC', () => {
    const failed = (rig: NetVspRig) => hex(rig.completions.at(-1)!.payload.subarray(0, 12));
    const before = new NetVspRig({ maxChannels: 4 });
    before.send(subchannelRequest(1));
    expect(failed(before)).toBe('000000000200000000000000'); // refused as any message before INIT
    const v4 = new NetVspRig({ maxChannels: 4 });
    v4.send(u32s(1, 0x40000, 0x40000, 0, 0, 0, 0, 0));
    v4.send(subchannelRequest(1));
    expect(failed(v4)).toBe('000000000200000000000000');
    const noBuffer = new NetVspRig({ maxChannels: 4 });
    noBuffer.send(u32s(1, 0x60001, 0x60001, 0, 0, 0, 0, 0, 0, 0));
    noBuffer.send(subchannelRequest(1));
    expect(failed(noBuffer)).toBe('850000000200000000000000');
    const rig = new NetVspRig({ maxChannels: 4 });
    rig.linuxInit();
    rig.send(subchannelRequest(0));
    expect(failed(rig)).toBe('850000000200000000000000');
    rig.send(subchannelRequest(1, 0));
    expect(failed(rig)).toBe('850000000200000000000000');
    rig.send(subchannelRequest(1));
    expect(failed(rig)).toBe('850000000100000001000000');
    rig.send(subchannelRequest(1));
    expect(failed(rig)).toBe('850000000200000000000000');
    const single = new NetVspRig();
    single.linuxInit();
    single.send(subchannelRequest(1));
    expect(failed(single)).toBe('850000000200000000000000');
    for (const r of [before, v4, noBuffer, single]) expect(r.granted).toEqual([]);
    expect(rig.granted).toEqual([1]);
  });
});

describe('RSS over RNDIS', () => {
  it('reports its queues in OID_GEN_RECEIVE_SCALE_CAPABILITIES (hex)', () => {
    const rig = new NetVspRig({ maxChannels: 4 });
    rig.linuxInit();
    rig.control(queryMsg(3, 0x00010203));
    const done = rig.lastControlMessage();
    const dv = new DataView(done.buffer);
    expect(dv.getUint32(12, true)).toBe(NdisStatus.Success);
    const data = done.subarray(8 + dv.getUint32(20, true), 8 + dv.getUint32(20, true) + dv.getUint32(16, true));
    expect(hex(data)).toBe('88021200011b000001000000040000008000');
  });

  it('refuses parameters whose table names a channel past the count, lengths or offsets outside the message, and keeps what was set', () => {
    const { rig } = multiQueueRig(4, 1);
    const good = rssParams({ table: Array.from({ length: 128 }, (_, i) => i % 2) });
    expect(setOid(rig, 0x00010204, good)).toBe(NdisStatus.Success);
    const before = rig.channel.rndis.rss;
    expect(before?.table.length).toBe(128);
    const hostile: [string, Uint8Array, number][] = [
      ['entry past the channels', rssParams({ table: [0, 1, 2, 1] }), NdisStatus.InvalidData],
      ['table past the end', rssParams({ table: [0, 1], tableOffset: 84 }), NdisStatus.InvalidLength],
      ['table offset wrapping', rssParams({ table: [0, 1], tableOffset: 0xfffffffc }), NdisStatus.InvalidLength],
      ['table inside the header', rssParams({ table: [0, 1], tableOffset: 8 }), NdisStatus.InvalidLength],
      ['table of 3 entries', rssParams({ table: [0, 1, 1] }), NdisStatus.InvalidLength],
      ['table of 256 entries', rssParams({ table: new Array(256).fill(0) }), NdisStatus.InvalidLength],
      ['key past the end', rssParams({ table: [0, 1], keyOffset: 60 }), NdisStatus.InvalidLength],
      ['key of 39 bytes', rssParams({ table: [0, 1], keySize: 39 }), NdisStatus.InvalidLength],
      ['hash function 2', rssParams({ table: [0, 1], hashInfo: 0x102 }), NdisStatus.InvalidData],
      ['truncated structure', rssParams({ table: [0, 1] }).subarray(0, 20), NdisStatus.InvalidLength],
      ['wrong object type', Uint8Array.from([0x88, ...rssParams({ table: [0, 1] }).subarray(1)]), NdisStatus.InvalidData],
    ];
    for (const [what, data, status] of hostile) {
      expect(setOid(rig, 0x00010204, data), what).toBe(status);
      expect(rig.channel.rndis.rss, what).toBe(before);
    }
    expect(rig.channel.lastError).toMatch(/RSS parameters/);
    // The disable flag switches RSS off (Linux sends it first).
    expect(setOid(rig, 0x00010204, rssParams({ table: [0, 1], flags: 0x10 }))).toBe(NdisStatus.Success);
    expect(rig.channel.rndis.rss).toBeNull();
  });
});

describe('RSS parameters from a hostile guest', () => {
  it('any bytes: refused with a status, or a Toeplitz configuration within the channels and the message', () => {
    const field = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 4, 8, 40, 64, 512), fc.integer({ min: 0, max: 700 }));
    fc.assert(
      fc.property(
        fc.record({
          entries: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 140 }),
          tableBytes: fc.option(field),
          tableOffset: fc.option(fc.oneof(field, fc.constant(0xfffffff0))),
          keySize: fc.option(field),
          keyOffset: fc.option(fc.oneof(field, fc.constant(0xffffffff))),
          flags: fc.integer({ min: 0, max: 0x1f }),
          cut: fc.nat(700),
          channels: fc.integer({ min: 1, max: 4 }),
        }),
        (r) => {
          const b = rssParams({
            table: r.entries,
            flags: r.flags,
            tableOffset: r.tableOffset ?? undefined,
            keyOffset: r.keyOffset ?? undefined,
            keySize: r.keySize ?? undefined,
          });
          if (r.tableBytes !== null) new DataView(b.buffer).setUint16(12, r.tableBytes, true);
          const data = b.subarray(0, Math.min(b.length, r.cut + 20));
          const out = decodeRssParameters(data, r.channels, null);
          if ('why' in out) {
            expect([NdisStatus.InvalidLength, NdisStatus.InvalidData]).toContain(out.status);
            return;
          }
          if (out.rss === null) return;
          expect(out.rss.key.length).toBe(40);
          const n = out.rss.table.length;
          expect(n > 0 && n <= 128 && (n & (n - 1)) === 0).toBe(true);
          for (const c of out.rss.table) expect(c).toBeLessThan(r.channels);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('receive and send on sub-channels', () => {
  it('spreads received flows by the Toeplitz hash over the table, data intact, each packet completed on its own channel', () => {
    const { rig, subs } = multiQueueRig(4, 3);
    expect(subs).toHaveLength(3);
    const table = Array.from({ length: 128 }, (_, i) => (i * 7) % 4);
    expect(setOid(rig, 0x00010204, rssParams({ table }))).toBe(NdisStatus.Success);
    const frames = Array.from({ length: 64 }, (_, i) => flow(i));
    expect(rig.channel.deliver(frames)).toBe(64);
    const expected = frames.map((f) => table[toeplitzHash(MS_KEY, rssHashInput(f, HASH_LINUX)!) & 127]!);
    expect(new Set(expected).size).toBe(4); // the test's flows reach every channel
    const onChannel = [rig.transferPages, ...subs.map((s) => s.transferPages)];
    for (let c = 0; c < 4; c++) {
      const want = frames.filter((_, i) => expected[i] === c);
      expect(onChannel[c]).toHaveLength(1); // one transfer-page packet per channel per batch
      const got = onChannel[c]![0]!.ranges.map((r) => {
        const msg = rig.rx(r.byteOffset, r.byteCount);
        const dv = new DataView(msg.buffer);
        return msg.subarray(8 + dv.getUint32(8, true), 8 + dv.getUint32(8, true) + dv.getUint32(12, true));
      });
      expect(got.map(hex)).toEqual(want.map(hex));
    }
    expect(rig.channel.stats.framesDeliveredOnSubChannels).toBe(expected.filter((c) => c !== 0).length);
    // A completion on the wrong channel frees nothing; on the right one it frees the packet.
    const free = rig.channel.receiveGeometry!.freeData;
    const onSub1 = subs[0]!.transferPages[0]!;
    rig.completeReceive(onSub1.transactionId);
    subs[1]!.completeReceive(onSub1.transactionId);
    expect(rig.channel.stats.badCompletions).toBe(2);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free);
    subs[0]!.completeReceive(onSub1.transactionId);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free + onSub1.ranges.length);
  });

  it('sends everything to the primary without RSS, and to the primary for a channel not open', () => {
    const { rig, subs } = multiQueueRig(4, 1);
    rig.channel.deliver([flow(1), flow(2)]);
    expect(rig.transferPages).toHaveLength(1);
    expect(subs[0]!.transferPages).toHaveLength(0);
    expect(setOid(rig, 0x00010204, rssParams({ table: [1, 1] }))).toBe(NdisStatus.Success);
    rig.channel.detachSubChannel(1);
    rig.completeAll();
    rig.channel.deliver([flow(3)]);
    expect(rig.transferPages).toHaveLength(1);
  });

  it('takes PACKET_MSGs on a sub-channel through a send section and GPA ranges, completes them there, and refuses control there', () => {
    const { rig, subs } = multiQueueRig(4, 1);
    const sub = subs[0]!;
    const frame = flow(9, new Uint8Array(100).fill(0x5a));
    rig.memory.u8.set(packetMsg(frame), NetVspRig.TX_GPA + 3 * 6144);
    sub.send(u32s(107, 0, 3, 44 + frame.length, 0, 0, 0, 0, 0, 0), { transactionId: 0x31n });
    sub.send(u32s(107, 0, 0xffffffff, 0, 0, 0, 0, 0, 0, 0), { transactionId: 0x32n, gpa: [packetMsg(frame)] });
    expect(rig.transmitted.map((t) => hex(t.frame))).toEqual([hex(frame), hex(frame)]);
    expect(sub.completions.map((c) => [c.transactionId, hex(c.payload.subarray(0, 8))])).toEqual([
      [0x31n, '6c00000001000000'],
      [0x32n, '6c00000001000000'],
    ]);
    expect(rig.completions).toHaveLength(0);
    // RNDIS control and other NVSP messages belong on the primary.
    sub.send(u32s(107, 1, 0xffffffff, 0, 0, 0, 0, 0, 0, 0), { transactionId: 0x33n, gpa: [queryMsg(1, 0x00010114)] });
    sub.send(u32s(107, 0, 0xffffffff, 0, 0, 0, 0, 0, 0, 0), { transactionId: 0x34n, gpa: [queryMsg(1, 0x00010114)] });
    sub.send(u32s(104, 0x101, 0, 0, 0, 0, 0, 0, 0, 0), { transactionId: 0x35n });
    expect(sub.completions.slice(2).map((c) => [c.transactionId, hex(c.payload.subarray(0, 8))])).toEqual([
      [0x33n, '0000000002000000'],
      [0x34n, '6c00000002000000'],
      [0x35n, '0000000002000000'],
    ]);
    expect(rig.transferPages).toHaveLength(0); // no RNDIS response came back
    // A sub-channel that is not open takes nothing.
    rig.send(u32s(107, 0, 3, 44 + frame.length, 0, 0, 0, 0, 0, 0), { channel: 2 });
    expect(rig.transmitted).toHaveLength(2);
  });

  it('frees the slots out on a sub-channel when it closes, so a guest cannot strand the shared buffer', () => {
    const { rig, subs } = multiQueueRig(4, 1);
    expect(setOid(rig, 0x00010204, rssParams({ table: [1, 1] }))).toBe(NdisStatus.Success);
    const free = rig.channel.receiveGeometry!.freeData;
    rig.channel.deliver(Array.from({ length: 10 }, (_, i) => flow(i)));
    expect(subs[0]!.transferPages).toHaveLength(1);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free - 10);
    rig.channel.detachSubChannel(1);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free);
    expect(rig.channel.openSubChannels).toEqual([]);
  });
});
