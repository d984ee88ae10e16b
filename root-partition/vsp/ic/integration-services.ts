/**
 * The four integration services of one VM as one object, with the API VMMS and the management
 * layer call (Msvm_HeartbeatComponent, Msvm_ShutdownComponent, Msvm_KvpExchangeComponent):
 *
 *   const ic = new IntegrationServices({ referenceTime: () => partition.getProperty(…).value });
 *   ic.addTo(vmbusHost);
 *   ic.heartbeatStatus();                          // 2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication
 *   await ic.initiateShutdown({ force, reason, timeoutMs, turnOff });
 *   await ic.kvpSetHostItem(KvpPool.External, 'key', 'value');
 *   await ic.refreshKvpGuestItems(); ic.kvpGuestItems();
 */
import type { HvError } from '../../../hypervisor/hv-error.ts';
import type { VmbusHost } from '../../../vmbus/host/vmbus-host.ts';
import { HeartbeatVsp, type HeartbeatOptions, type HeartbeatStatusValue } from './heartbeat-vsp.ts';
import { KvpVsp } from './kvp-vsp.ts';
import type { KvpResult } from './kvp-vsp.ts';
import { KvpPool } from './kvp-protocol.ts';
import { ShutdownVsp, type ShutdownAnswer, type ShutdownRequestOptions } from './shutdown-vsp.ts';
import { TimeSyncVsp } from './timesync-vsp.ts';

export interface IntegrationServicesOptions {
  /** The partition reference time (100 ns), for time-sync 4.0 samples. */
  referenceTime: () => bigint;
  heartbeat?: Omit<HeartbeatOptions, 'log'>;
  timeSync?: { sampleIntervalMs?: number; clock?: () => number };
  /** One request's answer time for shutdown, time sync and KVP (default 5000 ms). */
  requestTimeoutMs?: number;
  log?: (error: HvError) => void;
}

export interface ShutdownGuestOptions extends ShutdownRequestOptions {
  /**
   * Resolves when the VM has stopped (e.g. every VP halted). Raced against what is left of
   * `timeoutMs` after the guest's answer.
   */
  whenOff?: () => Promise<void>;
  /** The fallback: turn the VM off (Stop-VM -TurnOff) when the guest does not comply in time. */
  turnOff?: () => Promise<void> | void;
}

export type ShutdownResult =
  /** The guest answered S_OK and stopped in time (or no whenOff was given). */
  | { outcome: 'shut-down'; answer: ShutdownAnswer }
  /** The guest did not answer or did not stop in time; `turnedOff` when the fallback ran. */
  | { outcome: 'timed-out'; answer: ShutdownAnswer; turnedOff: boolean }
  /** The guest refused, or has no shutdown service running: nothing was done. */
  | { outcome: 'refused' | 'unavailable'; answer: ShutdownAnswer };

export class IntegrationServices {
  readonly heartbeat: HeartbeatVsp;
  readonly shutdown: ShutdownVsp;
  readonly timeSync: TimeSyncVsp;
  readonly kvp: KvpVsp;

  constructor(options: IntegrationServicesOptions) {
    const common = { log: options.log, requestTimeoutMs: options.requestTimeoutMs };
    this.heartbeat = new HeartbeatVsp({ ...options.heartbeat, log: options.log });
    this.shutdown = new ShutdownVsp(common);
    this.timeSync = new TimeSyncVsp({ ...common, ...options.timeSync, referenceTime: options.referenceTime });
    this.kvp = new KvpVsp(common);
  }

  /** Offers all four devices on the VM's VMBus. */
  addTo(host: VmbusHost): void {
    for (const vsp of this.all()) host.addVsp(vsp);
  }

  /** Msvm_HeartbeatComponent OperationalStatus[0]. */
  heartbeatStatus(): HeartbeatStatusValue {
    return this.heartbeat.status();
  }

  /**
   * Msvm_ShutdownComponent.InitiateShutdown, with the fallback VMMS needs: the request goes to
   * the guest; if it accepts, `whenOff` is awaited for the rest of `timeoutMs` (default 30 s);
   * with no answer or no stop in time, `turnOff` runs (if given). A refusal is returned as is.
   */
  async initiateShutdown(o: ShutdownGuestOptions = {}): Promise<ShutdownResult> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    const started = performance.now();
    const answer = await this.shutdown.initiateShutdown({ ...o, timeoutMs });
    const fallback = async (): Promise<ShutdownResult> => {
      if (o.turnOff) await o.turnOff();
      return { outcome: 'timed-out', answer, turnedOff: o.turnOff !== undefined };
    };
    if (answer.outcome === 'refused') return { outcome: 'refused', answer };
    if (answer.outcome === 'unavailable') return { outcome: 'unavailable', answer };
    if (answer.outcome === 'no-answer') return fallback();
    if (!o.whenOff) return { outcome: 'shut-down', answer };
    const left = Math.max(0, timeoutMs - (performance.now() - started));
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      o.whenOff().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), left);
      }),
    ]);
    clearTimeout(timer);
    return stopped ? { outcome: 'shut-down', answer } : fallback();
  }

  /** Host → guest item (pool External by default; AutoExternal for host intrinsic items). */
  kvpSetHostItem(pool: number, key: string, value: string): Promise<KvpResult> {
    return this.kvp.set(pool, key, value);
  }

  kvpDeleteHostItem(pool: number, key: string): Promise<KvpResult> {
    return this.kvp.delete(pool, key);
  }

  /** Re-reads the guest's Guest and Auto (intrinsic) pools; false when either enumeration failed. */
  async refreshKvpGuestItems(): Promise<boolean> {
    const guest = await this.kvp.enumerate(KvpPool.Guest);
    const auto = await this.kvp.enumerate(KvpPool.Auto);
    return guest !== null && auto !== null;
  }

  /** GuestExchangeItems as last read (refreshKvpGuestItems). */
  kvpGuestItems(): Map<string, string> {
    return this.kvp.items(KvpPool.Guest);
  }

  /** GuestIntrinsicExchangeItems as last read. */
  kvpGuestIntrinsicItems(): Map<string, string> {
    return this.kvp.items(KvpPool.Auto);
  }

  /** Stops every timer and answers every waiting caller (the VMBus host owns the channels). */
  dispose(): void {
    for (const vsp of this.all()) vsp.dispose();
  }

  private all() {
    return [this.heartbeat, this.shutdown, this.timeSync, this.kvp] as const;
  }
}
