/**
 * Guests with 3 GiB and 4 GiB (the WebAssembly maximum) of memory: the SDK places its SynIC pages,
 * rings and buffers at the top of RAM, so every host index computation on a guest address above
 * 2 GiB is exercised (a signed `>> 2` there gave "Invalid atomic access index"). Shared memory is
 * committed lazily: a 4 GiB guest must not cost the host 4 GiB.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HV_CPUID_MAX_LEAF } from '../../abi/hv-cpuid.ts';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { EchoVsp } from '../../root-partition/vsp/echo/echo-vsp.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

const GiB = 1024 ** 3;
const open: TestGuest[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.dispose()));
});

describe.each([3 * GiB, 4 * GiB])('a guest with %d bytes of memory', (memoryBytes) => {
  it('hello: SynIC timer messages land in a SIM page above 2 GiB', async () => {
    const rss0 = process.memoryUsage().rss;
    const g = await bootTestGuest('hello', '', { config: { memoryBytes } });
    open.push(g);
    await g.partition.whenIdle();
    expect(g.partition.vpExit(0)).toEqual({ reason: 'halted' });
    expect(g.console()).toContain(`${memoryBytes / 1024} KiB RAM`);
    expect(g.console()).toContain('5 timer interrupts at 10 ms');
    expect(g.partition.counters(0).MessagesDelivered).toBeGreaterThanOrEqual(5);
    // Lazily committed: the guest touched a few pages, not gigabytes.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(256 * 1024 * 1024);
  }, 30_000);

  it('high-gpa: CPUID output and a string-I/O buffer in the last page of RAM', async () => {
    const g = await bootTestGuest('high-gpa', '', { config: { memoryBytes } });
    open.push(g);
    await g.partition.whenIdle();
    expect(g.partition.vpExit(0)).toEqual({ reason: 'halted' });
    expect(g.console()).toContain(`cpuid_eax=${HV_CPUID_MAX_LEAF}\nvendor Microsoft Hv\n`); // the highest hypervisor leaf
  }, 30_000);

  it('vmbus-echo: rings, event flags and GPA-direct buffers at the top of RAM', async () => {
    const errors: HvError[] = [];
    const echo = new EchoVsp();
    let host!: VmbusHost;
    const g = await bootTestGuest('vmbus-echo', '', {
      config: { memoryBytes },
      beforeStart: (p) => {
        host = new VmbusHost(p, { log: (e) => errors.push(e) });
        host.addVsp(echo);
      },
    });
    open.push(g);
    await g.waitFor('done\n', 20_000);
    const v = g.values();
    expect(v.opened).toBe(1);
    expect(v.echo_completions).toBe(64);
    expect(v.gpa_bytes).toBe(10000);
    expect(v.gpa_checksum_ok).toBe(1);
    expect(v.gpa_reversed_ok).toBe(1);
    expect(v.client_errors).toBe(0);
    expect(echo.stats).toMatchObject({ echoed: 96, gpaRequests: 1, gpaBytes: 10000, refused: 0 });
    expect(errors).toEqual([]);
    host.dispose();
  }, 30_000);
});
