/**
 * The ic-services guest (child-sdk/guests/ic-services) against the real host side: VMBus, the
 * four IC VSPs, a partition with one VP. Heartbeat timing is shortened (FAST_HEARTBEAT: every
 * 50 ms, lost after 300 ms) so status changes show quickly; the bounds below follow from it.
 */
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { HeartbeatStatus } from '../../root-partition/vsp/ic/heartbeat-vsp.ts';
import { KvpPool } from '../../root-partition/vsp/ic/kvp-protocol.ts';
import { FILETIME_UNIX_EPOCH } from '../../root-partition/vsp/ic/ic-bodies.ts';
import { IcStatus } from '../../root-partition/vsp/ic/ic-protocol.ts';
import { bootIcGuest, FAST_HEARTBEAT, until, type IcRig } from './ic-rig.ts';

const rigs: IcRig[] = [];
afterEach(async () => {
  await Promise.all(rigs.splice(0).map((r) => r.g.dispose()));
});
async function boot(cmdline = ''): Promise<IcRig> {
  const r = await bootIcGuest(cmdline);
  rigs.push(r);
  await r.g.waitFor('kvp_guest_item=1\n');
  return r;
}

describe('integration services end to end', () => {
  it('negotiates all four services and reports heartbeat OK', async () => {
    const { g, ic, errors } = await boot();
    expect(g.values()).toMatchObject({ connected: 1, ic_opened: 4, kvp_intrinsic: 1 });
    await until(() => ic.heartbeatStatus() === HeartbeatStatus.Ok, 3000, 'heartbeat OK');
    // Linux's preferences against the host's lists: framework 3.0 everywhere.
    expect(ic.heartbeat.negotiated).toEqual({ framework: { major: 3, minor: 0 }, message: { major: 3, minor: 0 } });
    expect(ic.shutdown.negotiated?.message).toEqual({ major: 3, minor: 2 });
    expect(ic.timeSync.negotiated?.message).toEqual({ major: 4, minor: 0 });
    expect(ic.kvp.negotiated?.message).toEqual({ major: 4, minor: 0 });
    await until(() => ic.heartbeat.beats.answered >= 3, 3000, 'three heartbeats');
    expect(ic.heartbeat.beats.wrongSequence).toBe(0);
    expect(ic.heartbeatStatus()).toBe(HeartbeatStatus.Ok);
    expect(errors).toEqual([]);
  });

  it('receives the time-sync SYNC sample and keeps the host clock (FILETIME) within a second', async () => {
    const { g, ic } = await boot();
    await until(() => /time_unix_ms=\d+\n/.test(g.console()), 3000, 'the first sample');
    const v = g.values();
    expect(v.time_syncs).toBe(1);
    expect(Math.abs(v.time_unix_ms! - Date.now())).toBeLessThan(1000);
    expect(ic.timeSync.samples.acknowledged).toBe(1);
    expect(ic.timeSync.lastSample!.flags).toBe(1); // SYNC first
    expect(ic.timeSync.lastSample!.parentTime > FILETIME_UNIX_EPOCH).toBe(true);
    // A later SAMPLE moves the guest's offset too.
    expect(await ic.timeSync.sendSample(2)).toBe(true);
    await g.waitFor('time_samples=2\n');
    expect(g.values().time_syncs).toBe(1);
  });

  it('exchanges KVP items both ways: host items reach the guest, guest and intrinsic items reach the host', async () => {
    const { g, ic, errors } = await boot();
    await until(() => ic.kvp.ready, 3000, 'KVP negotiated');
    expect(await ic.kvpSetHostItem(KvpPool.External, 'HostGreeting', 'hello from the host')).toEqual({ ok: true });
    expect(await ic.kvpSetHostItem(KvpPool.AutoExternal, 'PhysicalHostName', hostname())).toEqual({ ok: true });
    await g.waitFor('kvp0 HostGreeting=hello from the host\n');
    await g.waitFor(`kvp3 PhysicalHostName=${hostname()}\n`);
    expect(await ic.kvp.get(KvpPool.External, 'HostGreeting')).toBe('hello from the host');
    // Replacing keeps one item; deleting removes it; a second delete fails.
    expect(await ic.kvpSetHostItem(KvpPool.External, 'HostGreeting', 'again')).toEqual({ ok: true });
    expect(await ic.kvp.enumerate(KvpPool.External)).toEqual([{ key: 'HostGreeting', value: 'again' }]);
    expect(await ic.kvpDeleteHostItem(KvpPool.External, 'HostGreeting')).toEqual({ ok: true });
    expect(await ic.kvpDeleteHostItem(KvpPool.External, 'HostGreeting')).toMatchObject({ ok: false, status: IcStatus.Fail });
    expect(await ic.kvp.get(KvpPool.External, 'HostGreeting')).toBeNull();
    // The guest's own pools are not the host's to write.
    expect(await ic.kvpSetHostItem(KvpPool.Guest, 'GuestState', 'forged')).toMatchObject({ ok: false, status: IcStatus.Fail });
    expect(await ic.refreshKvpGuestItems()).toBe(true);
    expect(Object.fromEntries(ic.kvpGuestItems())).toEqual({ GuestState: 'serving' });
    expect(Object.fromEntries(ic.kvpGuestIntrinsicItems())).toEqual({
      FullyQualifiedDomainName: 'tsvisor-ic-guest',
      OSName: 'tsvisor child SDK',
      OSVersion: '0.1',
      ProcessorArchitecture: 'wasm32',
      IntegrationServicesVersion: '1.0',
    });
    // Real sizes: a key of 255 UTF-16 units (+ NUL = 512 bytes) and a value of 1023 fit; one more does not.
    const key = 'k'.repeat(255),
      value = 'v'.repeat(1023);
    expect(await ic.kvpSetHostItem(KvpPool.External, key, value)).toEqual({ ok: true });
    expect(await ic.kvp.get(KvpPool.External, key)).toBe(value);
    await expect(ic.kvpSetHostItem(KvpPool.External, key + 'k', value)).rejects.toThrow(RangeError);
    expect(errors).toEqual([]);
  });

  it('graceful shutdown: the guest accepts, answers, and halts', async () => {
    const { g, ic } = await boot();
    await until(() => ic.shutdown.ready, 3000, 'shutdown negotiated');
    let turnedOff = false;
    const r = await ic.initiateShutdown({
      force: true,
      reason: 'maintenance',
      timeoutMs: 3000,
      whenOff: () => g.partition.whenIdle(),
      turnOff: () => {
        turnedOff = true;
      },
    });
    expect(r).toEqual({ outcome: 'shut-down', answer: { outcome: 'accepted' } });
    expect(turnedOff).toBe(false);
    expect(g.partition.vpExit(0)).toEqual({ reason: 'halted' });
    expect(g.values().shutdown_flags).toBe(1); // force
    expect(g.console()).toContain('shutting down\n');
  });

  it('a guest that ignores the request: no answer within the timeout, and the fallback turns the VM off', async () => {
    const { g, ic } = await boot('ignore-shutdown');
    await until(() => ic.shutdown.ready, 3000, 'shutdown negotiated');
    const started = performance.now();
    const r = await ic.initiateShutdown({ timeoutMs: 300, whenOff: () => g.partition.whenIdle(), turnOff: () => g.partition.stop() });
    const took = performance.now() - started;
    expect(r).toEqual({ outcome: 'timed-out', answer: { outcome: 'no-answer' }, turnedOff: true });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1500);
    expect(g.partition.vpExit(0)).toEqual({ reason: 'stopped' });
    expect(g.console()).not.toContain('shutting down');
  });

  it('a guest that refuses: the answer is returned and nothing is turned off', async () => {
    const { ic } = await boot('refuse-shutdown');
    await until(() => ic.shutdown.ready, 3000, 'shutdown negotiated');
    let turnedOff = false;
    const r = await ic.initiateShutdown({
      timeoutMs: 2000,
      turnOff: () => {
        turnedOff = true;
      },
    });
    expect(r).toEqual({ outcome: 'refused', answer: { outcome: 'refused', status: IcStatus.Fail } });
    expect(turnedOff).toBe(false);
  });

  it('a hung guest is reported as Lost Communication within lostAfterMs + one interval', async () => {
    const { g, ic } = await boot('hang');
    // What VMMS is told: the status at subscription, then each change as the device sees it.
    const reported: number[] = [];
    ic.heartbeat.onStatus((s) => reported.push(s));
    await until(() => ic.heartbeatStatus() === HeartbeatStatus.Ok, 3000, 'heartbeat OK');
    await g.waitFor('hung\n');
    const hungAt = performance.now();
    await until(() => ic.heartbeatStatus() === HeartbeatStatus.LostCommunication, 3000, 'Lost Communication');
    const took = performance.now() - hungAt;
    // The last answer came at most one interval before the guest stopped.
    expect(took).toBeLessThan(FAST_HEARTBEAT.lostAfterMs + FAST_HEARTBEAT.intervalMs + 250);
    expect(took).toBeGreaterThan(FAST_HEARTBEAT.lostAfterMs - FAST_HEARTBEAT.intervalMs - 50);
    await until(() => reported.at(-1) === HeartbeatStatus.LostCommunication, FAST_HEARTBEAT.intervalMs + 500, 'Lost Communication reported');
    expect(reported).toContain(HeartbeatStatus.Ok);
    expect(reported.every((s, i) => i === 0 || s !== reported[i - 1])).toBe(true);
  });

  it('reports No Contact before the guest opens the heartbeat channel, and VMBus traffic through the harness', async () => {
    const r = await bootIcGuest();
    rigs.push(r);
    expect(r.ic.heartbeatStatus()).toBe(HeartbeatStatus.NoContact);
    await r.g.waitFor('kvp_guest_item=1\n');
    await until(() => r.ic.kvp.ready && r.ic.heartbeat.beats.answered > 0, 3000, 'services up');
    const t = r.g.vmbusTraffic();
    expect(Object.keys(t.channels).map(Number)).toEqual([1, 2, 3, 4]);
    expect(t.host.channelsOpened).toBe(4);
    // NEGOTIATE and at least one request each on heartbeat and time sync, each answered.
    expect(t.channels[1]!.packetsOut).toBeGreaterThanOrEqual(2);
    expect(t.channels[1]!.packetsIn).toBeGreaterThanOrEqual(2);
    expect(t.errors).toEqual([]);
    expect(r.g.counters().HypercallExits).toBeGreaterThan(0);
    expect(r.g.counters().SignalEventCalls).toBeGreaterThan(0);
  });
});
