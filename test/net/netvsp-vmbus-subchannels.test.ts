/**
 * NetVsp on a real VmbusHost (its server, ports and rings over guest memory), the guest's control
 * messages and NVSP packets written as a guest would: SUBCHANNEL makes the server offer the
 * sub-channel with the NIC's GUIDs and sub_channel_index 1, the guest opens it, and a saved state
 * with the open sub-channel restores into a fresh host; hostile sub-channel records are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import { NetVsp } from '../../root-partition/vsp/netvsp/netvsp-vsp.ts';
import { NETVSP_INTERFACE_GUID } from '../../root-partition/vsp/netvsp/nvsp-protocol.ts';
import { decodeNetVspChannel, encodeNetVspChannel, encodeNetVspSubChannel } from '../../root-partition/vsp/netvsp/netvsp-saved-state.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { decodeVmbusState, encodeVmbusState } from '../../vmbus/host/vmbus-saved-state.ts';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing } from '../../vmbus/ring/index.ts';
import { u32s, withU16 } from './netvsp-rig.ts';

const T = C.ChannelMessageType;
const INSTANCE = '5a1e0000-0000-4000-8000-000000000042';
const MAC = Uint8Array.from([0, 0x15, 0x5d, 0, 0, 0x42]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const tick = () => new Promise((r) => setImmediate(r));

let hv: Hypervisor | null = null;
const hosts: VmbusHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) h.dispose();
  await hv?.shutdown();
  hv = null;
});

function hostOn(p: Partition, limits?: { maxChannels: number }) {
  const errors: HvError[] = [];
  const host = new VmbusHost(p, { log: (e) => errors.push(e), ...(limits ? { limits } : {}) });
  hosts.push(host);
  const nic = new NetVsp({ instanceId: INSTANCE, mac: MAC, gpadls: host.server, subChannels: host.server, maxChannels: 2, onTransmit: () => {} });
  host.addVsp(nic);
  const post = (m: ChannelMessage) => host.server.handleGuestMessage(encodeChannelMessage(m), C.VMBUS_MESSAGE_CONNECTION_ID);
  const gpadl = (relid: number, handle: number, first: number, n: number) =>
    encodeGpadl(
      relid,
      handle,
      Array.from({ length: n }, (_, i) => BigInt(first + i)),
    ).forEach((m) => host.server.handleGuestMessage(m, C.VMBUS_MESSAGE_CONNECTION_ID));
  return { host, nic, errors, post, gpadl };
}

/** The guest's end of a channel whose 8-page ring GPADL starts at `firstPage` (4 pages each way). */
function guestRings(p: Partition, firstPage: number) {
  const out = VmbusRing.create(p.mem, firstPage * 4096, 3 * 4096) as VmbusRing;
  const inb = VmbusRing.create(p.mem, (firstPage + 4) * 4096, 3 * 4096) as VmbusRing;
  return {
    send(payload: Uint8Array, transactionId: number, completion = true) {
      const w = out.writer();
      expect(w.tryWrite({ type: VmbusPacketType.DataInband, flags: completion ? 1 : 0, transactionId, payload })).toBe(true);
      w.commit();
    },
    read(): { type: number; payload: Uint8Array }[] {
      const got: { type: number; payload: Uint8Array }[] = [];
      const r = inb.reader();
      for (;;) {
        const pkt = new ReceivedPacket(4096);
        if (!r.tryRead(pkt)) break;
        got.push({ type: pkt.type, payload: pkt.payload().slice() });
      }
      r.commit();
      return got;
    },
  };
}

/** A connected guest with the NIC's primary open, NVSP 6.1 and its receive buffer, and sub-channel 1 granted and open. */
async function multiQueueHost(p: Partition, limits?: { maxChannels: number }) {
  const h = hostOn(p, limits);
  h.host.server.handleGuestMessage(
    encodeChannelMessage({
      type: T.InitiateContact,
      version: C.VmbusVersion.Win10V5_3,
      targetVcpu: 0,
      interruptPage: 0n,
      msgSint: 2,
      msgVtl: 0,
      featureFlags: 0,
      monitorPage1: 0n,
      monitorPage2: 0n,
      clientId: null,
    }),
    C.VMBUS_MESSAGE_CONNECTION_ID_4,
  );
  h.post({ type: T.RequestOffers });
  h.gpadl(1, 0x10, 0x100, 8);
  h.post({ type: T.OpenChannel, childRelid: 1, openId: 1, ringGpadlHandle: 0x10, targetVp: 0, downstreamRingPageOffset: 4, userData: new Uint8Array(120) });
  await tick();
  expect(h.host.channel(1)?.state).toBe('open');
  h.gpadl(1, 0x11, 0x200, 32); // the receive buffer
  const primary = guestRings(p, 0x100);
  primary.send(u32s(1, 0x60001, 0x60001, 0, 0, 0, 0, 0, 0, 0), 1);
  primary.send(u32s(125, 1514, 0, 0, 0, 0, 0, 0, 0, 0), 2, false);
  primary.send(withU16(u32s(101, 0x11, 0, 0, 0, 0, 0, 0, 0, 0), 8, 0xcafe), 3);
  primary.send(u32s(133, 1, 5, 0, 0, 0, 0, 0, 0, 0), 4); // asks for 5: the NIC runs 2 channels
  h.host.channel(1)!.onGuestSignal();
  await tick();
  const replies = primary.read();
  const sub = replies.find((r) => r.type === VmbusPacketType.Completion && new DataView(r.payload.buffer).getUint32(0, true) === 133);
  expect(hex(sub!.payload.subarray(0, 12))).toBe('850000000100000001000000');
  expect(replies.some((r) => r.type === VmbusPacketType.DataInband && hex(r.payload.subarray(0, 12)) === '86000000100000000c000000')).toBe(true);
  return { ...h, primary };
}

describe('netvsp sub-channels on a VMBus host', () => {
  it('offers the granted sub-channel with the NIC GUIDs and index 1, serves it once opened, and restores it', async () => {
    hv = new Hypervisor();
    const p = hv.createPartition({ memoryBytes: 8 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 } });
    p.initialize();
    const a = await multiQueueHost(p);
    const offered = a.host.server.channel(2)!;
    expect(offered).toMatchObject({ subChannelIndex: 1, primaryRelid: 1, offeredToGuest: true });
    expect(offered.spec.interfaceType).toBe(NETVSP_INTERFACE_GUID);
    expect(offered.spec.interfaceInstance).toBe(INSTANCE);
    expect(a.host.server.channel(3)).toBeUndefined(); // one granted, one offered
    expect(a.nic.offeredSubChannels).toBe(1);
    a.gpadl(2, 0x12, 0x300, 8);
    a.post({ type: T.OpenChannel, childRelid: 2, openId: 2, ringGpadlHandle: 0x12, targetVp: 0, downstreamRingPageOffset: 4, userData: new Uint8Array(120) });
    await tick();
    expect(a.host.channel(2)?.state).toBe('open');
    expect(a.nic.net!.openSubChannels).toEqual([1]);
    // RNDIS control is refused on the sub-channel, with a FAIL completion there.
    const sub = guestRings(p, 0x300);
    sub.send(u32s(107, 1, 0xffffffff, 0, 0, 0, 0, 0, 0, 0), 9);
    a.host.channel(2)!.onGuestSignal();
    await tick();
    expect(sub.read().map((r) => hex(r.payload.subarray(0, 8)))).toEqual(['0000000002000000']);

    const bytes = a.host.saveState();
    const saved = decodeVmbusState(bytes);
    expect(saved.channelStates.map((c) => c.relid)).toEqual([1, 2]);
    expect(hex(saved.channelStates[1]!.state)).toBe(hex(encodeNetVspSubChannel(1)));
    a.host.dispose();

    const b = hostOn(p);
    b.host.restoreState(bytes);
    expect(b.nic.net!.grantedSubChannels).toBe(1);
    expect(b.nic.net!.openSubChannels).toEqual([1]);
    expect(hex(b.host.saveState())).toBe(hex(bytes));
    b.host.dispose();

    // Hostile sub-channel records: refused whole, naming what does not fit.
    const refused = (mutate: (s: ReturnType<typeof decodeVmbusState>) => void, message: RegExp) => {
      const s = decodeVmbusState(bytes);
      mutate(s);
      const c = hostOn(p);
      expect(() => c.host.restoreState(encodeVmbusState(s))).toThrow(message);
      c.host.dispose();
    };
    refused((s) => (s.channelStates[1]!.state = encodeNetVspSubChannel(2)), /relid 2 is sub-channel 1; its record says 2/);
    refused((s) => (s.channelStates[1]!.state = s.channelStates[0]!.state), /a primary channel record where a sub-channel record belongs/);
    refused((s) => {
      const primary = decodeNetVspChannel(s.channelStates[0]!.state);
      primary.subChannelsGranted = 0;
      s.channelStates[0]!.state = encodeNetVspChannel(primary);
    }, /sub-channel 1 \(relid 2\); its primary granted 0/);
    const good = hostOn(p);
    good.host.restoreState(bytes);
    expect(good.nic.net!.openSubChannels).toEqual([1]);
  });

  it('closing the primary rescinds its sub-channels; reopened and asking again, the guest is offered index 1 afresh (flood: 20 rounds)', async () => {
    hv = new Hypervisor();
    const p = hv.createPartition({ memoryBytes: 8 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 } });
    p.initialize();
    const a = await multiQueueHost(p);
    for (let round = 0; round < 20; round++) {
      const sub = a.host.server.channel(2)!;
      expect(sub).toMatchObject({ subChannelIndex: 1, primaryRelid: 1, state: 'offered' });
      // Half the rounds the guest has the sub-channel open when it closes the primary (Linux closes sub-channels first).
      if (round % 2 === 0) {
        a.gpadl(2, 0x12, 0x300, 8);
        a.post({
          type: T.OpenChannel,
          childRelid: 2,
          openId: 2,
          ringGpadlHandle: 0x12,
          targetVp: 0,
          downstreamRingPageOffset: 4,
          userData: new Uint8Array(120),
        });
        await tick();
        expect(a.nic.net!.openSubChannels).toEqual([1]);
      }
      a.post({ type: T.CloseChannel, childRelid: 1 });
      await tick();
      expect(a.nic.net).toBeNull();
      expect(a.host.server.channel(2)!.state).toBe('rescinded');
      expect(a.host.channel(2)).toBeUndefined(); // its rings and event port are gone with it
      expect(a.nic.rescindedSubChannels).toBe(round + 1);
      // The guest releases the relid (Linux vmbus_onoffer_rescind → RELID_RELEASED), tearing down its ring GPADL first.
      if (round % 2 === 0) a.post({ type: T.GpadlTeardown, childRelid: 2, gpadl: 0x12 });
      a.post({ type: T.RelidReleased, childRelid: 2 });
      expect(a.host.server.channel(2)).toBeUndefined();
      p.mem.u8.fill(0, 0x100 * 4096, 0x108 * 4096); // a fresh ring, as a guest zeroes it before opening
      a.post({ type: T.OpenChannel, childRelid: 1, openId: 1, ringGpadlHandle: 0x10, targetVp: 0, downstreamRingPageOffset: 4, userData: new Uint8Array(120) });
      await tick();
      a.primary.send(u32s(1, 0x60001, 0x60001, 0, 0, 0, 0, 0, 0, 0), 1);
      a.primary.send(u32s(125, 1514, 0, 0, 0, 0, 0, 0, 0, 0), 2, false);
      a.primary.send(withU16(u32s(101, 0x11, 0, 0, 0, 0, 0, 0, 0, 0), 8, 0xcafe), 3);
      a.primary.send(u32s(133, 1, 1, 0, 0, 0, 0, 0, 0, 0), 4);
      a.host.channel(1)!.onGuestSignal();
      await tick();
      const granted = a.primary.read().find((r) => r.type === VmbusPacketType.Completion && new DataView(r.payload.buffer).getUint32(0, true) === 133);
      expect(hex(granted!.payload.subarray(0, 12))).toBe('850000000100000001000000');
    }
    // Every round offered one sub-channel, always index 1 on the relid the last one released: no records pile up.
    expect(a.nic.offeredSubChannels).toBe(21);
    expect(a.host.server.channel(2)).toMatchObject({ subChannelIndex: 1, primaryRelid: 1, state: 'offered' });
    expect(a.host.server.channelCount()).toBe(2);
    a.gpadl(2, 0x12, 0x300, 8);
    a.post({ type: T.OpenChannel, childRelid: 2, openId: 2, ringGpadlHandle: 0x12, targetVp: 0, downstreamRingPageOffset: 4, userData: new Uint8Array(120) });
    await tick();
    expect(a.nic.net!.openSubChannels).toEqual([1]);
    // The guest's SynIC is off in this harness: posts and signals fail, and nothing else went wrong.
    expect(a.errors.filter((e) => e.code !== 'VMBUS_MESSAGE_LOST' && e.code !== 'VMBUS_SIGNAL_FAILED')).toEqual([]);
  });

  it('a guest that never releases the rescinded sub-channels only runs out of its own relids (the host runs on)', async () => {
    hv = new Hypervisor();
    const p = hv.createPartition({ memoryBytes: 8 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 } });
    p.initialize();
    const a = await multiQueueHost(p, { maxChannels: 6 });
    for (let round = 0; round < 8; round++) {
      a.post({ type: T.CloseChannel, childRelid: 1 });
      await tick();
      p.mem.u8.fill(0, 0x100 * 4096, 0x108 * 4096);
      a.post({ type: T.OpenChannel, childRelid: 1, openId: 1, ringGpadlHandle: 0x10, targetVp: 0, downstreamRingPageOffset: 4, userData: new Uint8Array(120) });
      await tick();
      a.primary.send(u32s(1, 0x60001, 0x60001, 0, 0, 0, 0, 0, 0, 0), 1);
      a.primary.send(u32s(125, 1514, 0, 0, 0, 0, 0, 0, 0, 0), 2, false);
      a.primary.send(withU16(u32s(101, 0x11, 0, 0, 0, 0, 0, 0, 0, 0), 8, 0xcafe), 3);
      a.primary.send(u32s(133, 1, 1, 0, 0, 0, 0, 0, 0, 0), 4);
      a.host.channel(1)!.onGuestSignal();
      await tick();
      a.primary.read();
    }
    // Relids 2..6 hold rescinded records the guest keeps; the server never grows past its limit.
    expect(a.host.server.channelCount()).toBe(6);
    expect([2, 3, 4, 5, 6].map((r) => a.host.server.channel(r)?.state)).toEqual(['rescinded', 'rescinded', 'rescinded', 'rescinded', 'rescinded']);
    expect(a.nic.offeredSubChannels).toBe(5);
    expect(a.host.channel(1)?.state).toBe('open');
    // Saved with the rescinded records waiting for the guest, restored whole into a fresh host.
    const bytes = a.host.saveState();
    a.host.dispose();
    const b = hostOn(p, { maxChannels: 6 });
    b.host.restoreState(bytes);
    expect([2, 3, 4, 5, 6].map((r) => b.host.server.channel(r)?.state)).toEqual(['rescinded', 'rescinded', 'rescinded', 'rescinded', 'rescinded']);
    expect(b.host.server.channel(1)?.nextSubChannelIndex).toBe(1);
    expect(b.nic.net?.grantedSubChannels).toBe(1);
  });
});
