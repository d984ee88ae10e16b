import { describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import { HvPortType } from '../../abi/hv-hypercall.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { MAX_ROOT_DOORBELLS, Owner, P_DOORBELL, PartitionControl } from '../../hypervisor/partition-control.ts';
import { PortTable, rootDoorbell } from '../../hypervisor/ports.ts';

function table() {
  const ctl = PartitionControl.create(2, 1);
  const ports = new PortTable(ctl, new GuestMemory(1 << 20));
  expect(ports.createPort(Owner.Root, 0x1002, { type: HvPortType.Event, baseFlag: 2, flagCount: 1 })).toBe(HvStatus.Success);
  expect(ports.connectPort(Owner.Child, 18, 0x1002)).toBe(HvStatus.Success);
  return { ctl, ports };
}

describe('root doorbells: a root event port routed to a thread of its own', () => {
  it("a routed port's signal rings its doorbell only; unrouted, it sets the flag and rings the main doorbell again", () => {
    const { ctl, ports } = table();
    const d = ports.claimDoorbell();
    expect(d).toBe(0);
    expect(ports.routeEvents(0x1002, d)).toBe(HvStatus.Success);
    const main = Atomics.load(ctl.i32, P_DOORBELL >> 2);
    expect(ports.signalEvent(Owner.Child, 18, 0)).toBe(HvStatus.Success);
    expect(Atomics.load(ctl.i32, rootDoorbell(d) >> 2)).toBe(1);
    expect(Atomics.load(ctl.i32, P_DOORBELL >> 2)).toBe(main);
    expect(ports.drainRootEvents(() => {})).toBe(0);
    expect(ports.routeEvents(0x1002, null)).toBe(HvStatus.Success);
    expect(ports.signalEvent(Owner.Child, 18, 0)).toBe(HvStatus.Success);
    expect(Atomics.load(ctl.i32, rootDoorbell(d) >> 2)).toBe(1);
    const flags: number[] = [];
    expect(ports.drainRootEvents((f) => flags.push(f))).toBe(1);
    expect(flags).toEqual([2]);
    // A bad number of the guest still gets its error on a routed port.
    expect(ports.routeEvents(0x1002, d)).toBe(HvStatus.Success);
    expect(ports.signalEvent(Owner.Child, 18, 1)).toBe(HvStatus.InvalidParameter);
  });

  it('doorbells are claimed once each and released; only root event ports route', () => {
    const { ports } = table();
    const claimed = Array.from({ length: MAX_ROOT_DOORBELLS }, () => ports.claimDoorbell());
    expect(new Set(claimed).size).toBe(MAX_ROOT_DOORBELLS);
    expect(ports.claimDoorbell()).toBe(-1);
    ports.releaseDoorbell(claimed[5]!);
    expect(ports.claimDoorbell()).toBe(claimed[5]);
    expect(ports.routeEvents(0x1002, MAX_ROOT_DOORBELLS)).toBe(HvStatus.InvalidParameter);
    expect(ports.routeEvents(0x9999, 0)).toBe(HvStatus.InvalidPortId);
    expect(ports.createPort(Owner.Root, 0x10, { type: HvPortType.Message })).toBe(HvStatus.Success);
    expect(ports.routeEvents(0x10, 0)).toBe(HvStatus.InvalidPortId);
  });
});
