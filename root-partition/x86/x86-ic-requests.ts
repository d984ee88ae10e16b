/**
 * The integration-service requests an x86 VM's owner sends its VP thread — heartbeat status,
 * shutdown, KVP get/set/delete — and their answers. They are served on the VP thread, where the
 * integration services run (guest RAM is v86's own memory, seen only there); the owner sees plain
 * objects, as the device thread's requests are for a WebAssembly VM (vmwp/device-requests.ts).
 */
import type { IntegrationServices } from '../vsp/ic/integration-services.ts';
import type { ShutdownAnswer } from '../vsp/ic/shutdown-vsp.ts';
import { KvpGuestWatch, type KvpGuestItems } from '../vmwp/kvp-guest-watch.ts';
import type { IntegrationServicesConfig } from '../vmwp/device-config.ts';

export type X86IcRequest =
  | { op: 'heartbeat' }
  | { op: 'shutdown'; force: boolean; reason: string; timeoutMs: number }
  | { op: 'kvp-get'; pool: number; key: string }
  | { op: 'kvp-set'; pool: number; key: string; value: string }
  | { op: 'kvp-delete'; pool: number; key: string };

export type X86IcReply =
  | { ok: true; heartbeat?: number; shutdown?: ShutdownAnswer; value?: string | null; done?: { ok: boolean; reason?: string } }
  | { ok: false; code: string; error: string };

/** The integration services of one x86 VM as its VP thread serves them. */
export class X86IcRequests {
  private readonly kvpWatch: KvpGuestWatch | null = null;

  constructor(
    private readonly ic: IntegrationServices,
    private readonly offered: IntegrationServicesConfig,
    report?: { heartbeat: (status: number) => void; kvp: (items: KvpGuestItems) => void },
  ) {
    if (report && offered.heartbeat) ic.heartbeat.onStatus(report.heartbeat);
    if (report && offered.kvp) this.kvpWatch = new KvpGuestWatch(ic, report.kvp);
  }

  async handle(r: X86IcRequest): Promise<X86IcReply> {
    const missing = (what: string): X86IcReply => ({ ok: false, code: 'VMWP_ERR_NO_IC', error: `the VM does not offer the ${what} integration service` });
    try {
      switch (r.op) {
        case 'heartbeat':
          return this.offered.heartbeat ? { ok: true, heartbeat: this.ic.heartbeatStatus() } : missing('heartbeat');
        case 'shutdown':
          if (!this.offered.shutdown) return missing('shutdown');
          return { ok: true, shutdown: await this.ic.shutdown.initiateShutdown({ force: r.force, reason: r.reason, timeoutMs: r.timeoutMs }) };
        case 'kvp-get':
          return this.offered.kvp ? { ok: true, value: await this.ic.kvp.get(r.pool, r.key) } : missing('KVP');
        case 'kvp-set':
        case 'kvp-delete': {
          if (!this.offered.kvp) return missing('KVP');
          const res = r.op === 'kvp-set' ? await this.ic.kvpSetHostItem(r.pool, r.key, r.value) : await this.ic.kvpDeleteHostItem(r.pool, r.key);
          void this.kvpWatch?.refresh();
          return { ok: true, done: res.ok ? { ok: true } : { ok: false, reason: res.reason } };
        }
      }
    } catch (e) {
      return { ok: false, code: 'VMWP_ERR_IC', error: e instanceof Error ? e.message : String(e) };
    }
  }

  dispose(): void {
    this.kvpWatch?.dispose();
  }
}
