/**
 * netvsp's saved channel state: a channel saved with receive packets and a control answer in
 * flight, restored over the same guest memory, continues exactly (the guest's completions of the
 * old packets free the old slots, the buffers, filter and versions are kept, the state saved again
 * is the same bytes); hostile saved states are refused with NETVSP_BAD_SAVED_STATE naming the
 * field; frames for a paused VM are dropped and counted without touching the guest's buffer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HvError } from '../../hypervisor/hv-error.ts';
import { NetVspChannel } from '../../root-partition/vsp/netvsp/netvsp-channel.ts';
import { decodeNetVspChannel, encodeNetVspChannel, type NetVspSavedChannel } from '../../root-partition/vsp/netvsp/netvsp-saved-state.ts';
import { NetVspRig, packetMsg, queryMsg, u32s } from './netvsp-rig.ts';

const MAC = [0, 0x15, 0x5d, 0, 0, 1];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function frame(dst: number[], len = 60, seed = 1): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set([0, 0x15, 0x5d, 0, 0, 2], 6);
  f[12] = 0x08;
  for (let i = 14; i < len; i++) f[i] = (i * seed) & 0xff;
  return f;
}

/** A rig after Linux's initialization with two data packets and one control answer the guest has not completed. */
function busyRig(): { rig: NetVspRig; data: bigint[]; control: bigint } {
  const rig = new NetVspRig({ rxPages: 32 }); // 72 slots, 16 reserved
  rig.linuxInit();
  rig.completeAll();
  expect(rig.channel.deliver([frame(MAC, 60, 1), frame(MAC, 100, 2), frame(MAC, 1514, 3)])).toBe(3);
  expect(rig.channel.deliver([frame(MAC, 70, 4)])).toBe(1);
  rig.control(queryMsg(9, 0x00010114)); // OID_GEN_MEDIA_CONNECT_STATUS, answered in a control slot
  const tps = rig.transferPages.splice(0);
  return { rig, data: tps.slice(0, 2).map((t) => t.transactionId), control: tps[2]!.transactionId };
}

describe('netvsp saved state', () => {
  it('a channel saved with packets in flight continues after a restore exactly where it was', () => {
    const { rig, data, control } = busyRig();
    const before = encodeNetVspChannel(rig.channel.saveState());
    const geometry = rig.channel.receiveGeometry!;
    rig.saveAndRestore();
    // The same state, byte for byte, when saved again; counters restart.
    expect(hex(encodeNetVspChannel(rig.channel.saveState()))).toBe(hex(before));
    expect(rig.channel.receiveGeometry).toEqual(geometry);
    expect(rig.channel.version).toBe(0x60001);
    expect(rig.channel.receiving).toBe(true);
    // The guest completes what it held before the save: the slots come back, nothing is unknown.
    for (const id of [...data, control]) rig.completeReceive(id);
    expect(rig.channel.stats.badCompletions).toBe(0);
    expect(rig.channel.receiveGeometry).toMatchObject({ freeData: 72 - 16, freeControl: 16 });
    rig.completeReceive(data[0]!);
    expect(rig.channel.stats.badCompletions).toBe(1);
    // Receive through the kept filter (directed + broadcast + all-multicast), transmit through the kept send buffer.
    expect(rig.channel.deliver([frame(MAC), frame([0, 0x15, 0x5d, 9, 9, 9]), frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])])).toBe(2);
    expect(rig.channel.stats.rxDropFiltered).toBe(1);
    const out = frame([0, 0x15, 0x5d, 0, 0, 2], 90, 5);
    rig.control(packetMsg(out), 3);
    expect(rig.transmitted.map((t) => hex(t.frame))).toEqual([hex(out)]);
    expect(rig.completions.at(-1)!.payload.subarray(0, 8)).toEqual(u32s(108, 1));
  });

  it('slots the guest held at the save stay held: a restored buffer fills exactly its free slots', () => {
    const { rig } = busyRig();
    const held = rig.channel.saveState().receive!.inFlight.flat();
    rig.saveAndRestore();
    let delivered = 0;
    for (let i = 0; i < 200; i++) delivered += rig.channel.deliver([frame(MAC)]);
    expect(delivered).toBe(72 - 16 - 4);
    expect(rig.channel.stats.rxDropNoBuffer).toBe(200 - delivered);
    // Every slot named once: the transfer pages sent never reuse a slot held before the save.
    const used = [...held, ...rig.transferPages.flatMap((t) => t.ranges.map((r) => r.byteOffset / rig.channel.receiveGeometry!.subAllocSize))];
    expect(used.length).toBe(72 - 16 + 1);
    expect(new Set(used).size).toBe(used.length);
  });

  it('a channel before INIT, and one before the receive buffer, are restored as they were', () => {
    const fresh = new NetVspRig();
    fresh.saveAndRestore();
    expect(fresh.channel.version).toBe(0);
    fresh.linuxInit();
    expect(fresh.channel.receiving).toBe(true);
    const half = new NetVspRig();
    half.send(u32s(1, 0x50000, 0x50000));
    half.send(u32s(125, 1514, 0, 0, 0), { completionRequested: false });
    half.saveAndRestore();
    half.send(u32s(100, 6, 30, 0, 0), { completionRequested: false });
    half.send(u32s(101, 0x100, 0xcafe));
    expect(half.channel.receiveGeometry?.count).toBe(145);
    expect(half.channel.stats.refused).toBe(0);
  });

  it('frames for a paused VM are dropped and counted; the guest buffer is not written', () => {
    const rig = new NetVspRig({ rxPages: 32 });
    rig.linuxInit();
    rig.completeAll();
    const snapshot = rig.rx(0, 32 * 4096);
    expect(rig.channel.deliver([frame(MAC), frame(MAC)], true)).toBe(0);
    expect(rig.channel.stats.rxDropPaused).toBe(2);
    expect(rig.transferPages).toEqual([]);
    expect(hex(rig.rx(0, 32 * 4096))).toBe(hex(snapshot));
    expect(rig.channel.deliver([frame(MAC)])).toBe(1);
  });

  const refusals: [string, (s: NetVspSavedChannel) => void, RegExp][] = [
    [
      'an NVSP version this host does not speak',
      (s) => {
        s.version = 0x70000;
      },
      /NVSP version 0x70000/,
    ],
    [
      'sub-allocations of another size',
      (s) => {
        s.receive!.subAllocSize += 8;
      },
      /sub-allocations of 1814 bytes/,
    ],
    [
      'more sub-allocations than the pages hold',
      (s) => {
        s.receive!.count += 1;
      },
      /73 receive sub-allocations in 32 pages/,
    ],
    [
      'a slot past the buffer',
      (s) => {
        s.receive!.inFlight[0]!.push(72);
      },
      /slot 72 is not below 72/,
    ],
    [
      'a slot held twice',
      (s) => {
        s.receive!.inFlight[1]!.push(s.receive!.inFlight[0]![0]!);
      },
      /held twice/,
    ],
    [
      'data in a control slot',
      (s) => {
        s.receive!.inFlight[0]!.push(3);
      },
      /data in control slot 3/,
    ],
    [
      'a control packet of two slots',
      (s) => {
        s.receive!.inFlight.push([4, 5]);
      },
      /holds 2 slots/,
    ],
    [
      'a packet of 376 frames',
      (s) => {
        s.receive!.inFlight = [Array.from({ length: 376 }, (_, i) => 16 + i)];
      },
      /holds 376 slots/,
    ],
    [
      'a receive buffer of no pages',
      (s) => {
        s.receive!.pages = [];
      },
      /receive buffer of 0 pages/,
    ],
    [
      'a receive buffer over 32 MiB',
      (s) => {
        s.receive!.pages = Array.from({ length: 8193 }, (_, i) => i);
      },
      /8193 pages/,
    ],
    [
      'receive pages outside guest memory',
      (s) => {
        s.receive!.pages[5] = 0xfffff;
      },
      /receive buffer \(GPADL 256\) has pages outside guest memory/,
    ],
    [
      'send pages outside guest memory',
      (s) => {
        s.send!.pages[0] = 0x7fffffff;
      },
      /send buffer \(GPADL 257\) has pages outside guest memory/,
    ],
    [
      'send sections the pages do not make',
      (s) => {
        s.send!.sections = 11;
      },
      /11 send sections in 16 pages/,
    ],
    [
      'a send buffer without a receive buffer',
      (s) => {
        s.receive = undefined;
      },
      /send buffer without a receive buffer/,
    ],
    [
      'packet-filter bits this host does not keep',
      (s) => {
        s.rndis.packetFilter |= 0x40;
      },
      /packet filter 0x4d/,
    ],
    [
      'a filter while RNDIS is halted',
      (s) => {
        s.rndis.state = 'halted';
      },
      /while RNDIS is halted/,
    ],
    [
      "another adapter's MAC",
      (s) => {
        s.mac = Uint8Array.from([0, 0x15, 0x5d, 0, 0, 9]);
      },
      /MAC 00:15:5d:00:00:09 is not this adapter's/,
    ],
    [
      'jumbo frames on a port without them',
      (s) => {
        s.maxFrameBytes = 9014;
        s.receive = { ...s.receive!, subAllocSize: 9306, count: 28, pages: Array.from({ length: 64 }, (_, i) => NetVspRig.RX_GPA / 4096 + i), inFlight: [] };
      },
      /9014-byte frames on a port without jumbo/,
    ],
    [
      'a frame size past jumbo',
      (s) => {
        s.maxFrameBytes = 9015;
      },
      /frame size 9015/,
    ],
    [
      'buffers before INIT',
      (s) => {
        s.version = 0;
      },
      /before NVSP INIT/,
    ],
    [
      'a transfer-page set id past 16 bits',
      (s) => {
        s.receive!.id = 0x10000;
      },
      /set id 65536/,
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

  it('refuses another format and undecodable bytes', () => {
    expect(() => decodeNetVspChannel(Uint8Array.of(0x08, 0x02))).toThrow(/format 2 is not supported/);
    expect(() => decodeNetVspChannel(Uint8Array.of(0x0a, 0xff, 0xff))).toThrow(/undecodable/);
  });

  it('any corruption of a saved state is refused with NETVSP_BAD_SAVED_STATE or restores a channel that is consistent', () => {
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
        // Accepted: it is what the bytes say, and works within its own buffer.
        expect(hex(encodeNetVspChannel(restored.saveState()))).toBe(hex(encodeNetVspChannel(decodeNetVspChannel(bytes))));
        const g = restored.receiveGeometry;
        if (g) expect(g.freeData + g.freeControl).toBeLessThanOrEqual(g.count);
        restored.deliver([frame(MAC)]);
      }),
      { numRuns: 400 },
    );
  });
});
