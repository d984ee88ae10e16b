import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HvError } from '../../hypervisor/hv-error.ts';
import * as C from '../../vmbus/protocol/channel-constants.ts';
import { ChannelMessageType as T } from '../../vmbus/protocol/channel-constants.ts';
import { decodeChannelMessage } from '../../vmbus/protocol/channel-decode.ts';
import { encodeChannelMessage } from '../../vmbus/protocol/channel-encode.ts';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';
import { LIMITS, SCSI, makeServer } from './channel-server-harness.ts';

const small = fc.integer({ min: 0, max: 5 });
const u32 = fc.oneof(small, fc.constantFrom(0x10, 0x11, 0xffffffff), fc.nat());
const pfn = fc.oneof(fc.bigInt({ min: 0n, max: 0x5000n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));

/** Structured guest messages with small relids and handles, so that state is actually reached. */
const guestMessage: fc.Arbitrary<ChannelMessage> = fc.oneof(
  fc.record({
    type: fc.constant(T.InitiateContact as const),
    version: fc.constantFrom(...C.SUPPORTED_VERSIONS, 0x20004, 0x70000),
    targetVcpu: small,
    interruptPage: pfn,
    msgSint: fc.constantFrom(2, 3),
    msgVtl: fc.constantFrom(0, 1),
    featureFlags: u32,
    monitorPage1: pfn,
    monitorPage2: pfn,
    clientId: fc.constant(null),
  }),
  fc.constant({ type: T.RequestOffers as const }),
  fc.constant({ type: T.Unload as const }),
  fc
    .record({
      type: fc.constant(T.GpadlHeader as const),
      childRelid: small,
      gpadl: small,
      rangeBufLen: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 0xffff })),
      rangeCount: fc.constantFrom(0, 1, 2),
      byteCount: fc.oneof(fc.constant(-1), u32),
      byteOffset: fc.constantFrom(0, 0, 8),
      pfns: fc.array(pfn, { maxLength: 26 }),
    })
    .map((m) => {
      const pages = m.byteCount === -1 ? m.pfns.length + 3 : Math.ceil(m.byteCount / 4096);
      const byteCount = m.byteCount === -1 ? pages * 4096 : m.byteCount;
      const rangeBufLen = m.rangeBufLen === -1 ? (8 + 8 * pages) & 0xffff : m.rangeBufLen;
      return { ...m, byteCount: byteCount >>> 0, rangeBufLen };
    }),
  fc.record({ type: fc.constant(T.GpadlBody as const), msgNumber: small, gpadl: small, pfns: fc.array(pfn, { maxLength: 28 }) }),
  fc.record({ type: fc.constant(T.GpadlTeardown as const), childRelid: small, gpadl: small }),
  fc.record({
    type: fc.constant(T.OpenChannel as const),
    childRelid: small,
    openId: u32,
    ringGpadlHandle: small,
    targetVp: small,
    downstreamRingPageOffset: small,
    userData: fc.uint8Array({ maxLength: 120 }),
  }),
  fc.record({ type: fc.constant(T.CloseChannel as const), childRelid: small }),
  fc.record({ type: fc.constant(T.RelidReleased as const), childRelid: small }),
  fc.record({
    type: fc.constant(T.OfferChannel as const),
    ifType: fc.constant(SCSI),
    ifInstance: fc.constant(SCSI),
    flags: small,
    mmioMegabytes: small,
    userDefined: fc.uint8Array({ maxLength: 4 }),
    subChannelIndex: small,
    mmioMegabytesOptional: small,
    childRelid: small,
    monitorId: small,
    monitorAllocated: fc.boolean(),
    isDedicatedInterrupt: fc.boolean(),
    connectionId: u32,
  }),
);

type Step =
  | { kind: 'message'; message: ChannelMessage; conn: number; truncate: number; flip: number }
  | { kind: 'bytes'; bytes: Uint8Array; conn: number }
  | { kind: 'offer' }
  | { kind: 'rescind'; relid: number }
  | { kind: 'subchannel'; relid: number }
  | { kind: 'connect'; version: number }
  | { kind: 'gpadl'; relid: number; handle: number; pages: number }
  | { kind: 'open'; relid: number; handle: number; downstream: number; vp: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('message' as const),
      message: guestMessage,
      conn: fc.constantFrom(1, 1, 1, 4, 9),
      truncate: fc.nat(250),
      flip: fc.nat(300),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 260 }), conn: fc.constantFrom(1, 4) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'offer' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rescind' as const), relid: small }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('subchannel' as const), relid: small }) },
  // Well-formed steps, so that random messages also hit connected channels and real GPADLs.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('connect' as const), version: fc.constantFrom(...C.SUPPORTED_VERSIONS) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('gpadl' as const),
      relid: fc.constantFrom(1, 1, 1, 2),
      handle: fc.integer({ min: 1, max: 3 }),
      pages: fc.integer({ min: 1, max: 70 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('open' as const),
      relid: fc.constantFrom(1, 1, 1, 2),
      handle: fc.integer({ min: 1, max: 3 }),
      downstream: fc.integer({ min: 1, max: 8 }),
      vp: fc.integer({ min: 0, max: 2 }),
    }),
  },
);

function mutate(bytes: Uint8Array, truncate: number, flip: number): Uint8Array {
  const out = truncate < bytes.length && truncate % 3 === 0 ? bytes.slice(0, truncate) : bytes.slice();
  if (flip < out.length) out[flip] = out[flip]! ^ 0x5a;
  return out;
}

describe('fuzz: decoder', () => {
  it('never throws on random bytes, and what it accepts re-encodes to a decodable message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 260 }), fc.nat(30), (bytes, type) => {
        if (bytes.length >= 4) new DataView(bytes.buffer).setUint32(0, type, true);
        const d = decodeChannelMessage(bytes);
        if (d.ok) expect(decodeChannelMessage(encodeChannelMessage(d.message)).ok).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('fuzz: server with hostile and random messages', () => {
  it('no exception escapes, every reply is a valid message, resource bounds hold', () => {
    const reached = { created: 0, opened: 0, rescinded: 0 };
    fc.assert(
      fc.property(fc.array(step, { minLength: 10, maxLength: 60, size: 'max' }), (steps) => {
        const { n, server, contact, post, gpadl, open: openChannel } = makeServer();
        server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
        for (const s of steps) {
          if (s.kind === 'message') server.handleGuestMessage(mutate(encodeChannelMessage(s.message), s.truncate, s.flip), s.conn);
          else if (s.kind === 'bytes') server.handleGuestMessage(s.bytes, s.conn);
          else if (s.kind === 'rescind') server.rescindChannel(s.relid);
          else if (s.kind === 'connect') {
            contact(s.version);
            post({ type: T.RequestOffers });
          } else if (s.kind === 'gpadl') gpadl(s.relid, s.handle, s.pages);
          else if (s.kind === 'open') openChannel(s.relid, s.handle, s.downstream, s.vp);
          else {
            // Host-side calls may refuse with an HvError (no relid left, primary not open): never anything else.
            try {
              if (s.kind === 'offer') server.offerChannel({ interfaceType: SCSI, interfaceInstance: SCSI });
              else server.offerSubchannel(s.relid);
            } catch (e) {
              expect(e).toBeInstanceOf(HvError);
            }
          }
          expect(server.gpadlCount).toBeLessThanOrEqual(LIMITS.maxGpadls);
          expect(server.pendingGpadlCount).toBeLessThanOrEqual(LIMITS.maxPendingGpadls);
          expect(server.channelCount()).toBeLessThanOrEqual(LIMITS.maxChannels);
        }
        for (const sent of n.sent) {
          expect(sent.bytes.length).toBeLessThanOrEqual(C.VMBUS_MAX_MESSAGE_SIZE);
          expect(sent.vp).toBeLessThan(LIMITS.vpCount);
        }
        // Every open channel holds a complete GPADL of its own; opens and closes balance.
        let open = 0;
        for (let relid = 1; relid <= LIMITS.maxChannels; relid++) {
          const ch = server.channel(relid);
          if (ch?.state !== 'open') continue;
          open++;
          const g = server.gpadl(ch.ringGpadl)!;
          expect(g.complete && g.usedByRelid === relid && g.relid === relid).toBe(true);
          expect(g.pages.every((p) => p < LIMITS.guestPageCount)).toBe(true);
        }
        reached.created += n.sent.filter((s) => s.message.type === T.GpadlCreated && s.message.status === 0).length;
        reached.opened += n.opened.length;
        reached.rescinded += n.sent.filter((s) => s.message.type === T.RescindChannelOffer).length;
        const succeeded = n.sent.filter((s) => s.message.type === T.OpenChannelResult && s.message.status === 0).length;
        expect(succeeded - n.closed.length).toBe(open);
      }),
      { numRuns: 150 },
    );
    // The generator must actually reach the interesting states, or the property says little.
    expect(reached.created).toBeGreaterThan(50);
    expect(reached.opened).toBeGreaterThan(3);
    expect(reached.rescinded).toBeGreaterThan(5);
  });
});
