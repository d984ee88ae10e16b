/**
 * The VMBus server's saved state: a server driven by real guest messages into every kind of
 * record (open primary and sub-channel, rescinded channel, a GPADL awaiting its body, a teardown
 * deferred behind an open channel) is saved, restored into a new server and saved again to the
 * same bytes; the same further guest messages then produce the same host messages from both.
 * A state that does not fit this build or the partition is refused whole.
 */
import { describe, expect, it } from 'vitest';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { encodeChannelMessage, encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import { decodeVmbusState, encodeVmbusState, type VmbusSavedState } from '../../vmbus/host/vmbus-saved-state.ts';
import type { ServerSavedState } from '../../vmbus/server/server-state.ts';
import { LIMITS, NET, SCSI, makeServer } from './channel-server-harness.ts';

const T = C.ChannelMessageType;
const SCSI2 = '00000000-0000-0000-0000-0000000000b2';
const pfns = (from: number, n: number) => Array.from({ length: n }, (_, i) => BigInt(from + i));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytesOf = (server: ServerSavedState) => encodeVmbusState({ server, outbox: [], vsps: [], channelStates: [] });

/** A server with one of each kind of record (limits: 2 VPs, 16 relids, 8 GPADLs, 2 awaiting a body). */
function busyServer() {
  const h = makeServer();
  const { server, post, contact, gpadl, open, n } = h;
  server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI }); // relid 1
  server.offerChannel({ interfaceType: NET, interfaceInstance: NET, flags: 0x2000, userDefined: new Uint8Array([1, 2, 3]) }); // 2
  server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI2 }); // 3
  contact(C.VmbusVersion.Win10V5_3, 4, 1); // messages go to VP 1
  post({ type: T.RequestOffers });
  gpadl(1, 0x10, 8);
  open(1, 0x10, 4, 1, 77);
  const sub = server.offerSubchannel(1); // relid 4
  gpadl(sub, 0x11, 8);
  open(sub, 0x11, 4, 0, 5);
  // 40 pages: the header carries 26 PFNs, the body with the other 14 has not come yet.
  server.handleGuestMessage(encodeGpadl(2, 0x20, pfns(0x300, 40))[0], C.VMBUS_MESSAGE_CONNECTION_ID);
  gpadl(2, 0x21, 6);
  open(2, 0x21, 3, 1, 9);
  post({ type: T.GpadlTeardown, childRelid: 2, gpadl: 0x21 }); // deferred: the channel is open on it
  server.rescindChannel(3);
  n.sent = [];
  n.opened = [];
  n.closed = [];
  n.released = [];
  return { ...h, sub };
}

/** What happens next, identical for both servers. */
function continueConversation(h: ReturnType<typeof makeServer>) {
  h.server.handleGuestMessage(encodeGpadl(2, 0x20, pfns(0x300, 40))[1], C.VMBUS_MESSAGE_CONNECTION_ID);
  h.post({ type: T.CloseChannel, childRelid: 2 });
  h.post({ type: T.RelidReleased, childRelid: 3 });
  h.post({ type: T.CloseChannel, childRelid: 4 });
  h.post({ type: T.GpadlTeardown, childRelid: 4, gpadl: 0x11 });
  h.server.offerSubchannel(1);
  h.post({
    type: T.OpenChannel,
    childRelid: 2,
    openId: 10,
    ringGpadlHandle: 0x20,
    targetVp: 0,
    downstreamRingPageOffset: 20,
    userData: new Uint8Array(120).fill(7),
  });
  h.post({ type: T.Unload });
  h.contact(C.VmbusVersion.Win10V5_3, 4, 0);
  h.post({ type: T.RequestOffers });
}

describe('VMBus server saved state', () => {
  it('round-trips every kind of record to identical bytes, and both servers answer the same guest alike', () => {
    const a = busyServer();
    const saved = a.server.exportState();
    expect(saved.channels.map((c) => [c.relid, c.state, c.subChannelIndex, c.primaryRelid])).toEqual([
      [1, 'open', 0, 0],
      [2, 'open', 0, 0],
      [3, 'rescinded', 0, 0],
      [4, 'open', 1, 1],
    ]);
    expect(saved.gpadls.map((g) => [g.handle, g.complete, g.awaitingBody, g.teardownPending, g.usedByRelid, g.pages.length])).toEqual([
      [0x10, true, false, false, 1, 8],
      [0x11, true, false, false, 4, 8],
      [0x20, false, true, false, 0, 26],
      [0x21, true, false, true, 2, 6],
    ]);
    const bytes = bytesOf(saved);
    const b = makeServer();
    b.server.importState(decodeVmbusState(bytes).server, (c) => ({
      interfaceType: c.interfaceType,
      interfaceInstance: c.interfaceInstance,
      ...(c.interfaceType === NET ? { flags: 0x2000, userDefined: new Uint8Array([1, 2, 3]) } : {}),
    }));
    expect(hex(bytesOf(b.server.exportState()))).toBe(hex(bytes));
    expect(b.server.connectionPhase).toBe('connected');
    expect(b.server.pendingGpadlCount).toBe(1);
    expect(b.n.sent).toEqual([]); // a restore sends nothing
    continueConversation(a);
    continueConversation(b);
    expect(a.n.sent.length).toBeGreaterThanOrEqual(10);
    expect(b.n.sent.map((s) => [s.vp, hex(s.bytes)])).toEqual(a.n.sent.map((s) => [s.vp, hex(s.bytes)]));
    expect(b.n.closed).toEqual(a.n.closed);
    expect(b.n.released).toEqual(a.n.released);
    expect(b.n.opened).toEqual(a.n.opened);
    expect(b.n.errors.map((e) => e.message)).toEqual(a.n.errors.map((e) => e.message));
    expect(a.n.errors).toEqual([]);
    // The messages that prove each record came back: the awaited body completes GPADL 0x20, the
    // close sends the deferred TORNDOWN of 0x21, and the new sub-channel takes the next index.
    const types = a.n.sent.map((s) => s.message);
    expect(types.slice(0, 2)).toEqual([
      { type: T.GpadlCreated, childRelid: 2, gpadl: 0x20, status: 0 },
      { type: T.GpadlTorndown, gpadl: 0x21 },
    ]);
    expect(types).toContainEqual(expect.objectContaining({ type: T.OfferChannel, childRelid: 3, subChannelIndex: 2 }));
  });

  it('a disconnected server with registered channels round-trips too', () => {
    const a = makeServer();
    a.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    const bytes = bytesOf(a.server.exportState());
    const b = makeServer();
    b.server.importState(decodeVmbusState(bytes).server, (c) => ({ interfaceType: c.interfaceType, interfaceInstance: c.interfaceInstance }));
    expect(hex(bytesOf(b.server.exportState()))).toBe(hex(bytes));
    a.connect();
    b.connect();
    a.post({ type: T.Unload });
    b.post({ type: T.Unload });
    expect(b.n.take()).toEqual(a.n.take());
  });
});

describe('VMBus server saved state: refused when it does not fit', () => {
  const cases: [string, (s: ServerSavedState) => void, RegExp][] = [
    [
      'a relid beyond the limit',
      (s) => {
        s.channels[2]!.relid = LIMITS.maxChannels + 1;
        s.channels[2]!.connectionId = 16 + LIMITS.maxChannels + 1;
      },
      /channel relid 17 outside 1\.\.16/,
    ],
    [
      'a PFN outside guest memory',
      (s) => {
        s.gpadls[0]!.pages[3] = LIMITS.guestPageCount;
      },
      /GPADL 16: PFN 16384 outside guest memory/,
    ],
    [
      'a channel target VP beyond the VPs',
      (s) => {
        s.channels[0]!.targetVp = 2;
      },
      /relid 1: target VP 2 is not below the partition's 2 VPs/,
    ],
    [
      'a target VCPU beyond the VPs',
      (s) => {
        s.targetVcpu = 2;
      },
      /target VCPU 2/,
    ],
    [
      'an unknown version',
      (s) => {
        s.version = 0x12345;
      },
      /negotiated version 0x12345/,
    ],
    [
      'too many GPADLs',
      (s) => {
        for (let i = 0; i < 6; i++) s.gpadls.push({ ...s.gpadls[2]!, handle: 0x40 + i, awaitingBody: false, complete: true, pageCount: 26 });
      },
      /10 GPADLs, more than the limit 8/,
    ],
    [
      'too many GPADLs awaiting a body',
      (s) => {
        for (let i = 0; i < 2; i++) s.gpadls.push({ ...s.gpadls[2]!, handle: 0x40 + i });
      },
      /3 GPADLs awaiting a body, more than the limit 2/,
    ],
    [
      'an open channel without its ring GPADL',
      (s) => {
        s.gpadls.splice(0, 1);
      },
      /relid 1: ring GPADL 16 is not a complete GPADL held by it/,
    ],
    [
      'a GPADL of a relid that does not exist',
      (s) => {
        s.gpadls[2]!.relid = 9;
      },
      /GPADL 32 of relid 9, which does not exist/,
    ],
    [
      'a wrong connection id',
      (s) => {
        s.channels[0]!.connectionId = 99;
      },
      /relid 1: connection id 99, expected 17/,
    ],
    [
      'a sub-channel of a missing primary',
      (s) => {
        s.channels[3]!.primaryRelid = 12;
      },
      /relid 4: sub-channel of relid 12, which does not exist/,
    ],
    [
      'a disconnected server with GPADLs',
      (s) => {
        s.connected = false;
        s.version = 0;
        s.targetVcpu = 0;
        s.offersRequested = false;
      },
      /disconnected|offered to the guest/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    it(what, () => {
      const state = decodeVmbusState(bytesOf(busyServer().server.exportState())).server;
      mutate(state);
      const fresh = makeServer();
      fresh.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
      const before = hex(bytesOf(fresh.server.exportState()));
      expect(() => fresh.server.importState(state, (c) => ({ interfaceType: c.interfaceType, interfaceInstance: c.interfaceInstance }))).toThrow(message);
      expect(hex(bytesOf(fresh.server.exportState()))).toBe(before); // nothing applied
    });
  }

  it('truncated bytes and an unknown format are refused by the decoder', () => {
    const bytes = bytesOf(busyServer().server.exportState());
    expect(() => decodeVmbusState(bytes.subarray(0, bytes.length - 7))).toThrow(/VMBus saved state: undecodable/);
    const other: VmbusSavedState = decodeVmbusState(bytes);
    const reencoded = encodeVmbusState(other);
    expect(hex(reencoded)).toBe(hex(bytes));
    // format is field 1, varint: 08 01 → 08 02
    expect(hex(bytes.subarray(0, 2))).toBe('0801');
    const v2 = Uint8Array.from(bytes);
    v2[1] = 2;
    expect(() => decodeVmbusState(v2)).toThrow(/format 2 is not supported \(this build reads 1\)/);
    expect(() => decodeVmbusState(encodeChannelMessage({ type: T.Unload }))).toThrow(/VMBus saved state/);
  });
});
