import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { decodeChannelMessage } from '../../vmbus/protocol/channel-decode.ts';
import { guidLiteral } from '../../vmbus/protocol/guid.ts';
import type { VmbusServerLimits } from '../../vmbus/server/server-types.ts';
import { VmbusServer } from '../../vmbus/server/vmbus-server.ts';
import { GPA, GUEST_PAGES, compileGuestChannel, instantiateGuestChannel } from './channel-as-guest.ts';
import { NET, RecordingNotifier, SCSI } from './channel-server-harness.ts';

const T = C.ChannelMessageType;
const ST = GPA.state;
const OUT = GPA.out;
// client-state.ts enums
const Phase = { Ready: 3, Unloaded: 5 };
const Ch = { None: 0, Offered: 1, Open: 3, Rescinded: 5 };
const Gp = { None: 0, Created: 2 };

let module: WebAssembly.Module;
beforeAll(async () => {
  module = await compileGuestChannel();
}, 60_000);

/**
 * The AS guest client and the TS server joined by a transport that only moves bytes: guest
 * messages go to the server with the connection id the client names; host messages are put one
 * at a time into a slot in guest memory, as the SINT2 message slot would hold them.
 */
function conversation(limits: Partial<VmbusServerLimits> = {}) {
  const { g, bytes: mem } = instantiateGuestChannel(module);
  const n = new RecordingNotifier();
  const server = new VmbusServer(n, {
    vpCount: 2,
    guestPageCount: GUEST_PAGES,
    maxGpadls: 16,
    maxPagesPerGpadl: 256,
    maxPendingGpadls: 2,
    maxChannels: 32,
    ...limits,
  });
  const posted: { type: number; version?: number; conn: number }[] = [];
  const guestResults: number[] = [];
  const post = (length: number) => {
    guestResults.push(length);
    if (length <= 0) return;
    const bytes = mem.slice(OUT, OUT + length);
    const conn = g.clientPostConnectionId(ST);
    const d = decodeChannelMessage(bytes);
    posted.push({ type: d.ok ? d.message.type : -1, version: d.ok && d.message.type === T.InitiateContact ? d.message.version : undefined, conn });
    server.handleGuestMessage(bytes, conn);
  };
  const pump = () => {
    while (n.sent.length > 0) {
      const { bytes } = n.sent.shift()!;
      mem.set(bytes, GPA.rx);
      post(g.clientReceive(ST, GPA.rx, bytes.length, OUT));
    }
  };
  const run = (length: number) => {
    post(length);
    pump();
  };
  const guid = (text: string) => {
    mem.set(guidLiteral(text), GPA.scratch);
    return GPA.scratch;
  };
  const pfns = (at: number, list: number[]) => {
    const view = new DataView(mem.buffer);
    list.forEach((p, i) => view.setBigUint64(at + 8 * i, BigInt(p), true));
    return at;
  };
  /** Creates a GPADL the way a driver does: header, then bodies until the client says done. */
  const createGpadl = (relid: number, handle: number, pages: number[], at: number) => {
    post(g.clientCreateGpadl(ST, relid, handle, pfns(at, pages), pages.length, OUT));
    for (let len = g.clientNextGpadlBody(ST, OUT); len > 0; len = g.clientNextGpadlBody(ST, OUT)) post(len);
    pump();
  };
  g.clientInit(ST, 0, 0x3000, 0x4000, 0x5000);
  return { g, mem, n, server, posted, guestResults, run, guid, createGpadl };
}

describe('AS guest client ↔ TS server over a byte transport', () => {
  it("a channel's whole life: negotiate down to 4.0, offers, three-message GPADL, open, sub-channel, rescind, close, unload", () => {
    const c = conversation({ maxVersion: C.VmbusVersion.Win10 }); // a QEMU-like host
    const { g, n, server } = c;
    const scsi = server.offerChannel({ interfaceType: SCSI, interfaceInstance: '6d2a5b61-0000-4f6b-9b52-3fd9b8c94c39' });
    const net = server.offerChannel({ interfaceType: NET, interfaceInstance: '5fd3ee8e-1111-4a55-8e4c-9b2e3d4f5a6b' });

    c.run(g.clientStart(ST, OUT));
    expect(c.posted.map((p) => [p.version, p.conn])).toEqual([
      [0x60000, 4],
      [0x50003, 4],
      [0x50002, 4],
      [0x50001, 4],
      [0x50000, 4],
      [0x40001, 1],
      [0x40000, 1],
      [undefined, 1],
    ]);
    expect(c.posted.at(-1)!.type).toBe(T.RequestOffers);
    expect([g.clientPhase(ST), g.clientVersion(ST), g.clientMsgConnId(ST), g.clientOfferCount(ST)]).toEqual([Phase.Ready, 0x40000, 1, 2]);
    expect(g.clientFindOffer(ST, c.guid(SCSI), 0)).toBe(scsi);
    expect(g.clientFindOffer(ST, c.guid(NET), 0)).toBe(net);
    expect(g.clientChannelConnectionId(ST, scsi)).toBe(16 + scsi);

    const ring = Array.from({ length: 64 }, (_, i) => 0x300 + i);
    c.createGpadl(scsi, 0xe1e10, ring, GPA.pfns);
    expect(c.posted.slice(-3).map((p) => p.type)).toEqual([T.GpadlHeader, T.GpadlBody, T.GpadlBody]); // 26 + 28 + 10 PFNs
    expect(g.clientGpadlState(ST, 0xe1e10)).toBe(Gp.Created);
    expect(server.gpadl(0xe1e10)!.pages).toEqual(ring);

    c.run(g.clientOpenChannel(ST, scsi, 0xe1e10, 32, 1, 0, OUT));
    expect(g.clientChannelState(ST, scsi)).toBe(Ch.Open);
    expect(n.opened).toMatchObject([{ relid: scsi, ringPages: ring, downstreamPageOffset: 32, targetVp: 1, connectionId: 16 + scsi }]);

    const sub = server.offerSubchannel(scsi);
    c.run(0);
    expect([g.clientOfferCount(ST), g.clientFindOffer(ST, c.guid(SCSI), 1), g.clientChannelSubIndex(ST, sub)]).toEqual([3, sub, 1]);
    c.createGpadl(sub, 0xe1e11, [0x380, 0x381, 0x382, 0x383], GPA.pfns + 0x1000);
    c.run(g.clientOpenChannel(ST, sub, 0xe1e11, 2, 0, 0, OUT));
    expect(g.clientChannelState(ST, sub)).toBe(Ch.Open);
    expect(n.opened.at(-1)).toMatchObject({ relid: sub, subChannelIndex: 1, primaryRelid: scsi });

    // Hot-remove of the sub-channel: the guest closes, tears down and releases, as Linux does.
    server.rescindChannel(sub);
    c.run(0);
    expect(g.clientChannelState(ST, sub)).toBe(Ch.Rescinded);
    expect(n.closed).toEqual([sub]);
    c.run(g.clientCloseChannel(ST, sub, OUT));
    c.run(g.clientTeardownGpadl(ST, 0xe1e11, OUT));
    expect(g.clientGpadlState(ST, 0xe1e11)).toBe(Gp.None);
    c.run(g.clientReleaseRelid(ST, sub, OUT));
    expect([n.released, server.channel(sub), g.clientChannelState(ST, sub)]).toEqual([[sub], undefined, Ch.None]);

    c.run(g.clientCloseChannel(ST, scsi, OUT));
    c.run(g.clientTeardownGpadl(ST, 0xe1e10, OUT));
    expect([g.clientChannelState(ST, scsi), g.clientGpadlState(ST, 0xe1e10), server.gpadlCount]).toEqual([Ch.Offered, Gp.None, 0]);
    c.run(g.clientUnload(ST, OUT));
    expect([g.clientPhase(ST), g.clientOfferCount(ST), server.connectionPhase]).toEqual([Phase.Unloaded, 0, 'disconnected']);
    expect(n.errors).toEqual([]);
    expect(g.clientLastError(ST)).toBe(0);
    expect(c.guestResults.every((r) => r >= 0)).toBe(true);
  });

  it('newest version first: a full server accepts 6.0 on connection 4 and names connection 1', () => {
    const c = conversation();
    c.run(c.g.clientStart(ST, OUT));
    expect(c.posted.map((p) => [p.type, p.conn])).toEqual([
      [T.InitiateContact, 4],
      [T.RequestOffers, 1],
    ]);
    expect([c.g.clientVersion(ST), c.g.clientMsgConnId(ST), c.server.negotiatedVersion]).toEqual([0x60000, 1, 0x60000]);
  });

  it('a host that refuses every version: the client tries all eight, then stops', () => {
    const c = conversation({ maxVersion: C.VmbusVersion.Win8 });
    c.run(c.g.clientStart(ST, OUT));
    expect(c.posted.map((p) => p.version)).toEqual([0x60000, 0x50003, 0x50002, 0x50001, 0x50000, 0x40001, 0x40000, 0x30000]);
    expect([c.g.clientPhase(ST), c.server.connectionPhase]).toEqual([6, 'disconnected']);
  });

  it('UNLOAD with an open channel: the server closes it and both sides forget everything', () => {
    const c = conversation();
    const relid = c.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    c.run(c.g.clientStart(ST, OUT));
    c.createGpadl(relid, 7, [0x300, 0x301, 0x302, 0x303], GPA.pfns);
    c.run(c.g.clientOpenChannel(ST, relid, 7, 2, 0, 0, OUT));
    expect(c.g.clientChannelState(ST, relid)).toBe(Ch.Open);
    c.run(c.g.clientUnload(ST, OUT));
    expect(c.n.closed).toEqual([relid]);
    expect([c.g.clientPhase(ST), c.g.clientGpadlState(ST, 7), c.server.gpadlCount]).toEqual([Phase.Unloaded, Gp.None, 0]);
    // And the guest can connect again and see the offer again.
    c.run(c.g.clientStart(ST, OUT));
    expect([c.g.clientPhase(ST), c.g.clientFindOffer(ST, c.guid(SCSI), 0)]).toEqual([Phase.Ready, relid]);
  });

  it('a refused open is reported to the guest with the host status', () => {
    const c = conversation();
    const relid = c.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    c.run(c.g.clientStart(ST, OUT));
    c.createGpadl(relid, 7, [0x300, 0x301, 0x302, 0x303], GPA.pfns);
    c.n.openStatus = C.ChannelStatus.Unsuccessful;
    c.run(c.g.clientOpenChannel(ST, relid, 7, 2, 0, 0, OUT));
    expect([c.g.clientChannelState(ST, relid), c.g.clientChannelOpenStatus(ST, relid) >>> 0]).toEqual([4, C.ChannelStatus.Unsuccessful]);
  });
});

describe('the guest client survives a hostile host', () => {
  it('random and mutated host messages give error results, never a trap, and keep tables bounded', () => {
    const c = conversation();
    c.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    c.run(c.g.clientStart(ST, OUT));
    const { g, mem } = c;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 260 }), fc.integer({ min: 0, max: 20 }), (bytes, type) => {
        if (bytes.length >= 4) new DataView(bytes.buffer).setUint32(0, type, true);
        const len = Math.min(bytes.length, 240);
        mem.set(bytes.subarray(0, len), GPA.rx);
        const r = g.clientReceive(ST, GPA.rx, bytes.length, OUT);
        expect(r).toBeLessThanOrEqual(240);
        expect(g.clientOfferCount(ST)).toBeLessThanOrEqual(64);
      }),
      { numRuns: 500 },
    );
  });
});
