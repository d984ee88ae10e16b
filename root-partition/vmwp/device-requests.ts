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
import type { DiskBlocksTaken, MovedDiskInfo } from './disk-copy-source.ts';
import type { VmDevices } from './vm-devices.ts';
import { KvpGuestWatch, type KvpGuestItems } from './kvp-guest-watch.ts';

export type DeviceRequest =
  | { op: 'heartbeat' }
  | { op: 'shutdown'; force: boolean; reason: string; timeoutMs: number }
  | { op: 'kvp-get'; pool: number; key: string }
  | { op: 'kvp-set'; pool: number; key: string; value: string }
  | { op: 'kvp-delete'; pool: number; key: string }
  | { op: 'save-devices' }
  | { op: 'switch-disks'; switches: { from: string; to: string }[] }
  /** Merges the drive on `child` into `parent` (its parent) while the VM runs (live-merge.ts); `repoint`: files pointed at `parent` (chain-merge.ts). */
  | { op: 'merge-disk'; child: string; parent: string; repoint?: string[] }
  /** A storage move (disk-copy-source.ts): track every drive's writes, read the dirty blocks, stop. */
  | { op: 'move-storage-begin' }
  | { op: 'move-storage-take'; disk: number; from: number; maxBytes: number; skipZero: boolean }
  | { op: 'move-storage-end' };

export interface DeviceReplies {
  heartbeat: { status: number };
  shutdown: ShutdownAnswer;
  'kvp-get': { value: string | null };
  'kvp-set': { ok: boolean; reason?: string };
  'kvp-delete': { ok: boolean; reason?: string };
  'save-devices': { records: DeviceStateRecord[] };
  'switch-disks': { switched: number };
  'merge-disk': { copiedBytes: number; switchMs: number; leftover: string | null };
  'move-storage-begin': { disks: MovedDiskInfo[] };
  'move-storage-take': DiskBlocksTaken;
  'move-storage-end': { ended: true };
}

/** Failures carry a stable code, as the control protocol's errors do. */
export class DeviceRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The VMBus host's record in a saved state (DeviceStateRecord; the bytes are vmbus-saved-state.ts). */
export const VMBUS_RECORD = { name: 'vmbus', version: 1 } as const;

/** The device thread's side: owns the integration services and answers requests. */
export class DeviceRequestServer {
  readonly ic: IntegrationServices | null = null;
  private kvpWatch: KvpGuestWatch | null = null;
  /** Whether the VPs are parked (the partition asked to pause): a save is taken only then. */
  vpsParked: () => boolean = () => true;
  /** Serves what the guest left in flight on its ports (messages, event flags) before a save. */
  serveInFlight: () => void = () => {};

  constructor(
    private readonly devices: VmDevices,
    referenceTime: () => bigint,
    config: IntegrationServicesConfig | undefined,
    log: (m: string) => void,
    /** Each heartbeat status change, as it happens (only when the heartbeat service is offered). */
    onHeartbeat?: (status: number) => void,
    /** The guest's KVP items at each change (only when the KVP service is offered). */
    onKvp?: (items: KvpGuestItems) => void,
  ) {
    if (config && devices.vmbus) {
      this.ic = new IntegrationServices({ referenceTime, log: (e) => log(`integration services ${e.code}: ${e.message}`) });
      // Offer only the services the definition enables; the others are never offered to the guest.
      const enabled = [
        config.heartbeat && this.ic.heartbeat,
        config.shutdown && this.ic.shutdown,
        config.timeSync && this.ic.timeSync,
        config.kvp && this.ic.kvp,
      ];
      for (const vsp of enabled) if (vsp) devices.vmbus.addVsp(vsp);
      if (config.heartbeat && onHeartbeat) this.ic.heartbeat.onStatus(onHeartbeat);
      if (config.kvp && onKvp) this.kvpWatch = new KvpGuestWatch(this.ic, onKvp);
    }
  }

  async handle(r: DeviceRequest): Promise<DeviceReplies[DeviceRequest['op']]> {
    // Requests a disk runs queued finish first: the save, switch, merge or copy then sees every
    // write, and the rings hold every completion (storvsp-vsp.ts whenIdle).
    if (r.op === 'save-devices' || r.op === 'switch-disks' || r.op === 'merge-disk' || r.op === 'move-storage-take' || r.op === 'move-storage-end') {
      // The last check and the request run in one go: no turn of the event loop between them
      // could start another request (a take must never clear the dirty mark of a write in flight).
      for (let round = 0; round < 8; round++) {
        if (r.op === 'save-devices' && this.vpsParked()) this.serveInFlight();
        if (this.devices.storageInFlight === 0) break;
        await this.devices.storageIdle();
      }
    }
    if (r.op === 'save-devices') return { records: this.saveDevices() };
    // Sub-channels served on queue threads come back to this thread first (a parked thread touches
    // no ring and no disk): the switch, the merge's start and the move's dirty map see every write.
    // A drive being merged or moved stays here until it is done (SwitchableDisk.sharedDescriptor).
    if (r.op === 'switch-disks') {
      // The guest's requests were all served when the devices saved; with the VPs parked none is new.
      if (!this.vpsParked()) throw new DeviceRequestError('VMWP_ERR_SWITCH_NOT_PAUSED', 'drives are switched only while the VPs are parked');
      this.devices.holdStorageThreads();
      try {
        this.devices.switchDisks(r.switches);
      } finally {
        this.devices.releaseStorageThreads();
      }
      return { switched: r.switches.length };
    }
    if (r.op === 'merge-disk') {
      this.devices.holdStorageThreads();
      try {
        return await this.devices.mergeDisk(r.child, r.parent, r.repoint ?? []);
      } finally {
        this.devices.releaseStorageThreads();
      }
    }
    if (r.op === 'move-storage-begin') {
      this.devices.holdStorageThreads();
      try {
        return { disks: this.devices.beginStorageMove() };
      } finally {
        this.devices.releaseStorageThreads();
      }
    }
    if (r.op === 'move-storage-take') return this.devices.storageMove.take(r.disk, r.from, r.maxBytes, r.skipZero);
    if (r.op === 'move-storage-end') {
      this.devices.storageMove.end();
      return { ended: true };
    }
    const ic = this.ic;
    if (!ic) throw new DeviceRequestError('VMWP_ERR_NO_IC', 'the VM has no integration services (add an integration-services device to its definition)');
    switch (r.op) {
      case 'heartbeat':
        return { status: ic.heartbeatStatus() };
      case 'shutdown':
        return ic.shutdown.initiateShutdown({ force: r.force, reason: r.reason, timeoutMs: r.timeoutMs });
      case 'kvp-get':
        return { value: await ic.kvp.get(r.pool, r.key) };
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
   * The chipset's records (PIC, UARTs, PCI, IDE) and, when the VM has VMBus, its record: the
   * server, GPADLs, queued messages, open channels and each VSP's state (VmbusHost.saveState).
   * From then on the VMBus side stays still (VmbusHost.saveState) until the thread stops or
   * `resumeAfterSave` (the save was abandoned and the VM runs on).
   */
  private saveDevices(): DeviceStateRecord[] {
    if (!this.vpsParked()) throw new DeviceRequestError('VMWP_ERR_SAVE_NOT_PAUSED', 'the devices are saved only while the VPs are parked (pause the VM first)');
    // A signal or message the guest sent just before it parked is served now, so that nothing is
    // left on a port for the partition snapshot to refuse and the devices save what it asked for.
    this.serveInFlight();
    const records = this.devices.platform.saveState();
    const vmbus = this.devices.vmbus;
    if (!vmbus) return records;
    try {
      records.push({ ...VMBUS_RECORD, state: vmbus.saveState() });
    } catch (e) {
      vmbus.resumeAfterSave();
      throw new DeviceRequestError('VMWP_ERR_SAVE_VMBUS', `the VMBus state could not be captured: ${e instanceof Error ? e.message : String(e)}`);
    }
    return records;
  }

  /** A save was taken but not used (the VM runs on): VMBus and its devices act again. */
  resumeAfterSave(): void {
    this.devices.vmbus?.resumeAfterSave();
  }

  /**
   * Restores a saved VM's records before the guest runs: the chipset's (all or nothing), then
   * VMBus (checked whole before anything is applied). A VM with VMBus saved by a release that
   * refused to save a guest connected to VMBus has no VMBus record: its guest never connected,
   * and a fresh VMBus host is that state.
   */
  restoreDevices(records: readonly DeviceStateRecord[]): void {
    const vmbusRecord = records.find((r) => r.name === VMBUS_RECORD.name);
    const chipset = records.filter((r) => r !== vmbusRecord);
    if (vmbusRecord && !this.devices.vmbus)
      throw new DeviceRequestError('VMWP_ERR_RESTORE_VMBUS', 'the saved state has a VMBus record but this VM has no VMBus devices');
    if (vmbusRecord && vmbusRecord.version !== VMBUS_RECORD.version) {
      throw new DeviceRequestError(
        'VMWP_ERR_RESTORE_VMBUS',
        `VMBus record version ${vmbusRecord.version} is not supported (this build reads ${VMBUS_RECORD.version})`,
      );
    }
    this.devices.platform.restoreState(chipset);
    if (vmbusRecord) this.devices.vmbus!.restoreState(vmbusRecord.state);
  }

  dispose(): void {
    this.kvpWatch?.dispose();
    this.ic?.dispose();
  }
}
