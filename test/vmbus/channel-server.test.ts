import { describe, expect, it } from 'vitest';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { encodeGpadl } from '../../vmbus/protocol/channel-encode.ts';
import { NET, SCSI, makeServer } from './channel-server-harness.ts';

const T = C.ChannelMessageType;
const V = C.VmbusVersion;
const versionReply = (supported: number, msgConnId: number, supportedFeatures: number | null = null) => ({
  type: T.VersionResponse,
  versionSupported: supported,
  connectionState: 0,
  msgConnId,
  supportedFeatures,
});

describe('version negotiation (Linux vmbus_negotiate_version)', () => {
  it('walks down the list like Linux until a version is accepted', () => {
    const { n, server, contact } = makeServer();
    contact(0x00070000); // newer than anything known
    contact(0x00050004);
    expect(n.take()).toEqual([versionReply(0, 0), versionReply(0, 0)]);
    expect(server.connectionPhase).toBe('disconnected');
    contact(V.Win10V5_3);
    expect(n.take()).toEqual([versionReply(1, C.VMBUS_MESSAGE_CONNECTION_ID)]);
    expect(server.connectionPhase).toBe('connected');
    expect(server.negotiatedVersion).toBe(V.Win10V5_3);
    expect(n.errors).toEqual([]);
  });

  it('accepts each supported version and refuses WIN8 2.4, WIN7 and WS2008', () => {
    for (const v of C.SUPPORTED_VERSIONS) {
      const { n, contact } = makeServer();
      contact(v);
      expect(n.take()).toEqual([versionReply(1, v >= V.Win10V5 ? 1 : 0, v === V.Copper ? 0 : null)]);
    }
    for (const v of [V.Win8, V.Win7, V.Ws2008]) {
      const { n, server, contact } = makeServer();
      contact(v);
      expect(n.take()).toEqual([versionReply(0, 0)]);
      expect(server.connectionPhase).toBe('disconnected');
    }
  });

  it('from 5.0 INITIATE_CONTACT must come on connection 4, below 5.0 on connection 1', () => {
    const { n, server, contact, post } = makeServer();
    contact(V.Win10V5, 1);
    contact(V.Win10, 4);
    expect(n.take()).toEqual([versionReply(0, 0), versionReply(0, 0)]);
    expect(n.errors.map((e) => e.code)).toEqual(['VMBUS_CONTACT_REJECTED', 'VMBUS_CONTACT_REJECTED']);
    contact(V.Win10V5, 4);
    expect(n.take()).toEqual([versionReply(1, 1)]);
    // Later messages go to the returned msg_conn_id (1), not to 4.
    post({ type: T.RequestOffers }, 4);
    expect(n.take()).toEqual([]);
    expect(n.errors.at(-1)!.code).toBe('VMBUS_BAD_CONNECTION_ID');
    post({ type: T.RequestOffers }, 1);
    expect(n.take()).toEqual([{ type: T.AllOffersDelivered }]);
    expect(server.connectionPhase).toBe('connected');
  });

  it('posts replies to target_vcpu and refuses one outside the partition', () => {
    const { n, contact } = makeServer();
    contact(V.Win10V5_2, 4, 5);
    expect(n.sent[0]!.vp).toBe(0);
    expect(n.take()).toEqual([versionReply(0, 0)]);
    contact(V.Win10V5_2, 4, 1);
    expect(n.sent[0]!.vp).toBe(1);
  });

  it('ignores channel messages before INITIATE_CONTACT', () => {
    const { n, post } = makeServer();
    post({ type: T.RequestOffers });
    expect(n.take()).toEqual([]);
    expect(n.errors[0]!.code).toBe('VMBUS_NOT_CONNECTED');
  });
});

describe('offers', () => {
  it('REQUESTOFFERS: one OFFERCHANNEL per channel, no monitor pages, then ALLOFFERS_DELIVERED', () => {
    const { n, server, contact, post } = makeServer();
    const a = server.offerChannel({
      interfaceType: SCSI,
      interfaceInstance: '11111111-2222-3333-4444-555555555555',
      flags: C.OfferFlags.ServerSupportsGpadls,
      mmioMegabytes: 0,
    });
    const b = server.offerChannel({ interfaceType: NET, interfaceInstance: '11111111-2222-3333-4444-666666666666' });
    expect([a, b]).toEqual([1, 2]);
    contact(V.Win10V5_3);
    n.take();
    post({ type: T.RequestOffers });
    const msgs = n.take();
    expect(msgs.map((m) => m.type)).toEqual([T.OfferChannel, T.OfferChannel, T.AllOffersDelivered]);
    expect(msgs[0]).toMatchObject({
      ifType: SCSI,
      ifInstance: '11111111-2222-3333-4444-555555555555',
      flags: 4,
      childRelid: 1,
      subChannelIndex: 0,
      connectionId: 17,
      monitorAllocated: false,
      isDedicatedInterrupt: true,
      monitorId: 0,
    });
    expect(msgs[1]).toMatchObject({ ifType: NET, childRelid: 2, connectionId: 18 });
    post({ type: T.RequestOffers });
    expect(n.take()).toEqual([]);
    expect(n.errors[0]!.code).toBe('VMBUS_UNEXPECTED_MESSAGE');
  });

  it('refuses a malformed VSP offer at registration, not when it is sent', () => {
    const { server } = makeServer();
    expect(() => server.offerChannel({ interfaceType: 'not-a-guid', interfaceInstance: SCSI })).toThrow(/malformed GUID/);
    expect(() => server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI, flags: 0x10000 })).toThrow(/u16/);
    expect(() => server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI, userDefined: new Uint8Array(121) })).toThrow(/120/);
    expect(server.channelCount()).toBe(0);
  });

  it('offers a channel registered after REQUESTOFFERS at once (hot add)', () => {
    const { n, server, connect } = makeServer();
    connect();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    expect(n.take()).toMatchObject([{ type: T.OfferChannel, childRelid: relid }]);
  });
});

describe('GPADLs', () => {
  it('single-message GPADL: GPADL_CREATED with success', () => {
    const { n, server, connect, gpadl } = makeServer();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    connect();
    gpadl(relid, 0xe1e10, 8);
    expect(n.take()).toEqual([{ type: T.GpadlCreated, childRelid: relid, gpadl: 0xe1e10, status: 0 }]);
    expect(server.gpadl(0xe1e10)!.pages).toEqual([0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207]);
  });

  it('multi-message GPADL accumulates PFNs across bodies and is created after the last one', () => {
    const { n, server, connect } = makeServer();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    connect();
    const msgs = encodeGpadl(
      relid,
      7,
      Array.from({ length: 60 }, (_, i) => BigInt(0x300 + i)),
    );
    expect(msgs.length).toBe(3);
    server.handleGuestMessage(msgs[0]!, 1);
    server.handleGuestMessage(msgs[1]!, 1);
    expect(n.take()).toEqual([]);
    expect(server.pendingGpadlCount).toBe(1);
    server.handleGuestMessage(msgs[2]!, 1);
    expect(n.take()).toEqual([{ type: T.GpadlCreated, childRelid: relid, gpadl: 7, status: 0 }]);
    expect(server.pendingGpadlCount).toBe(0);
    expect(server.gpadl(7)!.pages.length).toBe(60);
    expect(server.gpadl(7)!.pages[59]).toBe(0x300 + 59);
  });

  it('rejects PFNs outside guest memory, too many pages, unknown relids and bad ranges with a status', () => {
    const { n, server, connect, post, gpadl } = makeServer();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    connect();
    post({ type: T.GpadlHeader, childRelid: relid, gpadl: 1, rangeBufLen: 16, rangeCount: 1, byteCount: 4096, byteOffset: 0, pfns: [0x4000n] });
    gpadl(relid, 2, 129); // limit 128
    gpadl(99, 3, 1);
    post({ type: T.GpadlHeader, childRelid: relid, gpadl: 4, rangeBufLen: 16, rangeCount: 1, byteCount: 100, byteOffset: 8, pfns: [0x10n] });
    post({ type: T.GpadlHeader, childRelid: relid, gpadl: 5, rangeBufLen: 24, rangeCount: 1, byteCount: 4096, byteOffset: 0, pfns: [0x10n] });
    expect(n.take()).toEqual([
      { type: T.GpadlCreated, childRelid: relid, gpadl: 1, status: C.ChannelStatus.InvalidParameter },
      { type: T.GpadlCreated, childRelid: relid, gpadl: 2, status: C.ChannelStatus.InsufficientResources },
      { type: T.GpadlCreated, childRelid: 99, gpadl: 3, status: C.ChannelStatus.InvalidParameter },
      { type: T.GpadlCreated, childRelid: relid, gpadl: 4, status: C.ChannelStatus.InvalidParameter },
      { type: T.GpadlCreated, childRelid: relid, gpadl: 5, status: C.ChannelStatus.InvalidParameter },
    ]);
    expect(server.gpadlCount).toBe(0);
  });

  it('bounds GPADLs awaiting bodies and GPADLs per connection', () => {
    const { n, server, connect, post, gpadl } = makeServer();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    connect();
    const header = (handle: number) =>
      post({ type: T.GpadlHeader, childRelid: relid, gpadl: handle, rangeBufLen: 8 + 8 * 40, rangeCount: 1, byteCount: 40 * 4096, byteOffset: 0, pfns: [1n] });
    header(1);
    header(2);
    header(3); // maxPendingGpadls 2
    expect(n.take()).toEqual([{ type: T.GpadlCreated, childRelid: relid, gpadl: 3, status: C.ChannelStatus.InsufficientResources }]);
    expect(server.pendingGpadlCount).toBe(2);
    for (let h = 10; h < 16; h++) gpadl(relid, h, 1); // 2 pending + 6 = maxGpadls 8
    gpadl(relid, 16, 1);
    expect(n.take().at(-1)).toEqual({ type: T.GpadlCreated, childRelid: relid, gpadl: 16, status: C.ChannelStatus.InsufficientResources });
    expect(server.gpadlCount).toBe(8);
  });

  it('a body with more PFNs than announced fails the GPADL; a duplicate handle is ignored', () => {
    const { n, server, connect, post, gpadl } = makeServer();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    connect();
    post({
      type: T.GpadlHeader,
      childRelid: relid,
      gpadl: 1,
      rangeBufLen: 8 + 8 * 30,
      rangeCount: 1,
      byteCount: 30 * 4096,
      byteOffset: 0,
      pfns: Array.from({ length: 26 }, () => 1n),
    });
    post({ type: T.GpadlBody, msgNumber: 0, gpadl: 1, pfns: [1n, 1n, 1n, 1n, 1n] });
    expect(n.take()).toEqual([{ type: T.GpadlCreated, childRelid: relid, gpadl: 1, status: C.ChannelStatus.InvalidParameter }]);
    expect([server.gpadlCount, server.pendingGpadlCount]).toEqual([0, 0]);
    gpadl(relid, 2, 1);
    gpadl(relid, 2, 1);
    expect(n.take()).toEqual([{ type: T.GpadlCreated, childRelid: relid, gpadl: 2, status: 0 }]);
    expect(n.errors.at(-1)!.code).toBe('VMBUS_GPADL_IGNORED');
  });

  it('teardown of an unused GPADL answers GPADL_TORNDOWN; of an unknown one is ignored', () => {
    const { n, server, connect, post, gpadl } = makeServer();
    const relid = server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
    connect();
    gpadl(relid, 9, 4);
    n.take();
    post({ type: T.GpadlTeardown, childRelid: relid, gpadl: 9 });
    post({ type: T.GpadlTeardown, childRelid: relid, gpadl: 9 });
    expect(n.take()).toEqual([{ type: T.GpadlTorndown, gpadl: 9 }]);
    expect(n.errors.map((e) => e.code)).toEqual(['VMBUS_BAD_GPADL']);
    expect(server.gpadlCount).toBe(0);
  });
});
