import { afterEach, describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import { VpRunState } from '../../hypervisor/partition-control.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

const open: TestGuest[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.dispose()));
});

describe('several VPs', () => {
  it('VP 0 starts the others with HvCallStartVirtualProcessor; they run the function it named on one shared memory', async () => {
    const g = await bootTestGuest('smp', '', { config: { vpCount: 4 } });
    open.push(g);
    await g.waitFor('done');
    await g.partition.whenIdle();
    const out = g.console();
    for (const vp of [1, 2, 3]) expect(out).toContain(`vp online 0${vp}\n`);
    expect(g.values().start_failures).toBe(0);
    expect(g.values().online_mask).toBe(0b1111);
    expect(g.values().start_again).toBe(HvStatus.InvalidVpState);
    for (let vp = 0; vp < 4; vp++) {
      expect(g.partition.vpExit(vp)).toEqual({ reason: 'halted' });
      expect(g.partition.runState(vp)).toBe(VpRunState.Stopped);
    }
  });
});
