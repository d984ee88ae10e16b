/**
 * An integration service saved and restored around a request in flight, against a scripted
 * guest: the host caller waiting at the save is answered "unavailable: the VM was saved"; the
 * guest's answer, arriving at the restored service, is absorbed quietly (not counted invalid);
 * transaction ids, negotiated versions and the heartbeat sequence carry on; a NEGOTIATE in flight
 * still negotiates. A saved state that does not fit is refused and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import type { PacketBatch, VspChannel } from '../../vmbus/host/vsp-channel.ts';
import { ReceivedPacket, VmbusPacketType } from '../../vmbus/ring/index.ts';
import { HeartbeatStatus, HeartbeatVsp } from '../../root-partition/vsp/ic/heartbeat-vsp.ts';
import { ShutdownVsp } from '../../root-partition/vsp/ic/shutdown-vsp.ts';
import { KvpVsp } from '../../root-partition/vsp/ic/kvp-vsp.ts';
import { decodeIcMessage, IcFlag, IcMessageType } from '../../root-partition/vsp/ic/ic-protocol.ts';
import { encodeIcState, IC_SAVED_KVP_ITEMS, type IcSavedState } from '../../root-partition/vsp/ic/ic-saved-state.ts';
import type { IcVsp } from '../../root-partition/vsp/ic/ic-vsp.ts';

const tick = () => new Promise((r) => setImmediate(r));

/** A channel that records what the VSP sends, shared by the service before and after a restore. */
function scriptedGuest() {
  const sent: { transId: number; bytes: Uint8Array }[] = [];
  const channel = {
    relid: 5,
    subChannelIndex: 0,
    sendInband: (lo: number, _hi: number, payload: Uint8Array, _c = false, start = 0, end = payload.length) => {
      sent.push({ transId: lo, bytes: payload.slice(start, end) });
      return true;
    },
  } as unknown as VspChannel;
  const deliver = (vsp: IcVsp, payload: Uint8Array, transId: number) => {
    const p = new ReceivedPacket(4096);
    p.bytes.set(payload, 16);
    Object.assign(p, { type: VmbusPacketType.DataInband, offset8: 2, len8: (16 + payload.length + 7) >> 3, flags: 0, transIdLo: transId, transIdHi: 0 });
    let given = false;
    vsp.onPackets(channel, { next: () => (given ? null : ((given = true), p)) } as unknown as PacketBatch);
  };
  /** The guest's answer to request `req`, made in place as Linux does. */
  const answerOf = (req: { bytes: Uint8Array }, edit: (body: DataView) => void = () => {}) => {
    const b = new Uint8Array(req.bytes);
    new DataView(b.buffer).setUint32(20, 0, true);
    b[25] = IcFlag.Transaction | IcFlag.Response;
    edit(new DataView(b.buffer, 28));
    return b;
  };
  const negotiation = (fw: [number, number], msg: [number, number]) => (body: DataView) => {
    body.setUint16(0, 1, true);
    body.setUint16(2, 1, true);
    body.setUint16(8, fw[0], true);
    body.setUint16(10, fw[1], true);
    body.setUint16(12, msg[0], true);
    body.setUint16(14, msg[1], true);
  };
  return { sent, channel, deliver, answerOf, negotiation };
}

describe('integration services: saved state', () => {
  it('a request in flight at the save: the caller hears "the VM was saved", the late answer is absorbed, ids carry on', async () => {
    const errors: HvError[] = [];
    const g = scriptedGuest();
    const before = new ShutdownVsp({ log: (e) => errors.push(e) });
    before.onOpen(g.channel);
    await tick();
    g.deliver(before, g.answerOf(g.sent[0]!, g.negotiation([3, 0], [3, 2])), g.sent[0]!.transId);
    await tick();
    const pending = before.initiateShutdown({ reason: 'x', timeoutMs: 5000 });
    const inflight = g.sent.at(-1)!;
    before.quiesce();
    expect(await pending).toEqual({ outcome: 'unavailable', reason: 'the VM was saved' });
    expect(await before.initiateShutdown()).toEqual({ outcome: 'unavailable', reason: 'the VM was saved' });
    const state = before.saveChannel(g.channel);
    before.dispose();

    const after = new ShutdownVsp({ log: (e) => errors.push(e) });
    after.restoreChannel(g.channel, state)();
    expect(after.ready).toBe(true);
    expect(after.negotiated).toEqual({ framework: { major: 3, minor: 0 }, message: { major: 3, minor: 2 } });
    const sentBefore = g.sent.length;
    g.deliver(after, g.answerOf(inflight), inflight.transId);
    expect(after.stats).toMatchObject({ invalid: 0, answers: 1 });
    expect(g.sent.length).toBe(sentBefore); // nothing re-sent
    const next = after.initiateShutdown({ reason: 'y', timeoutMs: 5000 });
    const req = g.sent.at(-1)!;
    expect(req.transId).toBe(inflight.transId + 1);
    const h = decodeIcMessage(req.bytes);
    const old = decodeIcMessage(inflight.bytes);
    expect(h.ok && old.ok && h.header.transactionId).toBe(old.ok && (old.header.transactionId + 1) & 0xff);
    g.deliver(after, g.answerOf(req), req.transId);
    expect(await next).toEqual({ outcome: 'accepted' });
    expect(errors).toEqual([]);
    after.dispose();
  });

  it('a NEGOTIATE in flight at the save negotiates the restored channel when its answer comes', async () => {
    const g = scriptedGuest();
    const before = new KvpVsp({ log: () => {} });
    before.onOpen(g.channel);
    await tick();
    before.quiesce();
    const state = before.saveChannel(g.channel);
    const after = new KvpVsp({ log: () => {} });
    after.restoreChannel(g.channel, state)();
    expect(after.ready).toBe(false);
    g.deliver(after, g.answerOf(g.sent[0]!, g.negotiation([3, 0], [5, 0])), g.sent[0]!.transId);
    expect(after.ready).toBe(true);
    expect(after.stats.invalid).toBe(0);
    after.dispose();
  });

  it('a channel opened but not yet negotiating at the save negotiates after the restore', async () => {
    const g = scriptedGuest();
    const before = new ShutdownVsp({ log: () => {} });
    before.onOpen(g.channel);
    before.quiesce(); // before the NEGOTIATE went out
    await tick();
    expect(g.sent).toEqual([]);
    const after = new ShutdownVsp({ log: () => {} });
    after.restoreChannel(g.channel, before.saveChannel(g.channel))();
    await tick();
    expect(g.sent).toHaveLength(1);
    expect(decodeIcMessage(g.sent[0]!.bytes)).toMatchObject({ ok: true, header: { type: IcMessageType.Negotiate } });
    after.dispose();
  });

  it('heartbeat: the sequence carries on and a guest that had answered is OK at once', async () => {
    let now = 1000;
    const g = scriptedGuest();
    const before = new HeartbeatVsp({ intervalMs: 1_000_000, now: () => now, log: () => {} });
    before.onOpen(g.channel);
    await tick();
    g.deliver(before, g.answerOf(g.sent[0]!, g.negotiation([3, 0], [3, 0])), g.sent[0]!.transId);
    await tick();
    for (let i = 0; i < 3; i++) {
      const hb = g.sent.at(-1)!;
      g.deliver(
        before,
        g.answerOf(hb, (b) => b.setBigUint64(0, b.getBigUint64(0, true) + 1n, true)),
        hb.transId,
      );
      await tick();
      void before.beat();
    }
    expect(before.status()).toBe(HeartbeatStatus.Ok);
    const lastSent = new DataView(g.sent.at(-1)!.bytes.buffer, 28).getBigUint64(0, true);
    before.quiesce();
    const state = before.saveChannel(g.channel);
    before.dispose();
    now = 999_999; // long after: the saved time does not count as silence
    const statuses: number[] = [];
    const after = new HeartbeatVsp({ intervalMs: 1_000_000, lostAfterMs: 500, now: () => now, log: () => {} });
    after.onStatus((s) => statuses.push(s));
    after.restoreChannel(g.channel, state)();
    expect(statuses).toEqual([HeartbeatStatus.NoContact, HeartbeatStatus.Ok]);
    // The beat in flight at the save is answered late (absorbed), then the next beat goes out.
    g.deliver(
      after,
      g.answerOf(g.sent.at(-1)!, (b) => b.setBigUint64(0, lastSent + 1n, true)),
      g.sent.at(-1)!.transId,
    );
    await tick();
    const next = new DataView(g.sent.at(-1)!.bytes.buffer, 28).getBigUint64(0, true);
    expect(next).toBe(lastSent + 1n);
    expect(after.stats.invalid).toBe(0);
    after.dispose();
  });

  describe('refused when it does not fit, and nothing changes', () => {
    const good: IcSavedState = {
      negotiated: { framework: { major: 3, minor: 0 }, message: { major: 3, minor: 0 } },
      nextTransId: 7,
      icTransaction: 6,
      inflight: { transId: 6, type: IcMessageType.Shutdown },
    };
    const cases: [string, Partial<IcSavedState>, RegExp][] = [
      ['a framework version never offered', { negotiated: { framework: { major: 9, minor: 0 }, message: { major: 3, minor: 0 } } }, /framework version 9\.0/],
      [
        'a message version this service does not offer',
        { negotiated: { framework: { major: 3, minor: 0 }, message: { major: 4, minor: 0 } } },
        /message version 4\.0/,
      ],
      ['a request of another service in flight', { inflight: { transId: 6, type: IcMessageType.Heartbeat } }, /request of type 1 in flight/],
      ['a transaction in flight beyond the next id', { inflight: { transId: 7, type: IcMessageType.Shutdown } }, /transaction 7 in flight, next is 7/],
      ['an icmsg transaction beyond a byte', { icTransaction: 256 }, /icmsg transaction 256/],
      ['a shutdown request before negotiation', { negotiated: null }, /request of type 3 in flight/],
    ];
    for (const [what, change, message] of cases) {
      it(what, () => {
        const vsp = new ShutdownVsp({ log: () => {} });
        expect(() => vsp.restoreChannel(scriptedGuest().channel, encodeIcState({ ...good, ...change }))).toThrow(message);
        expect(vsp.ready).toBe(false);
        expect(vsp.negotiated).toBeNull();
      });
    }

    it('truncated bytes, a wrong format, and a KVP pool beyond what one enumeration reads', () => {
      const g = scriptedGuest();
      const bytes = encodeIcState(good);
      expect(() => new ShutdownVsp().restoreChannel(g.channel, bytes.subarray(0, bytes.length - 3))).toThrow(/shutdown saved state: undecodable/);
      const v2 = Uint8Array.from(bytes);
      expect(v2[0]).toBe(0x08);
      v2[1] = 2;
      expect(() => new ShutdownVsp().restoreChannel(g.channel, v2)).toThrow(/format 2 is not supported/);
      const items = Array.from({ length: IC_SAVED_KVP_ITEMS + 1 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
      const kvp = new KvpVsp({ log: () => {} });
      expect(() => kvp.restoreChannel(g.channel, encodeIcState({ ...good, negotiated: null, inflight: null, kvp: { pools: [{ pool: 1, items }] } }))).toThrow(
        /KVP pool 1: 1025 items, more than 1024/,
      );
      expect(() => kvp.restoreChannel(g.channel, encodeIcState({ ...good, negotiated: null, inflight: null }))).toThrow(/no KVP state/);
      expect(kvp.items(1).size).toBe(0);
    });
  });
});
