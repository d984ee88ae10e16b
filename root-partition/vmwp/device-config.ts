/**
 * The devices of one VM as the device thread builds them: serialisable, so it crosses to the
 * thread (or process) that hosts them. Disks are raw image files.
 */
export interface DiskConfig {
  path: string;
  readOnly?: boolean;
  /** 16 bytes as 32 hex digits: the SCSI serial number and WWN (absent: a VHDX's Virtual Disk ID, a raw image's path hash). */
  diskId?: string;
  /** SCSI only: the controller location (= LUN); default its index in the list. */
  location?: number;
}

/** Which integration services the VMBus host offers (all four when the entry is present). */
export interface IntegrationServicesConfig {
  heartbeat: boolean;
  shutdown: boolean;
  timeSync: boolean;
  kvp: boolean;
}

export interface ScsiControllerConfig {
  /** Instance GUID of the controller's VMBus channel. */
  instanceId: string;
  /** Disks at locations 0, 1, … (LUN = location). */
  disks: DiskConfig[];
  /** Sub-channels offered to a guest that asks (0 = single queue). */
  maxSubChannels?: number;
  /** Host polling window while requests are in flight, µs (0 = off). */
  pollSpinMicros?: number;
  /** Reads/writes of at least this many bytes run several at once in the thread pool (storvsp-vsp.ts queueMinBytes; null = never). */
  queueMinBytes?: number | null;
  /** Sub-channels served on queue threads of their own (storvsp-vsp.ts subChannelThreads; default 'auto'). */
  subChannelThreads?: 'auto' | 'on' | 'off';
}

/** An operator's own VSP: a module written with the child SDK (user-vsp-loader.ts). */
export interface UserVspConfig {
  /** Absolute path of the module (.ts, .mts, .js or .mjs). */
  module: string;
  /** The exported class; default: the module's default export, else its only exported class. */
  export?: string;
}

/** A network adapter: synthetic (netvsp on VMBus) or legacy (NE2000 on the Gen1 PCI bus). */
export interface NicConfig {
  kind: 'synthetic' | 'emulated';
  /** "00:15:5d:…" (lower case, colon-separated). */
  mac: string;
  /** Synthetic: the instance GUID of its VMBus channel. */
  instanceId?: string;
  /** The port's name on the switch ("<vm>/<adapter>"). */
  name?: string;
  /** The switch's socket (resolved by VMMS from the switch name); absent: not connected. */
  switchSocket?: string;
  /** Access VLAN id of the port (1–4094). */
  vlanId?: number;
  /** Synthetic: channels (receive queues) a guest may open, the primary included (default 8, at most the host's cores; 1 = single queue). */
  maxChannels?: number;
}

export interface VmDeviceConfig {
  /** Network adapters, in definition order (legacy ones take PCI slots 0A, 0B, … in that order). */
  nics?: NicConfig[];
  /** IDE drives: primary master, primary slave, secondary master, secondary slave (null = empty). */
  ide?: (DiskConfig | null)[];
  scsi?: ScsiControllerConfig[];
  /** Offer the integration services on VMBus (heartbeat, shutdown, time sync, KVP). */
  integrationServices?: IntegrationServicesConfig;
  /** Offer the echo example device on VMBus. */
  echo?: boolean;
  /** The operator's own VSPs, offered after the built-in devices in this order. */
  userVsps?: UserVspConfig[];
  /** Start the VMBus host even without synthetic devices (a guest may still connect). */
  vmbus?: boolean;
  /**
   * Put a POST-code port (0x80) on the bus whose writes snapshot the VP and device counters and
   * send them to the VM's owner (benchmark phase marks; see post-code-port.ts).
   */
  postCodes?: boolean;
  /**
   * When set, every disk must turn out, once opened, to lie in one of these directories (real
   * paths): the check on the descriptor itself, after VMMS's checks on the path.
   */
  storageRoots?: string[];
}
