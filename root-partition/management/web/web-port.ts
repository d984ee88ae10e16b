/**
 * What the web console needs of the VMMS, stated here so that management imports nothing outside
 * management (test/management/layering.test.ts); `root-partition/vmms/web-binding.ts` implements
 * it over the running service. Every change arrives pushed through `subscribe`, as the VMMS's own
 * events happen: nothing here is polled by the browser.
 */

/** One VM as the VM list shows it. */
export interface WebVm {
  readonly id: string;
  readonly name: string;
  readonly enabledState: number;
  readonly state: string;
  readonly healthState: number;
  /** Msvm_HeartbeatComponent OperationalStatus (2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication, 15 Paused); null without a worker. */
  readonly heartbeatStatus: number | null;
  /** Milliseconds the VM has been running when the record was made; null when it is not running. */
  readonly uptimeMs: number | null;
  readonly memoryBytes: number;
  readonly vpCount: number;
  readonly processId: number | null;
  /** RequestedState values the VM accepts now (lifecycle.ts). */
  readonly availableRequestedStates: readonly number[];
  readonly lastError: string | null;
}

/** A VM's page: the list record plus its settings, devices, integration services and KVP items. */
export interface WebVmDetail extends WebVm {
  /** The guest image's file name (the page shows names, never host paths beyond the definition's). */
  readonly image: string;
  readonly cmdline: string;
  readonly automaticStopAction: string;
  readonly notes: string;
  readonly devices: readonly { readonly kind: string; readonly [setting: string]: unknown }[];
  readonly integrationServices: readonly { readonly name: string; readonly enabled: boolean; readonly status: string }[];
  readonly kvpGuestItems: readonly (readonly [string, string])[] | null;
  readonly kvpIntrinsicItems: readonly (readonly [string, string])[] | null;
}

/** A Msvm_ConcreteJob as the page shows it. */
export interface WebJob {
  readonly id: string;
  readonly vmId: string | null;
  readonly description: string;
  readonly jobState: number;
  readonly percentComplete: number;
  readonly errorCode: number;
  readonly errorDescription: string | null;
}

/** Rates over the last sampling interval, from the worker's counters and its process's CPU time. */
export interface CounterSample {
  readonly at: number;
  /** Share of the host's CPU time the VM's worker process used (0..100). */
  readonly cpuPercent: number;
  readonly exitsPerSecond: number;
  /** Port, string-port and MMIO intercepts per second (the emulated devices' I/O). */
  readonly ioPerSecond: number;
  /** VMBus signals per second: HvCallSignalEvent calls by the guest and events signalled to it. */
  readonly signalsPerSecond: number;
}

/** The quick I/O benchmark started from the console: where it stands. */
export interface BenchStatus {
  readonly running: boolean;
  readonly done: number;
  readonly total: number;
  /** The step under way. */
  readonly step: string;
  readonly error: string | null;
  readonly finishedAt: string | null;
}

export type WebPortEvent =
  | { kind: 'vm'; vmId: string }
  | { kind: 'removed'; vmId: string }
  | { kind: 'console'; vmId: string; data: Uint8Array }
  | { kind: 'counters'; vmId: string; sample: CounterSample }
  | { kind: 'job'; job: WebJob }
  | { kind: 'bench'; status: BenchStatus };

export type WebAction = 'start' | 'shutdown' | 'turn-off' | 'save' | 'pause' | 'resume' | 'reset' | 'delete';
export const WEB_ACTIONS: readonly WebAction[] = ['start', 'shutdown', 'turn-off', 'save', 'pause', 'resume', 'reset', 'delete'];

export interface ActionResult {
  /** The Hyper-V return code: 0 done, 4096 a job was started, anything else refused. */
  readonly returnValue: number;
  readonly error?: string;
  readonly jobId?: string;
}

export interface NewVmSettings {
  readonly name: string;
  readonly memoryBytes: number;
  readonly vpCount: number;
  /** One of `images()`: the browser names an image the service offered, never a host path. */
  readonly image: string;
  readonly cmdline: string;
}

/** A settings edit from the VM page (Set-VM / Set-VMMemory / Set-VMProcessor): only what is given changes. */
export interface VmSettingsChange {
  readonly memoryBytes?: number;
  readonly vpCount?: number;
  readonly cmdline?: string;
  readonly notes?: string;
}

export interface WebConsolePort {
  list(): WebVm[];
  detail(id: string): WebVmDetail | null;
  jobs(): WebJob[];
  /** Guest images a new VM may boot (file names in the service's storage roots). */
  images(): string[];
  act(id: string, action: WebAction): Promise<ActionResult>;
  define(settings: NewVmSettings): WebVm;
  /** Changes a VM's settings (memory, VPs and command line only while it is Off; notes any time). */
  modify(id: string, change: VmSettingsChange): ActionResult;
  /** The console output the VMMS holds for the VM (its newest bytes). */
  consoleTail(id: string): Uint8Array;
  consoleInput(id: string, bytes: Uint8Array): Promise<void>;
  /** The I/O benchmark's report (JSON) and its HTML rendering, when one exists. */
  benchReport(): { json: unknown; html: string } | null;
  benchStatus(): BenchStatus;
  /** Starts the quick benchmark; false when one runs already. */
  runBench(): boolean;
  subscribe(listener: (e: WebPortEvent) => void): () => void;
  /** Counters are sampled only while someone watches: the returned function ends this watcher. */
  watchCounters(): () => void;
}
