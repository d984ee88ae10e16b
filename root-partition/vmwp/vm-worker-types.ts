/** What a VM worker is launched with, and the shapes its save, capture and restore hand around. */
import type { SavedState } from './saved-state-file.ts';
import type { VmDeviceConfig } from './device-config.ts';

/** What VMMS tells a new VMWP: the VM's configuration and, to restore, its saved-state file. */
export interface WorkerLaunch {
  dataDir: string;
  vmId: string;
  name: string;
  memoryBytes: number;
  vpCount: number;
  imagePath: string;
  cmdline: string;
  restoreFrom?: string;
  /** An arriving live migration: the socket the VM's state comes in on (migration/worker-migration.ts). */
  incomingMigration?: string;
  /** The VM's devices (absent: the chipset with COM1/COM2 and no disks). */
  devices?: VmDeviceConfig;
  /** How long a pause (or save) waits for every VP to reach an exit boundary; see pauseTimeoutMs. */
  pauseTimeoutMs?: number;
  /** The host's storage roots: the image is read through a descriptor checked against them. */
  storageRoots?: string[];
  /** 'linux': the built-in Linux guest on the x86 VP kind (root-partition/x86/linux-vm-worker.ts); imagePath is its manifest. */
  guest?: 'linux';
}

/** A VM's whole state but its memory, as a saved-state file or a migration stream carries it. */
export type RestorableState = Omit<SavedState, 'memory'>;

/** What captureForMigration took: the state to send (or to resume from), and whether the VM ran. */
export interface CapturedVm {
  state: RestorableState;
  wasRunning: boolean;
  /**
   * Where the capture's time went (ms): parking the VPs, saving the devices, capturing the VPs, the
   * hook before the devices stop, stopping the device thread (filled in when it is stopped).
   */
  timing: { pauseMs: number; saveDevicesMs: number; captureVpsMs: number; finalDisksMs: number; stopDevicesMs: number };
  /** Stops the device thread (its drives closed) if the capture left it running (deferStopDevices); idempotent. */
  stopDevices: () => Promise<void>;
}

/** Where an arriving VM's restore went (ms), after its state came in. */
export interface RestoreTiming {
  /** Waiting for the prestarted VP and device threads (0 when they were ready before the state). */
  prestartWaitMs: number;
  /** Partition state written and every VP rewound and parked. */
  continueVpsMs: number;
  /** The devices built (the disks opened) and restored on the prestarted device thread. */
  startDevicesMs: number;
  /** VP threads started after the state came in (0: every VP continued on a prestarted thread). */
  vpThreadsStartedInPause: number;
  /** The device thread's code was still loading when the state came in. */
  deviceThreadLoadedInPause: boolean;
}

export const DEFAULT_PAUSE_TIMEOUT_MS = 5000;
export const PAUSE_TIMEOUT_ENV = 'TSVISOR_PAUSE_TIMEOUT_MS';

export type WorkerState = 'booting' | 'running' | 'paused' | 'stopped';

export interface VpExitRecord {
  vp: number;
  reason: string;
  detail?: string;
}
