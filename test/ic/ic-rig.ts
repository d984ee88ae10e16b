/** Boots the ic-services guest against the real host side with the four IC VSPs. */
import { HvError } from '../../hypervisor/hv-error.ts';
import { PartitionProperty } from '../../hypervisor/partition.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { IntegrationServices, type IntegrationServicesOptions } from '../../root-partition/vsp/ic/integration-services.ts';
import { bootTestGuest, type TestGuest } from '../helpers/guest-partition.ts';

export interface IcRig { g: TestGuest; host: VmbusHost; ic: IntegrationServices; errors: HvError[] }

/** Short heartbeat timing so status changes show within a fraction of a second. */
export const FAST_HEARTBEAT = { intervalMs: 50, lostAfterMs: 300 };

export async function bootIcGuest(cmdline = '', options: Partial<IntegrationServicesOptions> = {}): Promise<IcRig> {
  const errors: HvError[] = [];
  let host!: VmbusHost;
  let ic!: IntegrationServices;
  const g = await bootTestGuest('ic-services', cmdline, {
    beforeStart: (p) => {
      host = new VmbusHost(p, { log: (e) => errors.push(e) });
      ic = new IntegrationServices({
        referenceTime: () => p.getProperty(PartitionProperty.ReferenceTime).value,
        heartbeat: FAST_HEARTBEAT,
        requestTimeoutMs: 2000,
        log: (e) => errors.push(e),
        ...options,
      });
      ic.addTo(host);
    },
  });
  return { g, host, ic, errors };
}

/** Polls `predicate` every few ms until true; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
