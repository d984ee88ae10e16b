/**
 * VmbusHost.saveState / restoreState on a real partition (its ports, its guest memory for the
 * rings), the guest's control messages fed to the host's server as they would arrive: a host with
 * an open echo channel and an open integration service is saved, a fresh host on the same
 * partition restores it and saves the same bytes again. Saved states that do not fit — another
 * device configuration, relids, PFNs or VPs out of range, a ring that cannot be rebuilt, truncated
 * or of another format — are refused whole: the fresh host then still restores the good state.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { decodeVmbusState, encodeVmbusState, type VmbusSavedState } from '../../vmbus/host/vmbus-saved-state.ts';
import type { Vsp } from '../../vmbus/host/vsp.ts';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';
import { EchoVsp } from '../../root-partition/vsp/echo/echo-vsp.ts';
import { ECHO_OP_ECHO } from '../../root-partition/vsp/echo/echo-protocol.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing } from '../../vmbus/ring/index.ts';
import { KvpVsp } from '../../root-partition/vsp/ic/kvp-vsp.ts';
import { ShutdownVsp } from '../../root-partition/vsp/ic/shutdown-vsp.ts';

const T = C.ChannelMessageType;
const MEMORY = 4 << 20;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const tick = () => new Promise((r) => setImmediate(r));

const hosts: VmbusHost[] = [];
let hv: Hypervisor | null = null;
afterEach(async () => {
  for (const h of hosts.splice(0)) h.dispose();
  await hv?.shutdown();
  hv = null;
});

function partition(): Partition {
  hv = new Hypervisor();
  const p = hv.createPartition({ memoryBytes: MEMORY, vpCount: 2, waitPolicy: { spinIterations: 0 } });
  p.initialize();
  return p;
}

function hostOn(p: Partition, vsps: Vsp[]) {
  const errors: HvError[] = [];
  const host = new VmbusHost(p, { log: (e) => errors.push(e) });
  hosts.push(host);
  for (const v of vsps) host.addVsp(v);
  const post = (m: ChannelMessage) => host.server.handleGuestMessage(encodeChannelMessage(m), C.VMBUS_MESSAGE_CONNECTION_ID);
  return { host, errors, post };
}

/** Echo (relid 1) and shutdown (relid 2) open on contiguous rings, a GPADL awaiting its body. */
async function busyHost(p: Partition) {
  const h = hostOn(p, [new EchoVsp(), new ShutdownVsp({ log: () => {} })]);
  h.host.server.handleGuestMessage(
    encodeChannelMessage({
      type: T.InitiateContact,
      version: C.VmbusVersion.Win10V5_3,
      targetVcpu: 1,
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
  const gpadl = (relid: number, handle: number, first: number, n: number, parts = Infinity) => {
    encodeGpadl(
      relid,
      handle,
      Array.from({ length: n }, (_, i) => BigInt(first + i)),
    )
      .slice(0, parts)
      .forEach((m) => h.host.server.handleGuestMessage(m, C.VMBUS_MESSAGE_CONNECTION_ID));
  };
  gpadl(1, 0x10, 0x100, 8);
  h.post({
    type: T.OpenChannel,
    childRelid: 1,
    openId: 1,
    ringGpadlHandle: 0x10,
    targetVp: 1,
    downstreamRingPageOffset: 4,
    userData: new Uint8Array(120).fill(1),
  });
  gpadl(2, 0x20, 0x200, 8);
  h.post({ type: T.OpenChannel, childRelid: 2, openId: 2, ringGpadlHandle: 0x20, targetVp: 0, downstreamRingPageOffset: 4, userData: new Uint8Array(120) });
  gpadl(1, 0x30, 0x300, 40, 1);
  await tick(); // the shutdown service sends NEGOTIATE into its ring
  expect(h.host.channel(1)?.state).toBe('open');
  expect(h.host.channel(2)?.state).toBe('open');
  return h;
}

describe('VmbusHost saved state', () => {
  it('restores into a fresh host on the same partition and saves the same bytes again', async () => {
    const p = partition();
    const a = await busyHost(p);
    const bytes = a.host.saveState();
    expect(a.host.savingState).toBe(true);
    const saved = decodeVmbusState(bytes);
    expect(saved.vsps.map((v) => v.relid)).toEqual([1, 2]);
    expect(saved.channelStates.map((c) => c.relid)).toEqual([2]); // echo keeps no channel state
    a.host.dispose();
    const b = hostOn(p, [new EchoVsp(), new ShutdownVsp({ log: () => {} })]);
    b.host.restoreState(bytes);
    expect(b.host.server.connectionPhase).toBe('connected');
    expect(b.host.channel(1)?.state).toBe('open');
    expect(b.host.channel(2)?.primaryRelid).toBe(2);
    expect(b.host.server.pendingGpadlCount).toBe(1);
    expect(hex(b.host.saveState())).toBe(hex(bytes));
    expect(b.errors.filter((e) => e.code !== 'VMBUS_MESSAGE_LOST')).toEqual([]);
  });

  it('leaves the ring control words the guest sees as they were, and serves at once what the guest wrote while parked', async () => {
    const p = partition();
    const a = await busyHost(p);
    const bytes = a.host.saveState();
    // The guest (parked, as far as the host knows) wrote an echo request into relid 1 while a poll
    // window had its ring masked, so it did not signal; relid 2's host → guest ring has
    // pending_send_sz published (the host was waiting for room).
    const guestOut = VmbusRing.create(p.mem, 0x100 * 4096, 3 * 4096) as VmbusRing;
    const request = new Uint8Array(8 + 5);
    new DataView(request.buffer).setUint32(0, ECHO_OP_ECHO, true);
    new DataView(request.buffer).setUint32(4, 5, true);
    request.set([1, 2, 3, 4, 5], 8);
    const w = guestOut.writer();
    expect(w.tryWrite({ type: VmbusPacketType.DataInband, flags: 1, transactionId: 42, payload: request })).toBe(true);
    w.commit();
    guestOut.maskInterrupt();
    const waiting = VmbusRing.create(p.mem, 0x204 * 4096, 3 * 4096) as VmbusRing;
    Atomics.store(p.mem.i32, waiting.pendingSendWord, 0x200);
    a.host.dispose();
    const b = hostOn(p, [new EchoVsp(), new ShutdownVsp({ log: () => {} })]);
    b.host.restoreState(bytes);
    const reply = new ReceivedPacket(4096);
    const got = (VmbusRing.create(p.mem, 0x104 * 4096, 3 * 4096) as VmbusRing).reader().tryRead(reply);
    expect(got).not.toBeNull();
    expect(reply.type).toBe(VmbusPacketType.Completion);
    expect(reply.transIdLo).toBe(42);
    expect(hex(reply.payload().subarray(0, request.length))).toBe(hex(request));
    expect(guestOut.interruptMask()).toBe(0); // the drain pass unmasked it
    expect(waiting.pendingSendSize()).toBe(0x200); // not initialised again under the host's wait
  });

  it('keeps messages queued for the guest at the save, in order with their VPs, and sends them after the restore', async () => {
    const p = partition();
    const a = await busyHost(p);
    a.host.saveState(); // from here nothing is posted
    const echo = a.host.channel(1)!.vsp;
    a.host.removeVsp(echo); // RESCIND_CHANNELOFFER for relid 1 waits in the outbox
    const saved = decodeVmbusState(a.host.saveState());
    expect(saved.outbox).toHaveLength(1);
    expect(saved.outbox[0]!.vp).toBe(1);
    expect(hex(saved.outbox[0]!.message)).toBe(hex(encodeChannelMessage({ type: T.RescindChannelOffer, childRelid: 1 })));
    expect(saved.server.channels.find((c) => c.relid === 1)?.state).toBe('rescinded');
    a.host.dispose();
    const b = hostOn(p, [new EchoVsp(), new ShutdownVsp({ log: () => {} })]);
    b.host.restoreState(encodeVmbusState(saved));
    // The guest's SynIC is off here: the post is attempted (and fails), which shows it was sent.
    expect(b.host.messagesToGuest.dropped).toBe(1);
    expect(b.host.server.channel(1)?.state).toBe('rescinded');
  });

  describe('refused, and the fresh host restores the good state afterwards', () => {
    const cases: [string, (s: VmbusSavedState) => void, RegExp, (() => Vsp[])?][] = [
      ['a device that is not in this configuration', () => {}, /the saved VM had 2 VMBus devices, this configuration has 1/, () => [new EchoVsp()]],
      [
        'another device at the same place',
        () => {},
        /VMBus device 1 \(a9a0f4e7-5a45-4d96-b827-8a841e8c03e6 .*\): the saved VM had 0e0b6031-5213-4934-818b-38d90ced39db/,
        () => [new EchoVsp(), new KvpVsp({ log: () => {} })],
      ],
      [
        'a relid beyond the limit',
        (s) => {
          s.server.channels[0]!.relid = 300;
        },
        /relid 300 outside/,
      ],
      [
        'a PFN outside guest memory',
        (s) => {
          s.server.gpadls[0]!.pages[1] = MEMORY / 4096;
        },
        /PFN 1024 outside guest memory/,
      ],
      [
        'a channel target VP beyond the VPs',
        (s) => {
          s.server.channels[1]!.targetVp = 2;
        },
        /target VP 2/,
      ],
      [
        'a queued message for a VP beyond the VPs',
        (s) => {
          s.outbox.push({ vp: 2, message: encodeChannelMessage({ type: T.UnloadResponse }) });
        },
        /queued message 0 for VP 2/,
      ],
      [
        'a queued message that is no VMBus message',
        (s) => {
          s.outbox.push({ vp: 0, message: new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0]) });
        },
        /queued message 0 is not a VMBus message/,
      ],
      [
        'a ring GPADL that is not contiguous',
        (s) => {
          s.server.gpadls[0]!.pages[5] = 0x180;
        },
        /relid 1: ring GPADL page 5 \(PFN 0x180\) is not contiguous/,
      ],
      [
        'a device state for a channel that is not open',
        (s) => {
          s.channelStates.push({ relid: 1, state: new Uint8Array(4) });
        },
        /echo saved state|device state for relid 1/,
      ],
      [
        'a corrupt device state',
        (s) => {
          s.channelStates[0]!.state = s.channelStates[0]!.state.subarray(1);
        },
        /shutdown saved state/,
      ],
      [
        'a binding to a sub-channel relid',
        (s) => {
          s.vsps[0]!.relid = 9;
        },
        /bound to relid 9, which is no primary channel/,
      ],
    ];
    for (const [what, mutate, message, configured] of cases) {
      it(what, async () => {
        const p = partition();
        const a = await busyHost(p);
        const good = a.host.saveState();
        a.host.dispose();
        const s = decodeVmbusState(good);
        mutate(s);
        const b = hostOn(p, configured?.() ?? [new EchoVsp(), new ShutdownVsp({ log: () => {} })]);
        expect(() => b.host.restoreState(encodeVmbusState(s))).toThrow(message);
        expect(b.host.server.connectionPhase).toBe('disconnected');
        expect(b.host.channel(1)).toBeUndefined();
        if (!configured) {
          b.host.restoreState(good); // no port, record or device state was left behind
          expect(b.host.channel(2)?.state).toBe('open');
        }
      });
    }

    it('truncated bytes and another format', async () => {
      const p = partition();
      const a = await busyHost(p);
      const good = a.host.saveState();
      a.host.dispose();
      const b = hostOn(p, [new EchoVsp(), new ShutdownVsp({ log: () => {} })]);
      expect(() => b.host.restoreState(good.subarray(0, good.length - 5))).toThrow(/VMBus saved state: undecodable/);
      const v2 = Uint8Array.from(good);
      v2[1] = 2;
      expect(() => b.host.restoreState(v2)).toThrow(/format 2 is not supported/);
      b.host.restoreState(good);
      expect(() => b.host.restoreState(good)).toThrow(/only into a VMBus host the guest has not used yet/);
    });
  });
});
