/**
 * A VM's SCSI controllers offer storvsc sub-channels by its VP count: one per VP beyond the first
 * (what Linux's storvsc asks for), none on a one-VP VM. The worker hands the count to StorVsp as
 * its maxSubChannels (QUERY_PROPERTIES' max channel count; CREATE_SUB_CHANNELS above it is refused).
 */
import { describe, expect, it } from 'vitest';
import { deviceConfig } from '../../root-partition/vmms/vm-device-settings.ts';

const controllers = [
  { kind: 'scsi-controller', disks: [{ location: 0, path: '/d/a.raw' }] },
  { kind: 'scsi-controller', disks: [] },
];
const devices: readonly { kind: string }[] = controllers;

describe('storvsc sub-channels of a defined VM', () => {
  it('one per VP beyond the first on every controller, none with one VP', () => {
    const id = '00000000-0000-4000-8000-000000000031';
    expect(deviceConfig(id, devices).scsi!.map((c) => c.maxSubChannels)).toEqual([undefined, undefined]);
    expect(deviceConfig(id, devices, undefined, 1).scsi!.map((c) => c.maxSubChannels)).toEqual([undefined, undefined]);
    expect(deviceConfig(id, devices, undefined, 4).scsi!.map((c) => c.maxSubChannels)).toEqual([3, 3]);
    // The rest of the controller is as before: the same derived identity, the disks at their locations.
    expect(deviceConfig(id, devices, undefined, 4).scsi![0]).toMatchObject({
      instanceId: deviceConfig(id, devices).scsi![0]!.instanceId,
      disks: [{ path: '/d/a.raw', readOnly: false, location: 0 }],
    });
  });
});
