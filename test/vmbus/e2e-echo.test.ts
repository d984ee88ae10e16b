import { afterEach, describe, expect, it } from 'vitest';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { VmbusVersion } from '../../vmbus/protocol/channel-constants.ts';
import { EchoVsp } from '../../root-partition/vsp/echo/echo-vsp.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

interface Rig {
  g: TestGuest;
  host: VmbusHost;
  echo: EchoVsp;
  errors: HvError[];
}
const open: TestGuest[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.dispose()));
});

async function boot(cmdline = ''): Promise<Rig> {
  const errors: HvError[] = [];
  const echo = new EchoVsp();
  let host!: VmbusHost;
  const g = await bootTestGuest('vmbus-echo', cmdline, {
    beforeStart: (p) => {
      host = new VmbusHost(p, { log: (e) => errors.push(e) });
      host.addVsp(echo);
    },
  });
  open.push(g);
  await g.waitFor('done\n');
  return { g, host, echo, errors };
}

describe('VMBus end to end: the echo guest against the real host', () => {
  it('connects, opens the echo channel, round-trips batches and a GPA-direct buffer, closes and unloads', async () => {
    const { g, host, echo, errors } = await boot();
    const v = g.values();
    // Each protocol phase.
    expect(v.hypercalls).toBe(1);
    expect(v.connected).toBe(1);
    expect(v.version).toBe(VmbusVersion.Copper);
    expect(v.offers).toBe(1);
    expect(v.opened).toBe(1);
    expect(v.relid).toBe(1);
    // Data integrity: every reply byte checked by the guest.
    expect(v.echo_completions).toBe(64);
    expect(v.echo_inband).toBe(32);
    expect(v.gpa_status).toBe(0);
    expect(v.gpa_bytes).toBe(10000);
    expect(v.gpa_checksum_ok).toBe(1);
    expect(v.gpa_reversed_ok).toBe(1);
    expect(v.gpa_guard_ok).toBe(1);
    expect(v.closed).toBe(1);
    expect(v.unloaded).toBe(1);
    expect(v.client_errors).toBe(0);
    // Packets: 96 echo requests + 1 GPA-direct request each way.
    expect(v.packets_sent).toBe(97);
    expect(v.packets_received).toBe(97);
    expect(echo.stats).toMatchObject({ echoed: 96, gpaRequests: 1, gpaBytes: 10000, refused: 0 });
    // Batching: 4 + 4 batches + 1 GPA request; the guest signals at most once per published batch.
    expect(v.signals_to_host).toBeGreaterThanOrEqual(1);
    expect(v.signals_to_host).toBeLessThanOrEqual(9);
    expect(v.signals_to_host).toBeLessThan(v.packets_sent);
    // The host is closed and unloaded: no channel left, nothing protocol-wrong on the way.
    expect(host.channel(1)).toBeUndefined();
    expect(host.server.connectionPhase).toBe('disconnected');
    expect(host.stats).toMatchObject({ packetsIn: 97, packetsOut: 97, protocolErrors: 0, channelsOpened: 1, channelsRefused: 0, channelResets: 0 });
    // The host answers in batches too: one signal per batch it wrote into an empty, listening ring.
    expect(host.stats.signalsToGuest).toBeGreaterThanOrEqual(1);
    expect(host.stats.signalsToGuest).toBeLessThan(host.stats.packetsOut);
    expect(host.stats.signalsToGuest).toBe(g.partition.counters(0).EventsSignalled);
    expect(host.stats.signalsFromGuest).toBe(v.signals_to_host);
    expect(host.messagesToGuest.dropped).toBe(0);
    expect(host.messagesToGuest.pending).toBe(0);
    expect(errors).toEqual([]);
    await g.partition.whenIdle();
    expect(g.partition.vpExit(0)).toEqual({ reason: 'halted' });
  });

  it('survives a hostile guest: a GPA range outside its memory is refused per request; a corrupt ring index resets the channel', async () => {
    const { g, host, echo, errors } = await boot('badgpa corrupt');
    const v = g.values();
    expect(v.badgpa_status).toBe(0xc000000d);
    // The channel still works after the refused request.
    expect(v.after_badgpa_status).toBe(0);
    expect(v.after_badgpa_checksum).toBe(1 + 2 + 3 + 4);
    // The corrupted write_index: the host closed the channel, rescinded it, and offered it again.
    expect(v.rescinded).toBe(1);
    expect(v.reopened).toBe(1);
    expect(v.reopen_echo).toBe(4);
    expect(v.closed).toBe(1);
    expect(v.unloaded).toBe(1);
    expect(v.client_errors).toBe(0);
    expect(host.stats).toMatchObject({ channelResets: 1, channelsOpened: 2, protocolErrors: 0 });
    expect(errors.map((e) => e.code)).toEqual(['VMBUS_CHANNEL_RESET']);
    expect(errors[0].message).toMatch(/ring corrupt: write_index 3 outside a 61440-byte ring/);
    expect(echo.stats.refused).toBe(1);
    // The partition ran on to the end of the guest's program.
    await g.partition.whenIdle();
    expect(g.partition.vpExit(0)).toEqual({ reason: 'halted' });
  });
});
