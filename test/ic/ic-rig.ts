/** Boots the ic-services guest against the real host side with the four IC VSPs (the SDK harness). */
import type { HvError } from '../../hypervisor/hv-error.ts';
import type { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import type { IntegrationServices } from '../../root-partition/vsp/ic/integration-services.ts';
import { vi } from 'vitest';
import { GuestHarness } from '../../root-partition/sdk/harness.ts';

export interface IcRig {
  g: GuestHarness;
  host: VmbusHost;
  ic: IntegrationServices;
  errors: HvError[];
}

/** Short heartbeat timing so status changes show within a fraction of a second. */
export const FAST_HEARTBEAT = { intervalMs: 50, lostAfterMs: 300 };

export async function bootIcGuest(cmdline = ''): Promise<IcRig> {
  const g = await GuestHarness.boot({ image: 'ic-services', cmdline, integrationServices: { heartbeat: FAST_HEARTBEAT, requestTimeoutMs: 2000 } });
  return { g, host: g.vmbus!, ic: g.ic!, errors: g.errors };
}

/** vi.waitFor on `predicate`, checked every few ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  await vi.waitFor(
    () => {
      if (!predicate()) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: timeoutMs, interval: 5 },
  );
}
