/**
 * Keeps the host's copy of the guest's KVP items current. The KVP protocol has the host ask: the
 * guest never announces a change, so the host side enumerates the Guest and Auto pools (as
 * Hyper-V's VMMS does for Msvm_KvpExchangeComponent) every interval and after each host write,
 * and reports only when an item changed. VMMS then has them at hand and pushes the change as an
 * __InstanceModificationEvent, instead of asking the guest on every enumeration.
 */
import type { IntegrationServices } from '../vsp/ic/integration-services.ts';

/** GuestExchangeItems (pool Guest) and GuestIntrinsicExchangeItems (pool Auto), as [key, value]. */
export interface KvpGuestItems {
  guest: [string, string][];
  intrinsic: [string, string][];
}

export const KVP_REFRESH_MS = 2000;

export class KvpGuestWatch {
  private timer: NodeJS.Timeout | null = null;
  private last = '';
  private running: Promise<void> | null = null;

  constructor(
    private readonly ic: IntegrationServices,
    private readonly onChange: (items: KvpGuestItems) => void,
    intervalMs = KVP_REFRESH_MS,
  ) {
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref?.();
  }

  /** Re-reads both pools now (one refresh at a time); reports when they differ from the last report. */
  refresh(): Promise<void> {
    this.running ??= this.read().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async read(): Promise<void> {
    if (!this.ic.kvp.ready) return;
    if (!(await this.ic.refreshKvpGuestItems())) return;
    const items: KvpGuestItems = { guest: [...this.ic.kvpGuestItems()].sort(), intrinsic: [...this.ic.kvpGuestIntrinsicItems()].sort() };
    const text = JSON.stringify(items);
    if (text === this.last) return;
    this.last = text;
    this.onChange(items);
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
