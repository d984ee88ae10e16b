/**
 * What the live provider needs of the VMMS, stated here so that the management layer imports
 * nothing outside management (test/management/layering.test.ts). `root-partition/vmms/cim-
 * binding.ts` implements it over the real service; tests may implement it in memory.
 */

/** One VM as the provider sees it (the fields of the VMMS's VmView it publishes). */
export interface VmRecord {
  readonly id: string;
  readonly name: string;
  readonly enabledState: number;
  readonly healthState: number;
  readonly processId: number | null;
  readonly availableRequestedStates: readonly number[];
  readonly memoryBytes: number;
  readonly vpCount: number;
  readonly imagePath: string;
  readonly cmdline: string;
  /** 'linux': the built-in Linux guest (x86 VP kind); absent for a WebAssembly guest image. */
  readonly guest?: 'linux';
  readonly automaticStopAction: string;
  /** 'nothing', 'start' or 'start-if-running'; absent is 'nothing'. */
  readonly automaticStartAction?: string;
  readonly notes?: string;
  readonly devices: readonly DeviceRecord[];
  readonly uptimeMs: number | null;
  readonly lastError: string | null;
  /** Msvm_HeartbeatComponent OperationalStatus as last pushed by the worker; null or absent when unknown. */
  readonly heartbeatStatus?: number | null;
  /** The guest's KVP items ([Name, Data]) as last read from the guest: pool Guest and pool Auto (intrinsic). */
  readonly kvpGuestItems?: readonly (readonly [string, string])[] | null;
  readonly kvpIntrinsicItems?: readonly (readonly [string, string])[] | null;
  /** Percent of the VM's processors (Reserve, Maximum), RelativeWeight; absent: 0, 100, 100. */
  readonly cpuReserve?: number;
  readonly cpuMaximum?: number;
  readonly cpuWeight?: number;
  /** Percent of the VM's processors used over the last second, per VM and per VP; null or absent when not measured. */
  readonly cpuUsage?: number | null;
  readonly vpCpuUsage?: readonly number[] | null;
}

/** A host → guest KVP change (Msvm_VirtualSystemManagementService.Add/Modify/RemoveKvpItems). */
export type KvpItemChange = 'add' | 'modify' | 'remove';

export interface DeviceRecord {
  readonly kind: string;
  readonly [setting: string]: unknown;
}

/** The definition fields a client may set (DefineSystem, Modify*Settings). */
export interface VmDefinitionChange {
  name?: string;
  memoryBytes?: number;
  vpCount?: number;
  imagePath?: string;
  cmdline?: string;
  automaticStopAction?: 'save' | 'turn-off';
  automaticStartAction?: 'nothing' | 'start' | 'start-if-running';
  notes?: string;
  devices?: DeviceRecord[];
  /** Msvm_ProcessorSettingData Reservation and Limit as percentages, and Weight. */
  cpuReserve?: number;
  cpuMaximum?: number;
  cpuWeight?: number;
  guest?: 'linux';
}

/** A Hyper-V return code and, when it is not 0, a sentence saying why. */
export interface PortResult {
  readonly returnValue: number;
  readonly error?: string;
}

export type VmmsPortEvent =
  | { kind: 'state-changed'; vmId: string; reason: string }
  | { kind: 'defined'; vmId: string }
  | { kind: 'modified'; vmId: string }
  | { kind: 'removed'; vmId: string }
  /** An integration component's status changed (the heartbeat, as the guest's device reports it). */
  | { kind: 'component-changed'; vmId: string; component: 'heartbeat' | 'kvp' };

/** One checkpoint (Hyper-V snapshot) of a VM as the provider publishes it. */
export interface SnapshotRecord {
  readonly id: string;
  readonly name: string;
  readonly vmId: string;
  readonly parentId: string | null;
  /** ISO time. */
  readonly createdAt: string;
  /** The snapshot the VM's current state derives from. */
  readonly current: boolean;
  readonly hasSavedState: boolean;
  readonly imagePath: string;
  readonly cmdline: string;
}

/** Checkpoint-VM, Restore-VMSnapshot, Remove-VMSnapshot over the VMMS (Msvm_VirtualSystemSnapshotService). */
export interface SnapshotPort {
  list(vmId: string): SnapshotRecord[];
  /** Takes one with the given id (a GUID chosen by the caller, so the method can name it at once). */
  create(vmId: string, id: string, name: string | undefined): Promise<PortResult>;
  apply(vmId: string, snapshotId: string): Promise<PortResult>;
  destroy(vmId: string, snapshotId: string, subtree: boolean): Promise<PortResult>;
}

/** A disk image file as the image service describes it (Get-VHD). */
export interface ImageRecord {
  readonly path: string;
  readonly format: 'raw' | 'vhdx';
  readonly type: 'raw' | 'fixed' | 'dynamic' | 'differencing';
  readonly sizeBytes: number;
  readonly fileSizeBytes: number;
  readonly blockSizeBytes: number | null;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly parentPath: string | null;
  readonly parentIdentifier: string | null;
  readonly diskIdentifier: string | null;
  /** Locked by a process (a running VM, a tool) now. */
  readonly inUse: boolean;
  /** Percent of allocated blocks that do not follow the previous one in the file; null for raw. */
  readonly fragmentationPercent: number | null;
}

/** What CreateVirtualHardDisk asks for (Msvm_VirtualHardDiskSettingData's fields). */
export interface NewImageRequest {
  path: string;
  type: 'fixed' | 'dynamic' | 'differencing';
  sizeBytes?: number;
  blockSizeBytes?: number;
  logicalSectorSize?: number;
  physicalSectorSize?: number;
  parentPath?: string;
}

/** Called as image work proceeds, with the percent done. */
export type ImageProgress = (percent: number) => void;

/** What Convert-VHD asks for: the new file's path, type and block size. */
export interface ConvertImageRequest {
  path: string;
  type: 'fixed' | 'dynamic';
  blockSizeBytes?: number;
}

/** Image work's outcome; `cancelled`: it stopped at a safe point because its job was cancelled (`error` says what was left). */
export interface ImageJobResult extends PortResult {
  readonly cancelled?: boolean;
}

/**
 * New-VHD, Get-VHD, Convert-VHD, Merge-VHD, Resize-VHD, Optimize-VHD over the host's disk tools
 * (Msvm_ImageManagementService). Every path must lie in a storage root; a refusal is a PortResult
 * with the Hyper-V code and why. The work stops at its next safe point once `signal` aborts.
 */
export interface ImagePort {
  describe(path: string): { image: ImageRecord } | PortResult;
  create(request: NewImageRequest, progress: ImageProgress, signal?: AbortSignal): Promise<ImageJobResult>;
  convert(sourcePath: string, request: ConvertImageRequest, progress: ImageProgress, signal?: AbortSignal): Promise<ImageJobResult>;
  merge(sourcePath: string, destinationPath: string, progress: ImageProgress, signal?: AbortSignal): Promise<ImageJobResult>;
  resize(path: string, sizeBytes: number, progress: ImageProgress, signal?: AbortSignal): Promise<ImageJobResult>;
  compact(path: string, progress: ImageProgress, signal?: AbortSignal): Promise<ImageJobResult>;
}

/** A virtual switch as the provider publishes it (Msvm_VirtualEthernetSwitch). */
export interface SwitchRecord {
  readonly id: string;
  readonly name: string;
  /** 'private', 'internal' or 'external'. */
  readonly type: string;
  readonly notes: string;
  readonly learnedAddresses: number;
  readonly connectedPorts: number;
  /** passt as the host's side of an internal switch: what it was given. */
  readonly passt?: { readonly guestAddress: string; readonly gateway: string; readonly forwards: readonly string[] };
}

/** The host's virtual switches (New-/Get-/Remove-VMSwitch). */
export interface SwitchService {
  list(): SwitchRecord[];
  /** Throws an Error whose message says what is wrong (name taken, bad type, limit). */
  create(request: {
    name: string;
    type: string;
    notes?: string;
    passt?: { guestAddress?: string; gateway?: string; forwards?: string[] };
  }): Promise<SwitchRecord>;
  remove(id: string): Promise<PortResult>;
}

/** Where a live migration is (the job's PercentComplete and its phase, as JobStatus). */
export interface MigrationProgressRecord {
  readonly phase: string;
  readonly percentComplete: number;
}

/** Move-VM over the VMMS (Msvm_VirtualSystemMigrationService). */
export interface MigrationPort {
  /**
   * Moves a running VM to `destination` ("host:port", a trusted host's migration port); resolves
   * with 0 when it runs there, or the failure code and why (the VM then runs on here). `storage`:
   * the drives are copied into this directory on the destination (VirtualSystemAndStorage).
   */
  move(vmId: string, destination: string, onProgress: (p: MigrationProgressRecord) => void, storage?: string): Promise<PortResult & { cancelled?: boolean }>;
  /** Asks a move under way to stop before its commit point. */
  cancel(vmId: string): void;
}

export interface VmmsPort {
  /** The host's virtual switches; absent: this VMMS has none (the switch classes are then empty). */
  readonly switches?: SwitchService;
  /** The host's name (Msvm_ComputerSystem.Name of the host and the service's SystemName). */
  readonly hostName: string;
  list(): VmRecord[];
  get(id: string): VmRecord | undefined;
  /** Validates and persists; throws an Error whose message says what is wrong. */
  define(change: VmDefinitionChange & { name: string; memoryBytes: number; imagePath: string }): VmRecord;
  /** Changes a definition (the VM must be Off or Saved where the change needs it). */
  modify(id: string, change: VmDefinitionChange): PortResult;
  remove(id: string): PortResult;
  /** The return code RequestStateChange would answer at once (null: the change may start). */
  refuseStateChange(id: string, requested: number): PortResult | null;
  /** Runs the change to its end (resolves with 0 or the failure code). */
  requestStateChange(id: string, requested: number): Promise<PortResult>;
  /**
   * Graceful shutdown through the guest's shutdown integration service, or null when the worker
   * offers no such path (then InitiateShutdown answers "not supported").
   */
  readonly shutdownGuest: ((id: string, force: boolean, reason: string) => Promise<PortResult>) | null;
  /**
   * Writes or removes host items (pool External) in the guest, in order; resolves with 0 or the
   * failure code and why. Null when this VMMS has no KVP path (the methods then answer Not Supported).
   */
  readonly changeKvpItems?: ((id: string, change: KvpItemChange, items: readonly { name: string; data: string }[]) => Promise<PortResult>) | null;
  /** The host's disk image tools; absent or null when this VMMS offers none (the image service is then not served). */
  readonly images?: ImagePort | null;
  /** The VMs' checkpoints; absent or null when this VMMS has none (the snapshot service is then not served). */
  readonly snapshots?: SnapshotPort | null;
  /** Live migration; absent or null when this VMMS takes no part in it (the service is then not served). */
  readonly migration?: MigrationPort | null;
  /** Pushes each change as it happens; returns the unsubscribe function. */
  subscribe(listener: (event: VmmsPortEvent) => void): () => void;
}
