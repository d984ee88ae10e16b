import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NetVspRig, packetMsg, queryMsg, setMsg, u32s, withU16 } from './netvsp-rig.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const MAC = [0, 0x15, 0x5d, 0, 0, 1];

interface Step {
  name: string;
  completionRequested: boolean;
  transactionId: string;
  request: string;
  section0?: string;
  completion?: string;
  transferPages?: { transactionId: string; header: string; payload: string; receiveBufferAt0: string };
}

function frame(dst: number[], len = 60, seed = 1): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set([0, 0x15, 0x5d, 0, 0, 2], 6);
  f[12] = 0x08;
  for (let i = 14; i < len; i++) f[i] = (i * seed) & 0xff;
  return f;
}

describe('netvsp: the Linux initialization sequence (hex vectors)', () => {
  const vectors = JSON.parse(readFileSync(new URL('../vectors/netvsp/init-sequence.json', import.meta.url), 'utf8')) as { steps: Step[] };

  it('answers every step with exactly the bytes of the vector', () => {
    const rig = new NetVspRig();
    for (const s of vectors.steps) {
      const before = { c: rig.completions.length, t: rig.transferPages.length };
      if (s.section0) rig.memory.u8.set(fromHex(s.section0), NetVspRig.TX_GPA);
      rig.send(fromHex(s.request), { completionRequested: s.completionRequested, transactionId: BigInt('0x' + s.transactionId) });
      const completions = rig.completions.slice(before.c);
      if (s.completion) {
        expect(
          completions.map((c) => [c.transactionId.toString(16).padStart(16, '0'), hex(c.payload)]),
          s.name,
        ).toEqual([[s.transactionId, s.completion]]);
      } else {
        expect(completions, s.name).toEqual([]);
      }
      const tps = rig.transferPages.slice(before.t);
      if (s.transferPages) {
        expect(
          tps.map((t) => [t.transactionId.toString(16).padStart(16, '0'), hex(t.header), hex(t.payload)]),
          s.name,
        ).toEqual([[s.transferPages.transactionId, s.transferPages.header, s.transferPages.payload]]);
        expect(hex(rig.rx(0, s.transferPages.receiveBufferAt0.length / 2))).toBe(s.transferPages.receiveBufferAt0);
      } else {
        expect(tps, s.name).toEqual([]);
      }
    }
    expect(rig.channel.stats.refused).toBe(0);
  });
});

describe('netvsp: negotiation and buffers', () => {
  it('refuses an unknown NVSP version with status NONE and then accepts a lower one (32-byte messages below 6.1)', () => {
    const rig = new NetVspRig();
    rig.send(u32s(1, 0x70000, 0x70000));
    expect(hex(rig.completions[0]!.payload)).toBe(hex(u32s(2, 0xffffffff, 34, 0, 0, 0, 0, 0)));
    rig.send(u32s(1, 0x50000, 0x50000));
    expect(hex(rig.completions[1]!.payload)).toBe(hex(u32s(2, 0xffffffff, 34, 1, 0, 0, 0, 0)));
    expect(rig.channel.version).toBe(0x50000);
    rig.send(u32s(1, 0x2, 0x2));
    expect(rig.channel.stats.refused).toBe(1); // INIT repeated
  });

  it('from NVSP 2 the NDIS config must come before the receive buffer; duplicates are refused', () => {
    const rig = new NetVspRig();
    rig.send(u32s(1, 0x60001, 0x60001));
    rig.send(withU16(u32s(101, 0x100, 0), 8, 0xcafe));
    expect(hex(rig.completions[1]!.payload.subarray(0, 8))).toBe(hex(u32s(102, 2)));
    rig.send(u32s(125, 1514, 0, 0, 0), { completionRequested: false });
    rig.send(u32s(125, 1514, 0, 0, 0), { completionRequested: false });
    expect(rig.channel.stats.refused).toBe(2);
    rig.send(withU16(u32s(101, 0x100, 0), 8, 0xcafe));
    expect(rig.channel.receiveGeometry).toMatchObject({ subAllocSize: 1806, count: 145 });
    rig.send(withU16(u32s(101, 0x100, 0), 8, 0xcafe));
    expect(rig.channel.stats.refused).toBe(3);
  });

  it('takes a receive buffer of scattered pages and writes each frame where its range says', () => {
    const rig = new NetVspRig({ scatterRx: true, rxPages: 32 });
    rig.linuxInit();
    const f = frame(MAC, 1514, 3);
    expect(rig.channel.deliver([f])).toBe(1);
    const tp = rig.transferPages.at(-1)!;
    const r = tp.ranges[0]!;
    const msg = rig.rx(r.byteOffset, r.byteCount);
    const dv = new DataView(msg.buffer);
    expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true)]).toEqual([1, 1806, 248, 1514]);
    expect(hex(msg.subarray(256, 256 + 1514))).toBe(hex(f));
  });

  it('refuses buffers over unknown GPADLs, pages outside guest memory, or too small for 16 reserved slots', () => {
    const rig = new NetVspRig();
    rig.gpadls.set(0x200, [0x10000]); // 256 MiB: outside the 4 MiB guest
    rig.gpadls.set(0x201, [0x100, 0x101, 0x102, 0x103, 0x104, 0x105]); // 6 pages: 13 slots
    rig.send(u32s(1, 0x60001, 0x60001));
    rig.send(u32s(125, 1514, 0, 0, 0), { completionRequested: false });
    for (const g of [0x999, 0x200, 0x201]) rig.send(withU16(u32s(101, g, 0), 8, 0xcafe));
    expect(rig.channel.stats.refused).toBe(3);
    expect(rig.completions.slice(1).map((c) => new DataView(c.payload.buffer).getUint32(4, true))).toEqual([2, 2, 2]);
    expect(rig.channel.receiveGeometry).toBeUndefined();
    rig.send(u32s(104, 0x101, 0));
    expect(rig.channel.sendSections).toBe(0); // send buffer before the receive buffer
  });
});

describe('netvsp: RNDIS control', () => {
  it('answers the OIDs a Linux guest queries, NOT_SUPPORTED with offset 16 for the rest', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    rig.completeAll();
    rig.control(queryMsg(3, 0x01010101));
    expect(hex(rig.lastControlMessage())).toBe(hex(u32s(0x80000004, 30, 3, 0, 6, 16)) + '00155d000001');
    rig.control(queryMsg(4, 0x00010114));
    expect(hex(rig.lastControlMessage())).toBe(hex(u32s(0x80000004, 28, 4, 0, 4, 16, 0)));
    rig.control(queryMsg(5, 0xfc01020d));
    const caps = rig.lastControlMessage();
    expect([caps[24], caps[25], caps[26]]).toEqual([0xa7, 1, 112]);
    rig.control(queryMsg(6, 0x12345678));
    expect(hex(rig.lastControlMessage())).toBe(hex(u32s(0x80000004, 24, 6, 0xc00000bb, 0, 16)));
    rig.control(setMsg(7, 0xfc01020c, new Uint8Array(28)));
    expect(hex(rig.lastControlMessage())).toBe(hex(u32s(0x80000005, 16, 7, 0)));
    expect(rig.channel.receiveGeometry!.freeControl).toBe(16);
  });

  it('holds receive traffic until the packet filter is non-zero, and filters by it', () => {
    const rig = new NetVspRig();
    rig.linuxInit(0);
    expect(rig.channel.deliver([frame(MAC)])).toBe(0);
    expect(rig.channel.stats.rxDropNotReady).toBe(1);
    rig.control(setMsg(3, 0x0001010e, u32s(0x01)));
    expect(rig.channel.deliver([frame(MAC), frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), frame([0, 0x15, 0x5d, 9, 9, 9])])).toBe(1);
    expect(rig.channel.stats.rxDropFiltered).toBe(2);
    rig.control(setMsg(4, 0x0001010e, u32s(0x20)));
    expect(rig.channel.deliver([frame([0, 0x15, 0x5d, 9, 9, 9])])).toBe(1);
  });

  it('sends MEDIA_DISCONNECT / MEDIA_CONNECT indications on link changes and stops receive while down', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    rig.channel.setLink(false);
    expect(hex(rig.lastControlMessage())).toBe(hex(u32s(7, 20, 0x4001000c, 0, 0)));
    expect(rig.channel.deliver([frame(MAC)])).toBe(0);
    rig.channel.setLink(true);
    expect(hex(rig.lastControlMessage())).toBe(hex(u32s(7, 20, 0x4001000b, 0, 0)));
    expect(rig.channel.deliver([frame(MAC)])).toBe(1);
  });
});

describe('netvsp: data path', () => {
  it('transmits frames from a send section (several PACKET_MSGs, 8-byte aligned) and completes with SUCCESS', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const frames = [frame(MAC, 60, 1), frame(MAC, 61, 2), frame(MAC, 1514, 3)];
    const msg = Buffer.concat(frames.map((f) => packetMsg(f, 8)));
    rig.memory.u8.set(msg, NetVspRig.TX_GPA + 5 * 6144);
    rig.send(u32s(107, 0, 5, msg.length), { transactionId: 42n });
    expect(rig.transmitted.map((t) => hex(t.frame))).toEqual(frames.map(hex));
    expect(rig.completions.at(-1)).toEqual({ transactionId: 42n, payload: u32s(108, 1, 0, 0, 0, 0, 0, 0, 0, 0) });
  });

  it('transmits by GPA direct, the header in the first range and the frame split over the next ones', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const f = frame(MAC, 1000, 5);
    const msg = packetMsg(f);
    rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: [msg.subarray(0, 44), msg.subarray(44, 500), msg.subarray(500)] });
    expect(hex(rig.transmitted[0]!.frame)).toBe(hex(f));
  });

  it('reads the VLAN id from the VLAN PPI (bits 15:4)', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const f = frame(MAC);
    const b = new Uint8Array(44 + 16 + f.length);
    b.set(u32s(1, b.length, 36 + 16, f.length, 0, 0, 0, 36, 16, 0, 0));
    b.set(u32s(16, 6, 12, (42 << 4) | 3), 44);
    b.set(f, 60);
    rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: [b] });
    expect(rig.transmitted[0]!.vlanId).toBe(42);
  });

  it('delivers up to 375 frames per transfer-page packet, one completion frees the whole chain', () => {
    const rig = new NetVspRig({ rxPages: 512 }); // 1161 slots
    rig.linuxInit();
    rig.completeAll();
    const frames = Array.from({ length: 400 }, (_, i) => frame(MAC, 60 + (i % 50), i));
    expect(rig.channel.deliver(frames)).toBe(400);
    const data = rig.transferPages.slice(-2);
    expect(data.map((t) => t.ranges.length)).toEqual([375, 25]);
    const free = rig.channel.receiveGeometry!.freeData;
    rig.completeReceive(data[0]!.transactionId);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free + 375);
    rig.completeReceive(data[0]!.transactionId); // twice: unknown now
    expect(rig.channel.stats.badCompletions).toBe(1);
    const r = data[1]!.ranges[24]!;
    expect(hex(rig.rx(r.byteOffset + 256, frames[399]!.length))).toBe(hex(frames[399]!));
  });

  it('accepts jumbo frames only when the port allows them and the guest configured the MTU', () => {
    const jumbo = new NetVspRig({ allowJumbo: true, rxPages: 256 });
    jumbo.send(u32s(1, 0x60001, 0x60001));
    jumbo.send(u32s(125, 9014, 0, 0, 0), { completionRequested: false });
    jumbo.send(withU16(u32s(101, 0x100, 0), 8, 0xcafe));
    expect(jumbo.channel.receiveGeometry!.subAllocSize).toBe(256 + 9014 + 36);
    const plain = new NetVspRig();
    plain.send(u32s(1, 0x60001, 0x60001));
    plain.send(u32s(125, 9014, 0, 0, 0), { completionRequested: false });
    expect(plain.channel.maxFrameBytes).toBe(1514);
  });
});

describe('netvsp: hostile guests', () => {
  it('refuses malformed RNDIS data without transmitting anything, completing with FAIL', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const f = frame(MAC);
    const good = packetMsg(f);
    const variants: [string, (b: Uint8Array) => void][] = [
      ['MessageLength beyond the data', (b) => new DataView(b.buffer).setUint32(4, 10_000, true)],
      ['MessageLength below the header', (b) => new DataView(b.buffer).setUint32(4, 20, true)],
      ['DataOffset past the end', (b) => new DataView(b.buffer).setUint32(8, 0xfffffff0, true)],
      ['DataLength past the end', (b) => new DataView(b.buffer).setUint32(12, 0xffffffff, true)],
      ['DataLength 0', (b) => new DataView(b.buffer).setUint32(12, 0, true)],
      ['DataOffset below 36', (b) => new DataView(b.buffer).setUint32(8, 4, true)],
      ['OOB data', (b) => new DataView(b.buffer).setUint32(20, 4, true)],
      [
        'PPI past the end',
        (b) => {
          new DataView(b.buffer).setUint32(32, 4096, true);
        },
      ],
      ['VcHandle', (b) => new DataView(b.buffer).setUint32(36, 1, true)],
    ];
    for (const [, mutate] of variants) {
      const b = good.slice();
      mutate(b);
      rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: [b] });
      expect(new DataView(rig.completions.at(-1)!.payload.buffer).getUint32(4, true)).toBe(2);
    }
    expect(rig.transmitted).toHaveLength(0);
    expect(rig.channel.stats.transmitErrors).toBe(variants.length);
  });

  it('refuses oversize and runt frames, bad send sections, refused GPA ranges and oversized transfers', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: [packetMsg(frame(MAC, 1515))] });
    rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: [packetMsg(frame(MAC, 13))] });
    rig.send(u32s(107, 0, 16, 100)); // only 16 sections: 0..15
    rig.send(u32s(107, 0, 0, 6145));
    rig.send(u32s(107, 0, 0, 0));
    rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: null });
    rig.send(u32s(107, 0, 0xffffffff, 0), { gpa: [new Uint8Array(200 * 1024)] });
    expect(rig.transmitted).toHaveLength(0);
    expect(rig.completions.slice(-7).map((c) => new DataView(c.payload.buffer).getUint32(4, true))).toEqual([2, 2, 2, 2, 2, 2, 2]);
  });

  it('refuses short, out-of-order and version-forbidden NVSP messages; the channel keeps working', () => {
    const rig = new NetVspRig();
    rig.send(u32s(101, 0x100)); // before INIT
    rig.send(new Uint8Array(2));
    rig.send(u32s(1, 0x60001)); // INIT shorter than 12 bytes
    rig.send(u32s(1, 0x2, 0x2));
    rig.send(u32s(133, 1, 4)); // SUBCHANNEL is a v5 message: refused at v1
    rig.send(u32s(9999));
    expect(rig.channel.stats.refused).toBe(5);
    rig.send(withU16(u32s(101, 0x100, 0), 8, 0xcafe));
    expect(rig.channel.receiveGeometry?.count).toBe(145);
  });

  it('answers an RNDIS control flood without holding more than the 16 reserved slots; responses beyond are dropped and counted', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    for (let i = 0; i < 10_000; i++) rig.control(queryMsg(100 + i, 0x00010114), i % 10); // 16 pages hold 10 sections
    expect(rig.channel.receiveGeometry!.freeControl).toBe(0);
    expect(rig.channel.stats.controlDropped).toBe(10_000 + 2 - 16);
    for (const tp of rig.transferPages) rig.completeReceive(tp.transactionId);
    expect(rig.channel.receiveGeometry!.freeControl).toBe(16);
    rig.control(queryMsg(1, 0x01010101));
    expect(rig.lastControlMessage().length).toBe(30);
  });

  it('a guest that never completes receives only exhausts its own buffer: frames are dropped, nothing queues', () => {
    const rig = new NetVspRig({ rxPages: 32 }); // 72 slots, 56 for data
    rig.linuxInit();
    let delivered = 0;
    for (let i = 0; i < 10_000; i++) delivered += rig.channel.deliver([frame(MAC)]);
    expect(delivered).toBe(56);
    expect(rig.channel.stats.rxDropNoBuffer).toBe(10_000 - 56);
    rig.completeReceive(rig.transferPages.at(-1)!.transactionId);
    expect(rig.channel.deliver([frame(MAC)])).toBe(1);
  });

  it('a full ring gives the slots back and counts the drop', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    const free = rig.channel.receiveGeometry!.freeData;
    rig.ringFull = true;
    expect(rig.channel.deliver([frame(MAC), frame(MAC)])).toBe(0);
    expect(rig.channel.stats.rxDropRingFull).toBe(2);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free);
  });

  it('random NVSP and RNDIS bytes never throw out of the channel', () => {
    const rig = new NetVspRig();
    rig.linuxInit();
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffffff;
    for (let i = 0; i < 5000; i++) {
      const n = rnd() % 64;
      const b = new Uint8Array(n);
      for (let k = 0; k < n; k++) b[k] = rnd() & 0xff;
      if (n >= 4 && i % 2) b.set(u32s([1, 100, 101, 104, 107, 125, 133][rnd() % 7]!), 0);
      rig.send(b, { gpa: i % 3 === 0 ? [b.slice(), new Uint8Array(rnd() % 300)] : undefined });
      rig.memory.u8.set(b, NetVspRig.TX_GPA + (rnd() % 10) * 6144);
    }
    expect(rig.channel.stats.nvspMessages).toBeGreaterThan(5000);
  });
});
