/**
 * netvsp's saved state with sub-channels: the grant, the RSS configuration and the channel each
 * receive packet went out on survive a save and restore (a completion on that channel frees it,
 * on another it does not); hostile values are refused with NETVSP_BAD_SAVED_STATE naming them,
 * and a sub-channel's own record carries its index only.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HvError } from '../../hypervisor/hv-error.ts';
import { NetVspChannel } from '../../root-partition/vsp/netvsp/netvsp-channel.ts';
import {
  decodeNetVspChannel,
  decodeNetVspSubChannel,
  encodeNetVspChannel,
  encodeNetVspSubChannel,
  type NetVspSavedChannel,
} from '../../root-partition/vsp/netvsp/netvsp-saved-state.ts';
import { NetVspRig, setMsg, u32s } from './netvsp-rig.ts';
import { udpFrame } from './udp-frame.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const MAC = Uint8Array.from([0, 0x15, 0x5d, 0, 0, 1]);
const KEY = Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff);

function rssParams(table: number[]): Uint8Array {
  const b = new Uint8Array(40 + 4 * table.length + 40);
  const dv = new DataView(b.buffer);
  b.set([0x89, 2, 40, 0]);
  dv.setUint32(8, 0x1 | 0x100 | 0x4000, true);
  dv.setUint16(12, 4 * table.length, true);
  dv.setUint32(16, 40, true);
  dv.setUint16(20, 40, true);
  dv.setUint32(24, 40 + 4 * table.length, true);
  table.forEach((c, i) => dv.setUint32(40 + 4 * i, c, true));
  b.set(KEY, 40 + 4 * table.length);
  return b;
}

const flow = (i: number) =>
  udpFrame({
    dstMac: MAC,
    srcMac: MAC.map((b, k) => (k === 5 ? 2 : b)),
    srcIp: `10.1.0.${i}`,
    dstIp: '10.0.0.1',
    srcPort: 4000 + i,
    dstPort: 7,
    data: Uint8Array.of(i),
  });

/** Two sub-channels granted and open, RSS over all three channels, frames out on each channel. */
function busyRig() {
  const rig = new NetVspRig({ maxChannels: 3 });
  rig.linuxInit();
  rig.completeAll();
  rig.send(u32s(133, 1, 2, 0, 0, 0, 0, 0, 0, 0));
  const subs = [rig.openSubChannel(1), rig.openSubChannel(2)];
  rig.control(setMsg(4, 0x00010204, rssParams([0, 1, 2, 0, 1, 2, 0, 1])));
  rig.completeAll();
  rig.channel.deliver(Array.from({ length: 40 }, (_, i) => flow(i)));
  for (const s of subs) expect(s.transferPages.length).toBe(1);
  expect(rig.transferPages.length).toBe(1);
  return { rig, subs };
}

describe('netvsp saved state with sub-channels', () => {
  it('keeps the grant, RSS and the channel of each packet in flight across a restore', () => {
    const { rig, subs } = busyRig();
    const before = hex(encodeNetVspChannel(rig.channel.saveState()));
    const free = rig.channel.receiveGeometry!.freeData;
    rig.saveAndRestore();
    expect(hex(encodeNetVspChannel(rig.channel.saveState()))).toBe(before);
    expect(rig.channel.grantedSubChannels).toBe(2);
    expect(hex(rig.channel.rndis.rss!.key)).toBe(hex(KEY));
    // The worker reattaches the open sub-channels (NetVsp.restoreChannel); their packets complete there only.
    const again = [rig.openSubChannel(1), rig.openSubChannel(2)];
    const onSub2 = subs[1]!.transferPages[0]!;
    again[0]!.completeReceive(onSub2.transactionId);
    rig.completeReceive(onSub2.transactionId);
    expect(rig.channel.stats.badCompletions).toBe(2);
    again[1]!.completeReceive(onSub2.transactionId);
    expect(rig.channel.receiveGeometry!.freeData).toBe(free + onSub2.ranges.length);
    // Frames keep being spread the same way.
    rig.channel.deliver([flow(1), flow(2), flow(3)]);
    expect(again.some((s) => s.transferPages.length > 0)).toBe(true);
  });

  const refusals: [string, (s: NetVspSavedChannel) => void, RegExp][] = [
    ['more sub-channels than this adapter runs', (s) => (s.subChannelsGranted = 3), /3 sub-channels granted; this adapter runs 3 channel/],
    ['64 sub-channels', (s) => (s.subChannelsGranted = 64), /64 sub-channels granted \(below 64\)/],
    ['a packet on a channel not granted', (s) => (s.receive!.inFlightChannels[0] = 3), /on channel 3; 2 sub-channel\(s\) granted/],
    [
      'a control packet on a sub-channel',
      (s) => {
        s.receive!.inFlight.push([0]);
        s.receive!.inFlightChannels.push(1);
      },
      /control packet 3 on sub-channel 1/,
    ],
    ['an indirection entry past the channels', (s) => (s.rss!.table[5] = 3), /indirection entry 5 names channel 3; there are 3/],
    ['an indirection table of 6 entries', (s) => (s.rss!.table = s.rss!.table.subarray(0, 6)), /indirection table of 6 entries/],
    ['a hash key of 39 bytes', (s) => (s.rss!.key = s.rss!.key.subarray(1)), /hash key of 39 bytes/],
    ['unknown hash types', (s) => (s.rss!.hashTypes |= 0x800), /hash types 0x4900/],
    [
      'sub-channels below NVSP 5',
      (s) => {
        s.version = 0x40000;
        s.rss = null;
      },
      /granted without a receive buffer at NVSP 5/,
    ],
    [
      'RSS while RNDIS is halted',
      (s) => {
        s.rndis.state = 'halted';
        s.rndis.packetFilter = 0;
      },
      /RSS set while RNDIS is halted/,
    ],
  ];

  it.each(refusals)('refuses %s, and the channel is left as it was', (_, mutate, message) => {
    const { rig } = busyRig();
    const channel = rig.channel;
    let error: unknown;
    try {
      rig.saveAndRestore(mutate);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HvError);
    expect((error as HvError).code).toBe('NETVSP_BAD_SAVED_STATE');
    expect((error as Error).message).toMatch(message);
    expect(rig.channel).toBe(channel);
  });

  it("a sub-channel's record is its index and nothing else (hex), and neither record passes for the other", () => {
    expect(hex(encodeNetVspSubChannel(2))).toBe('08018001' + '02');
    expect(decodeNetVspSubChannel(encodeNetVspSubChannel(2))).toBe(2);
    const { rig } = busyRig();
    const primary = encodeNetVspChannel(rig.channel.saveState());
    expect(() => decodeNetVspSubChannel(primary)).toThrow(/a primary channel record where a sub-channel record belongs/);
    expect(() => decodeNetVspChannel(encodeNetVspSubChannel(1))).toThrow(/sub-channel 1's record where a primary channel record belongs/);
    // Protobuf merges concatenated messages: a sub-channel record smuggling channel state.
    const smuggled = Uint8Array.from([...primary, 0x80, 0x01, 0x01]);
    expect(() => decodeNetVspSubChannel(smuggled)).toThrow(/sub-channel 1's record carries channel state/);
    expect(() => decodeNetVspSubChannel(encodeNetVspSubChannel(64))).toThrow(/sub-channel index 64/);
  });

  it('a channel restored without sub-channels granted refuses to attach any', () => {
    const rig = new NetVspRig({ maxChannels: 3 });
    rig.linuxInit();
    const restored = NetVspChannel.restored(rig.options, decodeNetVspChannel(encodeNetVspChannel(rig.channel.saveState())));
    expect(restored.attachSubChannel(1, rig.options.sink)).toBe(false);
  });

  it('any corruption of a multi-queue saved state is refused, or restores a channel whose RSS and packets stay within its channels', () => {
    const { rig } = busyRig();
    const good = encodeNetVspChannel(rig.channel.saveState());
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (flips) => {
        const bytes = good.slice();
        for (const [at, v] of flips) bytes[at] = v;
        let restored: NetVspChannel;
        try {
          restored = NetVspChannel.restored(rig.options, decodeNetVspChannel(bytes));
        } catch (e) {
          expect((e as HvError).code).toBe('NETVSP_BAD_SAVED_STATE');
          return;
        }
        expect(hex(encodeNetVspChannel(restored.saveState()))).toBe(hex(encodeNetVspChannel(decodeNetVspChannel(bytes))));
        const channels = 1 + restored.grantedSubChannels;
        expect(channels).toBeLessThanOrEqual(restored.maxChannels);
        for (const c of restored.rndis.rss?.table ?? []) expect(c).toBeLessThan(channels);
        for (let i = 1; i < channels; i++) expect(restored.attachSubChannel(i, rig.options.sink)).toBe(true);
        expect(restored.attachSubChannel(channels, rig.options.sink)).toBe(false);
        restored.deliver(Array.from({ length: 8 }, (_, i) => flow(i)));
      }),
      { numRuns: 300 },
    );
  });
});
