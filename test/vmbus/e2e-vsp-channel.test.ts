/**
 * The VSP framework's channel against a guest peer written with the host ring classes (the rings
 * are byte-compatible with the guest's by test/vectors/ring): batching and signal counts, flow
 * control through pending_send_sz, GPA-direct bounds, ring corruption, ring layout checks, and the
 * host → guest message outbox under INSUFFICIENT_BUFFERS.
 */
import { describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { buildChannelRings } from '../../vmbus/host/channel-rings.ts';
import { GuestMessageOutbox } from '../../vmbus/host/guest-message-outbox.ts';
import { VspChannel } from '../../vmbus/host/vsp-channel.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing, encodeGpaDirectHeader, type GpaRange } from '../../vmbus/ring/index.ts';
import type { OpenedChannel } from '../../vmbus/server/server-types.ts';
import { EchoVsp } from '../../root-partition/vsp/echo/echo-vsp.ts';
import { ECHO_INTERFACE_TYPE, ECHO_OP_ECHO, ECHO_OP_REVERSE, ECHO_STATUS_INVALID_PARAMETER } from '../../root-partition/vsp/echo/echo-protocol.ts';
import { guidFromWords, guidToBytes } from '../../vmbus/protocol/guid.ts';
import {
  EchoInterface,
  HeartbeatInterface,
  IdeInterface,
  KvpInterface,
  NetvscInterface,
  ShutdownInterface,
  StorvscInterface,
  TimeSyncInterface,
} from '../../abi/vmbus-channel.ts';

const MEM = 1 << 20;
const FIRST_PFN = 16;

function opened(pages: number[], down: number): OpenedChannel {
  return {
    relid: 3,
    subChannelIndex: 0,
    primaryRelid: 3,
    connectionId: 19,
    targetVp: 0,
    openId: 3,
    gpadlHandle: 0xe1e10,
    ringPages: pages,
    downstreamPageOffset: down,
    userData: new Uint8Array(120),
  };
}
const run = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function rig(inPages = 4, outPages = 4) {
  const mem = new GuestMemory(MEM);
  const built = buildChannelRings(mem, opened(run(FIRST_PFN, inPages + outPages), inPages));
  if (!built.ok) throw new Error(built.reason);
  // The guest's view: it produces into the host's inbound ring and consumes the outbound one.
  const guestOut = VmbusRing.create(mem, FIRST_PFN * 4096, (inPages - 1) * 4096) as VmbusRing;
  const guestIn = VmbusRing.create(mem, (FIRST_PFN + inPages) * 4096, (outPages - 1) * 4096) as VmbusRing;
  guestOut.initAsProducer();
  const events = { signals: 0, failures: [] as string[] };
  const echo = new EchoVsp();
  const channel = new VspChannel(mem, echo, opened(run(FIRST_PFN, inPages + outPages), inPages), built.rings, {
    signalGuest: () => {
      events.signals++;
      return true;
    },
    channelFailed: (_ch, reason) => {
      events.failures.push(reason);
    },
  });
  return { mem, channel, echo, guestOut, guestIn, events };
}

function echoRequest(seq: number, length: number): Uint8Array {
  const b = new Uint8Array(8 + length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, ECHO_OP_ECHO, true);
  dv.setUint32(4, length, true);
  for (let i = 0; i < length; i++) b[8 + i] = (seq * 7 + i) & 0xff;
  return b;
}

function readAll(ring: VmbusRing): { packets: { type: number; id: number; payload: Uint8Array }[]; signal: boolean } {
  const r = ring.reader();
  const p = new ReceivedPacket(8192);
  const packets = [];
  for (let got = r.tryRead(p); got !== null; got = r.tryRead(p)) {
    if (got.kind === 'corrupt') throw new Error(got.reason);
    packets.push({ type: p.type, id: p.transIdLo, payload: p.payload().slice() });
  }
  return { packets, signal: r.commit() };
}

describe('VSP channel: batching and signals', () => {
  it('answers a batch of ten requests with ten completions and one signal', () => {
    const { channel, guestOut, guestIn, events, echo } = rig();
    const w = guestOut.writer();
    for (let i = 0; i < 10; i++)
      expect(w.tryWrite({ type: VmbusPacketType.DataInband, flags: 1, transactionId: 100 + i, payload: echoRequest(i, 50) })).toBe(true);
    expect(w.commit()).toBe(true); // empty → non-empty: the guest signals once
    channel.onGuestSignal();
    expect(events.signals).toBe(1);
    expect(channel.stats).toMatchObject({ packetsIn: 10, packetsOut: 10, signalsFromGuest: 1, batches: 1 });
    const { packets } = readAll(guestIn);
    expect(packets.map((p) => p.id)).toEqual(run(100, 10));
    for (const [i, p] of packets.entries()) {
      expect(p.type).toBe(VmbusPacketType.Completion);
      expect(Buffer.from(p.payload.subarray(0, 58)).equals(Buffer.from(echoRequest(i, 50)))).toBe(true);
    }
    expect(echo.stats.echoed).toBe(10);
    // Nothing new: a spurious signal neither reads nor signals.
    channel.onGuestSignal();
    expect(events.signals).toBe(1);
  });

  it('does not signal while the guest masks its ring, and replies in-band without a completion request', () => {
    const { channel, guestOut, guestIn, events } = rig();
    guestIn.maskInterrupt();
    const w = guestOut.writer();
    w.tryWrite({ type: VmbusPacketType.DataInband, transactionId: 7, payload: echoRequest(1, 8) });
    w.commit();
    channel.onGuestSignal();
    expect(events.signals).toBe(0);
    const { packets } = readAll(guestIn);
    expect(packets).toHaveLength(1);
    expect(packets[0]).toMatchObject({ type: VmbusPacketType.DataInband, id: 7 });
  });

  it('stops reading when the host → guest ring is full and resumes on the guest signal (pending_send_sz)', () => {
    const { channel, guestOut, guestIn, events } = rig(4, 2); // host → guest: one 4 KiB data page
    const w = guestOut.writer();
    for (let i = 0; i < 10; i++) expect(w.tryWrite({ type: VmbusPacketType.DataInband, flags: 1, transactionId: i, payload: echoRequest(i, 900) })).toBe(true);
    w.commit();
    channel.onGuestSignal();
    expect(channel.stats.waitsForSpace).toBe(1);
    expect(guestIn.pendingSendSize()).toBeGreaterThan(0);
    const ids: number[] = [];
    for (let round = 0; round < 20 && ids.length < 10; round++) {
      const { packets, signal } = readAll(guestIn);
      ids.push(...packets.map((p) => p.id));
      for (const p of packets) expect(Buffer.from(p.payload.subarray(0, 908)).equals(Buffer.from(echoRequest(p.id, 900)))).toBe(true);
      if (ids.length < 10) expect(signal).toBe(true); // the read freed what the host asked for
      channel.onGuestSignal();
    }
    expect(ids).toEqual(run(0, 10));
    expect(events.failures).toEqual([]);
    expect(events.signals).toBeLessThanOrEqual(channel.stats.batches);
  });
});

describe('VSP channel: hostile guest', () => {
  it('fails the channel on a corrupt descriptor and never touches the ring again', () => {
    const { mem, channel, guestOut, events } = rig();
    const w = guestOut.writer();
    w.tryWrite({ type: VmbusPacketType.DataInband, payload: echoRequest(0, 8) });
    w.commit();
    mem.u8[guestOut.dataGpa + 2] = 1; // offset8 = 1 (< 2)
    const readBefore = guestOut.readIndex();
    channel.onGuestSignal();
    expect(channel.state).toBe('failed');
    expect(events.failures).toHaveLength(1);
    expect(events.failures[0]).toMatch(/ring corrupt: offset8 1 < 2/);
    expect(guestOut.readIndex()).toBe(readBefore);
    channel.onGuestSignal();
    expect(events.failures).toHaveLength(1);
    expect(channel.stats.packetsOut).toBe(0);
  });

  it('fails the channel when the guest corrupts the read_index of the host → guest ring', () => {
    const { channel, guestOut, guestIn, events } = rig(4, 2);
    const w = guestOut.writer();
    for (let i = 0; i < 6; i++) w.tryWrite({ type: VmbusPacketType.DataInband, flags: 1, transactionId: i, payload: echoRequest(i, 900) });
    w.commit();
    channel.onGuestSignal(); // fills the host → guest ring, then waits for space
    Atomics.store(guestIn.mem.i32, guestIn.readIndexWord, 4095);
    channel.onGuestSignal();
    expect(channel.state).toBe('failed');
    expect(events.failures[0]).toMatch(/read_index 4095/);
  });

  it('refuses GPA-direct ranges outside guest memory and reverses a buffer spread over non-contiguous pages', () => {
    const { mem, channel, guestOut, guestIn } = rig();
    const request = new Uint8Array(8);
    new DataView(request.buffer).setUint32(0, ECHO_OP_REVERSE, true);
    const bad: GpaRange = { byteCount: 64, byteOffset: 0, pfns: [MEM / 4096] };
    // Two ranges: the tail of page 100 and the head of page 90.
    const good: GpaRange[] = [
      { byteCount: 96, byteOffset: 4000, pfns: [100] },
      { byteCount: 50, byteOffset: 0, pfns: [90] },
    ];
    const bytes = [...mem.u8.subarray(100 * 4096 + 4000, 100 * 4096 + 4096), ...mem.u8.subarray(90 * 4096, 90 * 4096 + 50)];
    for (let i = 0; i < 96; i++) mem.u8[100 * 4096 + 4000 + i] = i;
    for (let i = 0; i < 50; i++) mem.u8[90 * 4096 + i] = 96 + i;
    expect(bytes).toHaveLength(146);
    const w = guestOut.writer();
    w.tryWrite({ type: VmbusPacketType.DataUsingGpaDirect, flags: 1, transactionId: 1, header: encodeGpaDirectHeader([bad]), payload: request });
    w.tryWrite({ type: VmbusPacketType.DataUsingGpaDirect, flags: 1, transactionId: 2, header: encodeGpaDirectHeader(good), payload: request });
    w.commit();
    channel.onGuestSignal();
    const { packets } = readAll(guestIn);
    const status = (p: { payload: Uint8Array }) => new DataView(p.payload.buffer).getUint32(0, true);
    expect(packets.map((p) => p.id)).toEqual([1, 2]);
    expect(status(packets[0])).toBe(ECHO_STATUS_INVALID_PARAMETER);
    expect(status(packets[1])).toBe(0);
    expect(new DataView(packets[1].payload.buffer).getUint32(4, true)).toBe(146);
    const after = [...mem.u8.subarray(100 * 4096 + 4000, 100 * 4096 + 4096), ...mem.u8.subarray(90 * 4096, 90 * 4096 + 50)];
    expect(after).toEqual(run(0, 146).reverse());
    expect(channel.state).toBe('open');
  });
});

describe('interface GUIDs (abi/vmbus-channel.ts, read by host and guest)', () => {
  it('are the wire bytes of the GUIDs Linux and Hyper-V give the devices', () => {
    // Linux include/linux/hyperv.h HV_*_GUID, and tsvisor's echo device.
    const texts: [{ W0: number; W1: number; W2: number; W3: number }, string][] = [
      [StorvscInterface, 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f'],
      [IdeInterface, '32412632-86cb-44a2-9b5c-50d1417354f5'],
      [NetvscInterface, 'f8615163-df3e-46c5-913f-f2d2f965ed0e'],
      [HeartbeatInterface, '57164f39-9115-4e78-ab55-382f3bd5422d'],
      [ShutdownInterface, '0e0b6031-5213-4934-818b-38d90ced39db'],
      [TimeSyncInterface, '9527e630-d0ae-497b-adce-e80ab0175caf'],
      [KvpInterface, 'a9a0f4e7-5a45-4d96-b827-8a841e8c03e6'],
      [EchoInterface, 'a7b3d43e-9b0c-4c62-8f3a-5e6d2c1b0e11'],
    ];
    for (const [words, text] of texts) expect(guidFromWords(words), text).toBe(text);
    // The guest lays each out as four little-endian u32 words: the VMBus wire layout.
    const w = new Uint8Array(new Uint32Array([EchoInterface.W0, EchoInterface.W1, EchoInterface.W2, EchoInterface.W3].map((x) => x >>> 0)).buffer);
    expect([...w]).toEqual([...guidToBytes(ECHO_INTERFACE_TYPE)!]);
    expect([...w]).toEqual([0x3e, 0xd4, 0xb3, 0xa7, 0x0c, 0x9b, 0x62, 0x4c, 0x8f, 0x3a, 0x5e, 0x6d, 0x2c, 0x1b, 0x0e, 0x11]);
  });
});

describe('channel rings over a GPADL', () => {
  const mem = new GuestMemory(MEM);
  it('splits at the downstream offset and initialises the host → guest ring as its producer', () => {
    const built = buildChannelRings(mem, opened(run(32, 6), 2));
    expect(built.ok).toBe(true);
    if (!built.ok) return;
    expect(built.rings.inbound.controlGpa).toBe(32 * 4096);
    expect(built.rings.inbound.dataSize).toBe(4096);
    expect(built.rings.outbound.controlGpa).toBe(34 * 4096);
    expect(built.rings.outbound.dataSize).toBe(3 * 4096);
    expect(built.rings.outbound.featureBits()).toBe(1);
  });
  it('refuses non-contiguous pages, pages outside memory and rings without a data page', () => {
    expect(buildChannelRings(mem, opened([32, 33, 35, 36], 2))).toMatchObject({ ok: false, reason: expect.stringMatching(/not contiguous/) });
    expect(buildChannelRings(mem, opened(run(MEM / 4096 - 2, 4), 2))).toMatchObject({ ok: false, reason: expect.stringMatching(/outside guest memory/) });
    expect(buildChannelRings(mem, opened(run(32, 4), 3))).toMatchObject({ ok: false });
  });
});

describe('host → guest message outbox', () => {
  it('keeps messages in order through INSUFFICIENT_BUFFERS and retries without dropping', async () => {
    const delivered: number[] = [];
    let refuse = 3;
    const outbox = new GuestMessageOutbox(
      (m) => {
        if (refuse > 0) {
          refuse--;
          return HvStatus.InsufficientBuffers;
        }
        delivered.push(m[0]);
        return HvStatus.Success;
      },
      () => {
        throw new Error('dropped');
      },
    );
    for (let i = 1; i <= 5; i++) outbox.send(Uint8Array.of(i), 0);
    expect(delivered).toEqual([]);
    expect(outbox.pending).toBe(5);
    for (let t = 0; t < 50 && outbox.pending > 0; t++) await new Promise((r) => setTimeout(r, 2));
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(outbox.deferred).toBe(3);
    expect(outbox.dropped).toBe(0);
    outbox.close();
  });
  it('drops and reports a post the guest made impossible (SynIC disabled)', () => {
    const dropped: HvStatus[] = [];
    const outbox = new GuestMessageOutbox(
      () => HvStatus.InvalidSynicState,
      (s) => dropped.push(s),
    );
    outbox.send(Uint8Array.of(1), 0);
    expect(dropped).toEqual([HvStatus.InvalidSynicState]);
    expect(outbox.pending).toBe(0);
  });
});
