import { afterEach, describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import { HvPortType } from '../../abi/hv-hypercall.ts';
import * as P from '../../abi/hv-cpuid.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { Owner, VpRunState } from '../../hypervisor/partition-control.ts';
import { DEFAULT_CHILD_PRIVILEGES, type Partition } from '../../hypervisor/partition.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

const open: TestGuest[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.dispose()));
});

async function boot(image: string, cmdline: string, opts: Parameters<typeof bootTestGuest>[2] = {}): Promise<TestGuest> {
  const g = await bootTestGuest(image, cmdline, opts);
  open.push(g);
  return g;
}

/** Root-side ports of the probe guest: child→root message and event ports, root→child ones. */
function wirePorts(p: Partition): void {
  expect(p.ports.createPort(Owner.Root, 0x10, { type: HvPortType.Message })).toBe(HvStatus.Success);
  expect(p.ports.connectPort(Owner.Child, 0x100, 0x10)).toBe(HvStatus.Success);
  expect(p.ports.createPort(Owner.Root, 0x11, { type: HvPortType.Event, baseFlag: 5, flagCount: 4 })).toBe(HvStatus.Success);
  expect(p.ports.connectPort(Owner.Child, 0x101, 0x11)).toBe(HvStatus.Success);
  expect(p.ports.createPort(Owner.Child, 0x20, { type: HvPortType.Message, targetVp: 0, targetSint: 2 })).toBe(HvStatus.Success);
  expect(p.ports.connectPort(Owner.Root, 0x200, 0x20)).toBe(HvStatus.Success);
  expect(p.ports.createPort(Owner.Child, 0x21, { type: HvPortType.Event, targetVp: 0, targetSint: 2, baseFlag: 0, flagCount: 64 })).toBe(HvStatus.Success);
  expect(p.ports.connectPort(Owner.Root, 0x201, 0x21)).toBe(HvStatus.Success);
}

describe('guest in the loop', () => {
  it('boots the sample guest: discovery, hypercalls, SynIC timer interrupts wake the halted VP', async () => {
    const g = await boot('hello', '');
    await g.partition.whenIdle();
    expect(g.console()).toContain('hypervisor: Microsoft Hv, interface Hv#1');
    expect(g.console()).toContain(`partition id ${g.partition.id}`);
    expect(g.console()).toContain('5 timer interrupts at 10 ms');
    expect(g.partition.vpExit(0)).toEqual({ reason: 'halted' });
    const c = g.partition.counters(0);
    expect(c.TimerExpiries).toBeGreaterThanOrEqual(5);
    expect(c.InterruptsDelivered).toBeGreaterThanOrEqual(5);
    expect(c.HaltExits).toBeGreaterThanOrEqual(6);
    expect(g.partition.runState(0)).toBe(VpRunState.Stopped);
  });

  it('discovers the hypervisor and its privileges, enables hypercalls, gets its partition id', async () => {
    const g = await boot('probe', '');
    await g.waitFor('done');
    const v = g.values();
    expect(v.hv).toBe(1);
    expect(v.privlo).toBe(DEFAULT_CHILD_PRIVILEGES.lo);
    expect(v.privhi).toBe(DEFAULT_CHILD_PRIVILEGES.hi);
    expect(v.enabled).toBe(1);
    expect(v.partition).toBe(g.partition.id);
    expect(v.ram_kib).toBe(16384);
  });

  it('posts messages and signals events that the root receives, with the TLFS statuses for bad ones', async () => {
    const received: Uint8Array[] = [];
    const flags: number[] = [];
    const g = await boot('probe', 'post signal', {
      beforeStart: (p) => {
        wirePorts(p);
        p.inbox.onMessage(0x10, (m) => received.push(m));
        p.inbox.onEvent((f) => flags.push(f));
      },
    });
    await g.waitFor('done');
    const v = g.values();
    expect(v.post).toBe(HvStatus.Success);
    expect(v.post_bad_conn).toBe(HvStatus.InvalidConnectionId);
    expect(v.post_bad_type).toBe(HvStatus.InvalidParameter);
    expect(v.post_too_big).toBe(HvStatus.InvalidParameter);
    expect(v.signal).toBe(HvStatus.Success);
    expect(v.signal_bad_flag).toBe(HvStatus.InvalidParameter);
    expect(v.signal_bad_conn).toBe(HvStatus.InvalidConnectionId);
    await new Promise((r) => setTimeout(r, 20));
    expect(received).toHaveLength(1);
    const m = Buffer.from(received[0]);
    expect(m.readUInt32LE(0)).toBe(1); // MessageType
    expect(m[4]).toBe(10); // PayloadSize
    expect(m.readUInt32LE(8)).toBe(0x10); // OriginationId = port id
    expect(m.subarray(16, 26).toString()).toBe('hello root');
    expect(flags).toEqual([5 + 2]); // port base flag + FlagNumber
    expect(g.partition.counters(0).HypercallExits).toBeGreaterThanOrEqual(8);
  });

  it('delivers a root message into the SIM slot and an event flag into the SIEF page, each raising the SINT', async () => {
    const g = await boot('probe', 'wait', { beforeStart: wirePorts });
    await g.waitFor('ready');
    expect(g.partition.postMessage(0x200, 7, Buffer.from('from root'))).toBe(HvStatus.Success);
    expect(g.partition.signalEvent(0x201, 7)).toBe(HvStatus.Success);
    await g.waitFor('done');
    expect(g.console()).toContain('msg=from root\n');
    expect(g.values().msgtype).toBe(7);
    expect(g.values().event).toBe(7);
    expect(g.partition.counters(0).MessagesDelivered).toBe(1);
  });

  it('refuses root-only hypercalls from a child with ACCESS_DENIED', async () => {
    const g = await boot('probe', 'rootcall');
    await g.waitFor('done');
    expect(g.values().create_partition).toBe(HvStatus.AccessDenied);
    expect(g.values().create_port).toBe(HvStatus.AccessDenied);
    expect(g.values().unknown_code).toBe(HvStatus.InvalidHypercallCode);
  });

  it('stops a VP that faults (#UD, #GP, out-of-range memory) and reports it; the host runs on', async () => {
    const cases: [string, string, RegExp][] = [
      ['ud', 'ud', /hypercall before the hypercall page was enabled/],
      ['gp', 'gp', /rdmsr 0x1234: #GP/],
      ['oob', 'trap', /memory access out of bounds/],
    ];
    for (const [cmd, kind, message] of cases) {
      const faults: unknown[] = [];
      const g = await boot('probe', cmd, { beforeStart: (p) => p.on('fault', (f) => faults.push(f)) });
      await g.partition.whenIdle();
      const exit = g.partition.vpExit(0);
      expect(exit?.reason).toBe('fault');
      expect(exit).toMatchObject({ kind, message: expect.stringMatching(message) });
      expect(faults).toHaveLength(1);
      expect(g.console()).not.toContain('done');
    }
    // The host still boots guests after three faulted ones.
    const ok = await boot('probe', '');
    await ok.waitFor('done');
  });

  it("keeps two partitions from seeing each other's memory", async () => {
    const hv = new Hypervisor();
    const a = await boot('probe', 'marker', { hv });
    const b = await boot('probe', 'marker', { hv });
    await Promise.all([a.waitFor('done'), b.waitFor('done')]);
    expect(a.values().marker_before).toBe(0);
    expect(b.values().marker_before).toBe(0);
    expect(a.partition.mem.readU32(0x300000)).toBe(a.partition.id);
    expect(b.partition.mem.readU32(0x300000)).toBe(b.partition.id);
    expect(a.partition.mem.buffer).not.toBe(b.partition.mem.buffer);
    await hv.shutdown();
  });

  it('stops a guest that spins without exits by terminating its VP thread', async () => {
    const g = await boot('probe', 'spin');
    await g.waitFor('spinning');
    await g.partition.stop(100);
    expect(g.partition.vpExit(0)?.reason).toBe('stopped');
  });

  it('grants AccessVpRegisters only where configured', async () => {
    const g = await boot('probe', '', {
      config: { privileges: { lo: DEFAULT_CHILD_PRIVILEGES.lo, hi: DEFAULT_CHILD_PRIVILEGES.hi | P.HV_ACCESS_VP_REGISTERS | P.HV_CREATE_PARTITIONS } },
    });
    await g.waitFor('done');
    // CreatePartitions is stripped from a child whatever its configuration says.
    expect(g.values().privhi).toBe(DEFAULT_CHILD_PRIVILEGES.hi | P.HV_ACCESS_VP_REGISTERS);
  });
});
