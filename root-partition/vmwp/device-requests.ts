/**
 * The request path from the VMWP's main thread to its device thread: the few operations that
 * need a device's own state — the integration services' heartbeat status, shutdown and KVP, and
 * the emulated chipset's saved state. Requests and replies are plain objects that cross by
 * postMessage; they are answered on the device thread, the only thread that touches the devices.
 */
import type { DeviceStateRecord } from '../devices/device-state.ts';
import { IntegrationServices } from '../vsp/ic/integration-services.ts';
import type { ShutdownAnswer } from '../vsp/ic/shutdown-vsp.ts';
import type { IntegrationServicesConfig } from './device-config.ts';
import type { VmDevices } from './vm-devices.ts';
import { KvpGuestWatch, type KvpGuestItems } from './kvp-guest-watch.ts';

export type DeviceRequest =
  | { op: 'heartbeat' }
  | { op: 'shutdown'; force: boolean; reason: string; timeoutMs: number }
  | { op: 'kvp-get'; pool: number; key: string }
  | { op: 'kvp-set'; pool: number; key: string; value: string }
  | { op: 'kvp-delete'; pool: number; key: string }
  | { op: 'save-devices' };

export interface DeviceReplies {
  heartbeat: { status: number };
  shutdown: ShutdownAnswer;
  'kvp-get': { value: string | null };
  'kvp-set': { ok: boolean; reason?: string };
  'kvp-delete': { ok: boolean; reason?: string };
  'save-devices': { records: DeviceStateRecord[] };
}

/** Failures carry a stable code, as the control protocol's errors do. */
export class DeviceRequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The device thread's side: owns the integration services and answers requests. */
export class DeviceRequestServer {
  readonly ic: IntegrationServices | null = null;
  private kvpWatch: KvpGuestWatch | null = null;

  constructor(
    private readonly devices: VmDevices, referenceTime: () => bigint, config: IntegrationServicesConfig | undefined, log: (m: string) => void,
    /** Each heartbeat status change, as it happens (only when the heartbeat service is offered). */
    onHeartbeat?: (status: number) => void,
    /** The guest's KVP items at each change (only when the KVP service is offered). */
    onKvp?: (items: KvpGuestItems) => void,
  ) {
    if (config && devices.vmbus) {
      this.ic = new IntegrationServices({ referenceTime, log: (e) => log(`integration services ${e.code}: ${e.message}`) });
      // Offer only the services the definition enables; the others are never offered to the guest.
      const enabled = [config.heartbeat && this.ic.heartbeat, config.shutdown && this.ic.shutdown, config.timeSync && this.ic.timeSync, config.kvp && this.ic.kvp];
      for (const vsp of enabled) if (vsp) devices.vmbus.addVsp(vsp);
      if (config.heartbeat && onHeartbeat) this.ic.heartbeat.onStatus(onHeartbeat);
      if (config.kvp && onKvp) this.kvpWatch = new KvpGuestWatch(this.ic, onKvp);
    }
  }

  async handle(r: DeviceRequest): Promise<DeviceReplies[DeviceRequest['op']]> {
    if (r.op === 'save-devices') return { records: this.saveDevices() };
    const ic = this.ic;
    if (!ic) throw new DeviceRequestError('VMWP_ERR_NO_IC', 'the VM has no integration services (add an integration-services device to its definition)');
    switch (r.op) {
      case 'heartbeat': return { status: ic.heartbeatStatus() };
      case 'shutdown': return ic.shutdown.initiateShutdown({ force: r.force, reason: r.reason, timeoutMs: r.timeoutMs });
      case 'kvp-get': return { value: await ic.kvp.get(r.pool, r.key) };
      case 'kvp-set': {
        const res = await ic.kvpSetHostItem(r.pool, r.key, r.value);
        void this.kvpWatch?.refresh();
        return res.ok ? { ok: true } : { ok: false, reason: res.reason };
      }
      case 'kvp-delete': {
        const res = await ic.kvpDeleteHostItem(r.pool, r.key);
        void this.kvpWatch?.refresh();
        return res.ok ? { ok: true } : { ok: false, reason: res.reason };
      }
    }
  }

  /**
   * The chipset's records (PIC, UARTs, PCI, IDE). VMBus and its VSPs keep state (rings, GPADLs,
   * requests in flight) that they cannot save yet, so a guest that has connected to VMBus
   * cannot be saved: refused here, and the worker resumes the VM.
   */
  private saveDevices(): DeviceStateRecord[] {
    const vmbus = this.devices.vmbus;
    if (vmbus && vmbus.server.connectionPhase === 'connected') {
      throw new DeviceRequestError('VMWP_ERR_SAVE_VMBUS', `the guest is connected to VMBus (${vmbus.server.channelCount()} channels offered); VMBus channels and their devices cannot be saved mid-flight — shut the VM down or turn it off instead`);
    }
    return this.devices.platform.saveState();
  }

  dispose(): void {
    this.kvpWatch?.dispose();
    this.ic?.dispose();
  }
}
