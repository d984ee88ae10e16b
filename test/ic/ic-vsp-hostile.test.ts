/**
 * The host IC framework against a scripted guest, without a partition: a fake channel records
 * what the VSP sends and a fake batch hands it crafted packets. Covers the hostile-guest rules
 * (every bad answer is reported and dropped, the device keeps serving) and the heartbeat status
 * state machine on an injected clock.
 */
import { describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { VmbusPacketType } from '../../vmbus/ring/index.ts';
import { HeartbeatStatus, HeartbeatVsp } from '../../root-partition/vsp/ic/heartbeat-vsp.ts';
import { ShutdownVsp } from '../../root-partition/vsp/ic/shutdown-vsp.ts';
import { decodeIcMessage, IcFlag, IcMessageType, IcStatus } from '../../root-partition/vsp/ic/ic-protocol.ts';
import { scriptedGuest } from './scripted-ic-guest.ts';

describe('IC host framework against a hostile guest', () => {
  it('reports and drops bad answers, answers guest requests with E_FAIL, and keeps serving', async () => {
    const errors: HvError[] = [];
    const vsp = new ShutdownVsp({ log: (e) => errors.push(e) });
    const g = scriptedGuest(vsp);
    await g.negotiate([3, 0], [3, 2]);
    expect(vsp.ready).toBe(true);
    const pending = vsp.initiateShutdown({ reason: 'test', timeoutMs: 2000 });
    const req = g.sent.at(-1)!;
    expect(decodeIcMessage(req.bytes)).toMatchObject({ ok: true, header: { type: IcMessageType.Shutdown, message: { major: 3, minor: 2 } } });
    g.deliver(new Uint8Array(10), req.transId); // shorter than the headers
    const lying = new Uint8Array(req.bytes);
    new DataView(lying.buffer).setUint32(4, 100_000, true);
    g.deliver(lying, req.transId); // msgsize past the packet
    const answered = new Uint8Array(req.bytes);
    answered[25] = IcFlag.Transaction | IcFlag.Response;
    g.deliver(answered, req.transId + 99); // not outstanding
    g.deliver(answered, req.transId, VmbusPacketType.Completion); // wrong VMBus packet type
    const wrongType = new Uint8Array(answered);
    wrongType[12] = IcMessageType.Heartbeat;
    g.deliver(wrongType, req.transId);
    const sentBefore = g.sent.length;
    g.deliver(req.bytes, 555); // a request from the guest: answered E_FAIL in place
    expect(g.sent.length).toBe(sentBefore + 1);
    const reply = decodeIcMessage(g.sent.at(-1)!.bytes);
    expect(reply).toMatchObject({ ok: true, header: { status: IcStatus.Fail, flags: IcFlag.Transaction | IcFlag.Response } });
    expect(g.sent.at(-1)!.transId).toBe(555);
    expect(vsp.stats.invalid).toBe(6);
    expect(errors.map((e) => e.code)).toEqual(Array(6).fill('IC_INVALID_MESSAGE'));
    // The real answer still lands.
    g.deliver(answered, req.transId);
    expect(await pending).toEqual({ outcome: 'accepted' });
  });

  it('a NEGOTIATE answer choosing a version that was not offered leaves the service unready', async () => {
    const errors: HvError[] = [];
    const vsp = new ShutdownVsp({ log: (e) => errors.push(e) });
    const g = scriptedGuest(vsp);
    await g.negotiate([3, 0], [9, 9]);
    expect(vsp.ready).toBe(false);
    expect(errors.map((e) => e.message)).toEqual(['shutdown: message version 9.9 was not offered']);
    expect(await vsp.initiateShutdown()).toEqual({ outcome: 'unavailable', reason: 'not negotiated yet' });
  });

  it('a request the guest never answers times out after requestTimeoutMs and the next one is sent', async () => {
    const vsp = new ShutdownVsp({ requestTimeoutMs: 50 });
    const g = scriptedGuest(vsp);
    await g.negotiate([3, 0], [3, 0]);
    const started = performance.now();
    expect(await vsp.initiateShutdown({ timeoutMs: 50 })).toEqual({ outcome: 'no-answer' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    const second = vsp.initiateShutdown({ timeoutMs: 1000 });
    g.answer(() => {}, IcStatus.Fail);
    expect(await second).toEqual({ outcome: 'refused', status: IcStatus.Fail });
    vsp.dispose();
  });

  it('an answer that comes after its request timed out is taken quietly, not counted invalid; a second copy is', async () => {
    const errors: HvError[] = [];
    const vsp = new ShutdownVsp({ requestTimeoutMs: 30, log: (e) => errors.push(e) });
    const g = scriptedGuest(vsp);
    await g.negotiate([3, 0], [3, 0]);
    expect(await vsp.initiateShutdown({ timeoutMs: 30 })).toEqual({ outcome: 'no-answer' });
    const late = g.sent.at(-1)!;
    const second = vsp.initiateShutdown({ timeoutMs: 1000 });
    const answered = new Uint8Array(late.bytes);
    answered[25] = IcFlag.Transaction | IcFlag.Response;
    g.deliver(answered, late.transId); // the slow guest's answer to the first request
    expect(vsp.stats).toMatchObject({ late: 1, invalid: 0 });
    expect(errors).toEqual([]);
    g.deliver(answered, late.transId); // the same answer again: now it answers nothing
    expect(vsp.stats).toMatchObject({ late: 1, invalid: 1 });
    g.answer();
    expect(await second).toEqual({ outcome: 'accepted' });
    vsp.dispose();
  });
});

describe('heartbeat status', () => {
  it('No Contact → OK → Degraded → Lost Communication, on the injected clock', async () => {
    let now = 0;
    const errors: HvError[] = [];
    const vsp = new HeartbeatVsp({ intervalMs: 1_000_000, lostAfterMs: 500, now: () => now, log: (e) => errors.push(e) });
    const g = scriptedGuest(vsp);
    expect(vsp.status()).toBe(HeartbeatStatus.NoContact);
    await g.negotiate([3, 0], [3, 0]);
    expect(vsp.status()).toBe(HeartbeatStatus.NoContact); // negotiated, no heartbeat answered yet
    // The first heartbeat went out on negotiation: sequence 0. Answer 1 with application state healthy.
    g.answer((b) => {
      b.setBigUint64(0, b.getBigUint64(0, true) + 1n, true);
      b.setUint32(8, 1, true);
    });
    await new Promise((r) => setImmediate(r));
    expect(vsp.status()).toBe(HeartbeatStatus.Ok);
    now = 500;
    expect(vsp.status()).toBe(HeartbeatStatus.Ok);
    now = 501;
    expect(vsp.status()).toBe(HeartbeatStatus.LostCommunication);
    vsp.dispose();
    expect(errors).toEqual([]);
  });

  it('a wrong sequence number does not count as contact; application state Critical shows Degraded', async () => {
    const now = 0;
    const errors: HvError[] = [];
    const vsp = new HeartbeatVsp({ intervalMs: 1_000_000, lostAfterMs: 500, now: () => now, log: (e) => errors.push(e) });
    const g = scriptedGuest(vsp);
    await g.negotiate([3, 0], [3, 0]);
    g.answer((b) => b.setBigUint64(0, 77n, true));
    await new Promise((r) => setImmediate(r));
    expect(vsp.status()).toBe(HeartbeatStatus.NoContact);
    expect(vsp.beats.wrongSequence).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['IC_HEARTBEAT_WRONG']);
    void vsp.beat();
    g.answer((b) => {
      b.setBigUint64(0, b.getBigUint64(0, true) + 1n, true);
      b.setUint32(8, 2, true);
    });
    await new Promise((r) => setImmediate(r));
    expect(vsp.status()).toBe(HeartbeatStatus.Degraded);
    vsp.dispose();
  });
});
