import { describe, expect, it } from 'vitest';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { SCSI, makeServer } from './channel-server-harness.ts';

const T = C.ChannelMessageType;
const INVALID = C.ChannelStatus.InvalidParameter;

/** A connected server with one SCSI channel (relid 1) and an 8-page ring GPADL 0x10. */
function withRingGpadl() {
  const h = makeServer();
  const relid = h.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
  h.connect();
  h.gpadl(relid, 0x10, 8);
  h.n.take();
  return { ...h, relid };
}

describe('open and close', () => {
  it('OPENCHANNEL reports the ring pages to the notifier and answers OPENCHANNEL_RESULT', () => {
    const { n, server, relid, open, post } = withRingGpadl();
    open(relid, 0x10, 4, 1, 77);
    expect(n.take()).toEqual([{ type: T.OpenChannelResult, childRelid: relid, openId: 77, status: 0 }]);
    expect(n.opened).toEqual([
      {
        relid,
        subChannelIndex: 0,
        primaryRelid: relid,
        connectionId: 17,
        targetVp: 1,
        openId: 77,
        gpadlHandle: 0x10,
        ringPages: [0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207],
        downstreamPageOffset: 4,
        userData: new Uint8Array(120),
      },
    ]);
    expect(server.channel(relid)!.state).toBe('open');
    post({ type: T.CloseChannel, childRelid: relid });
    expect(n.take()).toEqual([]); // CLOSECHANNEL has no reply
    expect(n.closed).toEqual([relid]);
    expect(server.channel(relid)!.state).toBe('offered');
    expect(server.gpadl(0x10)!.usedByRelid).toBe(0);
  });

  it('validates relid, GPADL, downstream offset and target VP; each failure is an error result', () => {
    const { n, server, relid, open, gpadl } = withRingGpadl();
    open(42, 0x10);
    open(relid, 0x99);
    open(relid, 0x10, 1); // guest → host ring of one page: no data page
    open(relid, 0x10, 7); // host → guest ring of one page
    open(relid, 0x10, 8);
    open(relid, 0x10, 4, 2); // vpCount 2
    expect(n.take().map((m) => m.type === T.OpenChannelResult && m.status)).toEqual([INVALID, INVALID, INVALID, INVALID, INVALID, INVALID]);
    expect(n.opened).toEqual([]);
    open(relid, 0x10);
    open(relid, 0x10);
    expect(n.take().map((m) => m.type === T.OpenChannelResult && m.status)).toEqual([0, C.ChannelStatus.DeviceBusy]);
    // A GPADL made for another channel cannot hold this channel's rings.
    const other = server.offerChannel({ interfaceType: SCSI, interfaceInstance: '00000000-0000-0000-0000-000000000001' });
    gpadl(other, 0x20, 8);
    n.take();
    open(other, 0x10);
    expect(n.take()).toMatchObject([{ type: T.OpenChannelResult, status: INVALID }]);
    expect(server.channel(other)!.state).toBe('offered');
  });

  it('a VSP refusal is passed to the guest and leaves the channel closed', () => {
    const { n, server, relid, open } = withRingGpadl();
    n.openStatus = C.ChannelStatus.Unsuccessful;
    open(relid, 0x10);
    expect(n.take()).toMatchObject([{ type: T.OpenChannelResult, status: C.ChannelStatus.Unsuccessful }]);
    expect(server.channel(relid)!.state).toBe('offered');
    expect(server.gpadl(0x10)!.usedByRelid).toBe(0);
  });
});

describe('teardown of a GPADL in use', () => {
  it('defers GPADL_TORNDOWN until the channel closes, and forbids reopening on it', () => {
    const { n, server, relid, open, post } = withRingGpadl();
    open(relid, 0x10);
    n.take();
    post({ type: T.GpadlTeardown, childRelid: relid, gpadl: 0x10 });
    expect(n.take()).toEqual([]);
    expect(server.gpadl(0x10)!.teardownPending).toBe(true);
    post({ type: T.CloseChannel, childRelid: relid });
    expect(n.take()).toEqual([{ type: T.GpadlTorndown, gpadl: 0x10 }]);
    expect(server.gpadlCount).toBe(0);
    open(relid, 0x10);
    expect(n.take()).toMatchObject([{ type: T.OpenChannelResult, status: INVALID }]);
  });
});

describe('rescind', () => {
  it('rescind while open closes the channel, then waits for RELID_RELEASED before freeing the relid', () => {
    const { n, server, relid, open, post } = withRingGpadl();
    open(relid, 0x10);
    n.take();
    server.rescindChannel(relid);
    expect(n.closed).toEqual([relid]);
    expect(n.take()).toEqual([{ type: T.RescindChannelOffer, childRelid: relid }]);
    expect(server.channel(relid)!.state).toBe('rescinded');
    // What Linux does next: CLOSECHANNEL (quietly accepted), GPADL_TEARDOWN, RELID_RELEASED.
    post({ type: T.CloseChannel, childRelid: relid });
    post({ type: T.GpadlTeardown, childRelid: relid, gpadl: 0x10 });
    expect(n.take()).toEqual([{ type: T.GpadlTorndown, gpadl: 0x10 }]);
    open(relid, 0x10);
    expect(n.take()).toMatchObject([{ type: T.OpenChannelResult, status: INVALID }]);
    expect(server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI })).toBe(relid + 1); // relid still held
    post({ type: T.RelidReleased, childRelid: relid });
    expect(n.released).toEqual([relid]);
    expect(server.channel(relid)).toBeUndefined();
    expect(server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI })).toBe(relid); // reused
    expect(n.errors.filter((e) => e.code !== 'VMBUS_OPEN_REJECTED')).toEqual([]);
  });

  it('a deferred teardown completes when rescind closes the channel', () => {
    const { n, server, relid, open, post } = withRingGpadl();
    open(relid, 0x10);
    post({ type: T.GpadlTeardown, childRelid: relid, gpadl: 0x10 });
    n.take();
    server.rescindChannel(relid);
    expect(n.take()).toEqual([
      { type: T.RescindChannelOffer, childRelid: relid },
      { type: T.GpadlTorndown, gpadl: 0x10 },
    ]);
  });

  it('RELID_RELEASED for a live channel is a protocol error; rescind before REQUESTOFFERS frees at once', () => {
    const { n, server, relid, post } = withRingGpadl();
    post({ type: T.RelidReleased, childRelid: relid });
    expect(n.errors.map((e) => e.code)).toEqual(['VMBUS_BAD_RELID']);
    expect(server.channel(relid)!.state).toBe('offered');
    const fresh = makeServer();
    const r = fresh.server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    fresh.server.rescindChannel(r);
    expect(fresh.n.take()).toEqual([]);
    expect(fresh.n.released).toEqual([r]);
  });
});

describe('UNLOAD', () => {
  it('with open channels: closes all, forgets GPADLs and rescinded relids, answers UNLOAD_RESPONSE', () => {
    const { n, server, relid, open, gpadl, post } = withRingGpadl();
    const second = server.offerChannel({ interfaceType: SCSI, interfaceInstance: '00000000-0000-0000-0000-000000000002' });
    const third = server.offerChannel({ interfaceType: SCSI, interfaceInstance: '00000000-0000-0000-0000-000000000003' });
    gpadl(second, 0x11, 4);
    gpadl(second, 0x12, 40); // a spare GPADL, not used by rings
    open(relid, 0x10);
    open(second, 0x11, 2);
    server.rescindChannel(third);
    n.take();
    post({ type: T.Unload });
    expect(n.take()).toEqual([{ type: T.UnloadResponse }]);
    expect(n.closed.sort()).toEqual([relid, second]);
    expect(n.released).toEqual([third]);
    expect(server.gpadlCount).toBe(0);
    expect(server.connectionPhase).toBe('disconnected');
    expect(server.channel(relid)!.state).toBe('offered');
    // The next connection sees the surviving offers again.
    post({ type: T.RequestOffers });
    expect(n.take()).toEqual([]);
    server.handleGuestMessage(new Uint8Array([14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, ...new Uint8Array(24)]), 1);
    post({ type: T.RequestOffers });
    expect(n.take().map((m) => m.type)).toEqual([T.VersionResponse, T.OfferChannel, T.OfferChannel, T.AllOffersDelivered]);
  });

  it('a second INITIATE_CONTACT resets the connection like UNLOAD (QEMU), without UNLOAD_RESPONSE', () => {
    const { n, server, relid, open, contact } = withRingGpadl();
    open(relid, 0x10);
    n.take();
    contact(C.VmbusVersion.Win10V5_1);
    expect(n.closed).toEqual([relid]);
    expect(n.take().map((m) => m.type)).toEqual([T.VersionResponse]);
    expect(server.gpadlCount).toBe(0);
    expect(server.negotiatedVersion).toBe(C.VmbusVersion.Win10V5_1);
  });
});

describe('sub-channels', () => {
  it('a VSP offers sub-channels of an open primary; each gets its own relid and connection id', () => {
    const { n, server, relid, open, gpadl } = withRingGpadl();
    expect(() => server.offerSubchannel(relid)).toThrow(/open primary/);
    open(relid, 0x10);
    n.take();
    const sub1 = server.offerSubchannel(relid);
    const sub2 = server.offerSubchannel(relid);
    expect(n.take()).toMatchObject([
      { type: T.OfferChannel, ifType: SCSI, ifInstance: SCSI, childRelid: sub1, subChannelIndex: 1, connectionId: 16 + sub1 },
      { type: T.OfferChannel, childRelid: sub2, subChannelIndex: 2, connectionId: 16 + sub2 },
    ]);
    expect(new Set([relid, sub1, sub2]).size).toBe(3);
    gpadl(sub1, 0x30, 4);
    open(sub1, 0x30, 2, 1);
    expect(n.take()).toEqual([
      { type: T.GpadlCreated, childRelid: sub1, gpadl: 0x30, status: 0 },
      { type: T.OpenChannelResult, childRelid: sub1, openId: sub1, status: 0 },
    ]);
    expect(n.opened.at(-1)).toMatchObject({ relid: sub1, subChannelIndex: 1, primaryRelid: relid, targetVp: 1, connectionId: 16 + sub1 });
    // Rescinding the primary rescinds its sub-channels first.
    server.rescindChannel(relid);
    expect(n.take()).toEqual([
      { type: T.RescindChannelOffer, childRelid: sub1 },
      { type: T.RescindChannelOffer, childRelid: sub2 },
      { type: T.RescindChannelOffer, childRelid: relid },
    ]);
    expect(n.closed).toEqual([sub1, relid]);
  });
});
