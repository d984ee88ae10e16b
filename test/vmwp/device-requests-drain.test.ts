/**
 * The device thread's requests that must see every write — a save, a drive switch, a merge, a
 * storage move's copy — run only once storvsp has no request in flight; before a save, the
 * requests the guest's last signals start are waited for too.
 */
import { describe, expect, it } from 'vitest';
import { DeviceRequestServer } from '../../root-partition/vmwp/device-requests.ts';
import type { VmDevices } from '../../root-partition/vmwp/vm-devices.ts';

/** The parts of VmDevices these requests use: the storage's in-flight count and the chipset's save. */
function devices(inFlight: number) {
  const log: string[] = [];
  let n = inFlight;
  let release: (() => void) | null = null;
  const d = {
    vmbus: null,
    get storageInFlight() {
      return n;
    },
    storageIdle: () => {
      log.push(`idle? ${n}`);
      return n === 0 ? Promise.resolve() : new Promise<void>((r) => (release = r));
    },
    platform: {
      saveState: () => {
        log.push(`saved with ${n} in flight`);
        return [];
      },
    },
    switchDisks: () => log.push(`switched with ${n} in flight`),
    // Sub-channels on queue threads come back to the device thread around a switch (storvsp-queue-threads.ts).
    holdStorageThreads: () => log.push('queue threads parked'),
    releaseStorageThreads: () => log.push('queue threads released'),
    storageMove: { take: () => log.push(`took blocks with ${n} in flight`) },
  };
  const complete = (k: number) => {
    n -= k;
    if (n === 0) release?.();
  };
  return { d: d as unknown as VmDevices, log, complete, start: (k: number) => (n += k) };
}

describe('device requests wait for storage requests in flight', () => {
  it('a save waits until every queued request completed, including those the last signals started', async () => {
    const t = devices(2);
    const server = new DeviceRequestServer(
      t.d,
      () => 0n,
      undefined,
      () => {},
    );
    let pumped = 0;
    // The guest's last signal, served before the save, starts one more queued request.
    server.serveInFlight = () => {
      if (pumped++ === 0) t.start(1);
    };
    const saved = server.handle({ op: 'save-devices' });
    await new Promise((r) => setImmediate(r));
    expect(t.log).toEqual(['idle? 3']);
    t.complete(3);
    await saved;
    expect(t.log).toEqual(['idle? 3', 'saved with 0 in flight']);
  });

  it("a storage move's copy waits as well: it must not clear the dirty mark of a write still in flight", async () => {
    const t = devices(1);
    const server = new DeviceRequestServer(
      t.d,
      () => 0n,
      undefined,
      () => {},
    );
    const taken = server.handle({ op: 'move-storage-take', disk: 0, from: 0, maxBytes: 1 << 20, skipZero: true });
    await new Promise((r) => setImmediate(r));
    expect(t.log).toEqual(['idle? 1']);
    t.complete(1);
    await taken;
    expect(t.log).toEqual(['idle? 1', 'took blocks with 0 in flight']);
  });

  it('a drive switch waits as well', async () => {
    const t = devices(1);
    const server = new DeviceRequestServer(
      t.d,
      () => 0n,
      undefined,
      () => {},
    );
    const switched = server.handle({ op: 'switch-disks', switches: [] });
    await new Promise((r) => setImmediate(r));
    expect(t.log).toEqual(['idle? 1']);
    t.complete(1);
    await switched;
    expect(t.log).toEqual(['idle? 1', 'queue threads parked', 'switched with 0 in flight', 'queue threads released']);
  });
});
