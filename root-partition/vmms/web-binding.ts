/**
 * The web console bound to the running VMMS: a WebConsolePort over the service (its VMs, its
 * events, the CIM core for actions and jobs) and the server `tsvisor serve` starts beside
 * CIM-XML — HTTPS with the CIM-XML certificate, or plain HTTP on loopback only — with the same
 * Authenticator over access.json.
 *
 * Actions go through the CIM core, as a WBEM client's would: a state change is
 * Msvm_ComputerSystem.RequestStateChange (a Msvm_ConcreteJob with progress), a shutdown
 * Msvm_ShutdownComponent.InitiateShutdown. Counters: while at least one page watches, each
 * running VM's worker is asked for its counters once a second (one request on its socket), and
 * the VM's CPU share is read from its worker's /proc/<pid>/stat (utime + stime, proc(5)).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CimInstance } from '../management/cim/instance.ts';
import type { CimObjectPath } from '../management/cim/object-path.ts';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import type { CimService } from './cim-binding.ts';
import { WebConsoleServer } from '../management/web/web-server.ts';
import type {
  ActionResult,
  BenchStatus,
  CounterSample,
  NewVmSettings,
  VmSettingsChange,
  WebAction,
  WebConsolePort,
  WebJob,
  WebPortEvent,
  WebVm,
  WebVmDetail,
} from '../management/web/web-port.ts';
import { renderHtml } from '../../bench/io/html.ts';
import type { IoBenchReport } from '../../bench/io.ts';
import { BenchRunner } from './bench-runner.ts';
import { packageGuestImagesDir } from '../host/storage-roots.ts';
import { loadTlsIdentity } from './tls-identity.ts';
import type { VmView } from './vm-entry.ts';
import type { Vmms } from './vmms.ts';

/** The web console's default port: the one after CIM-XML's 5988/5989. */
export const DEFAULT_WEB_PORT = 5990;
const SAMPLE_MS = 1000;
/** RequestedState for each action (Msvm_ComputerSystem.RequestStateChange, Microsoft Docs). */
const REQUESTED: Partial<Record<WebAction, number>> = { start: 2, resume: 2, 'turn-off': 3, save: 6, pause: 9, reset: 11 };
const HEARTBEAT = { 2: 'OK', 3: 'Degraded', 12: 'No Contact', 13: 'Lost Communication', 15: 'Paused' } as Record<number, string>;

function webVm(v: VmView): WebVm {
  return {
    id: v.id,
    name: v.name,
    enabledState: v.enabledState,
    state: v.state,
    healthState: v.healthState,
    heartbeatStatus: v.heartbeatStatus,
    uptimeMs: v.uptimeMs,
    memoryBytes: v.memoryBytes,
    vpCount: v.vpCount,
    processId: v.processId,
    availableRequestedStates: v.availableRequestedStates,
    lastError: v.lastError,
  };
}

/** utime + stime of a process in clock ticks (proc(5) fields 14 and 15, after the parenthesised name). */
function cpuTicks(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}
/** USER_HZ: 100 on every Linux architecture Node runs on (sysconf(_SC_CLK_TCK)). */
const TICKS_PER_SECOND = 100;

interface Previous {
  at: number;
  ticks: number | null;
  exits: number;
  io: number;
  signals: number;
  pid: number;
}

function totals(c: WorkerCounters): { exits: number; io: number; signals: number } {
  let exits = 0,
    io = 0,
    signals = 0;
  for (const vp of c.vps) {
    exits += vp.Exits;
    io += vp.IoExits + vp.StringIoExits + vp.MmioExits;
    signals += vp.SignalEventCalls + vp.EventsSignalled;
  }
  return { exits, io, signals };
}

export class VmmsWebPort implements WebConsolePort {
  private readonly listeners = new Set<(e: WebPortEvent) => void>();
  private readonly off: (() => void)[] = [];
  private watchers = 0;
  private sampler: NodeJS.Timeout | null = null;
  private readonly previous = new Map<string, Previous>();
  private readonly inFlight = new Set<string>();
  private readonly bench: BenchRunner;

  constructor(
    private readonly vmms: Vmms,
    private readonly cim: CimService,
    o: { benchTiny?: boolean } = {},
  ) {
    this.bench = new BenchRunner(this.benchFile, (status) => this.emit({ kind: 'bench', status }), o.benchTiny ?? false);
    const on = <T>(name: string, f: (e: T) => void) => {
      vmms.events.on(name, f);
      this.off.push(() => vmms.events.off(name, f));
    };
    for (const name of ['state-changed', 'defined', 'modified', 'integration-changed'])
      on<{ vmId: string }>(name, (e) => this.emit({ kind: 'vm', vmId: e.vmId }));
    on<{ vmId: string }>('removed', (e) => this.emit({ kind: 'removed', vmId: e.vmId }));
    on<{ vmId: string; data: Uint8Array }>('console', (e) => this.emit({ kind: 'console', vmId: e.vmId, data: e.data }));
    this.off.push(
      cim.provider.subscribe((e) => {
        if (e.target.className === 'Msvm_ConcreteJob') this.emit({ kind: 'job', job: this.webJob(e.target, e.kind === 'deletion') });
      }),
    );
  }

  dispose(): void {
    this.bench.close();
    for (const f of this.off) f();
    if (this.sampler) clearInterval(this.sampler);
    this.listeners.clear();
  }

  list(): WebVm[] {
    return this.vmms.list().map(webVm);
  }

  detail(id: string): WebVmDetail | null {
    const v = this.vmms.list().find((x) => x.id === id);
    if (!v) return null;
    const ic = v.devices.find((d) => d.kind === 'integration-services') as Record<string, unknown> | undefined;
    const services = (['heartbeat', 'shutdown', 'timeSync', 'kvp'] as const).map((name) => {
      const enabled = ic !== undefined && ic[name] !== false;
      const status = !enabled
        ? 'off'
        : v.processId === null
          ? 'not running'
          : name === 'heartbeat'
            ? (HEARTBEAT[v.heartbeatStatus ?? -1] ?? 'No Contact')
            : 'offered';
      return {
        name: { heartbeat: 'Heartbeat', shutdown: 'Shutdown', timeSync: 'Time Synchronization', kvp: 'Key-Value Pair Exchange' }[name],
        enabled,
        status,
      };
    });
    return {
      ...webVm(v),
      image: basename(v.imagePath),
      cmdline: v.cmdline,
      automaticStopAction: v.automaticStopAction,
      notes: v.notes,
      devices: v.devices,
      integrationServices: services,
      kvpGuestItems: v.kvpGuestItems,
      kvpIntrinsicItems: v.kvpIntrinsicItems,
    };
  }

  jobs(): WebJob[] {
    return this.cim.provider.jobs.list().map((j) => this.webJob(j, false));
  }

  private webJob(j: CimInstance, gone: boolean): WebJob {
    const id = String(j.get('InstanceID'));
    const affected = this.cim.provider.jobs.affectedElements().find((a) => {
      const job = a.get('AffectingElement') as CimObjectPath | null;
      return job?.keys.some((k) => k.name === 'InstanceID' && String(k.value) === id);
    });
    const target = affected?.get('AffectedElement') as CimObjectPath | undefined;
    const vmId = target?.keys.find((k) => k.name === 'Name')?.value;
    return {
      id,
      vmId: typeof vmId === 'string' ? vmId : null,
      description: String(j.get('Description') ?? ''),
      jobState: gone ? -1 : Number(j.get('JobState')),
      percentComplete: Number(j.get('PercentComplete') ?? 0),
      errorCode: Number(j.get('ErrorCode') ?? 0),
      errorDescription: (j.get('ErrorDescription') as string | null) ?? null,
    };
  }

  images(): string[] {
    const dir = packageGuestImagesDir();
    try {
      return dir
        ? readdirSync(dir)
            .filter((f) => f.endsWith('.wasm'))
            .sort()
        : [];
    } catch {
      return [];
    }
  }

  async act(id: string, action: WebAction): Promise<ActionResult> {
    const m = this.cim.manager;
    if (action === 'delete') {
      const r = this.vmms.removeVm(id);
      return { returnValue: r.returnValue, ...(r.error ? { error: r.error } : {}) };
    }
    if (action === 'shutdown') {
      const component = m.enumerateInstances('Msvm_ShutdownComponent').find((c) => c.get('SystemName') === id);
      if (!component) return { returnValue: 32770, error: 'the VM offers no shutdown integration service: turn it off instead' };
      const r = await m.invokeMethod(m.pathOf(component), 'InitiateShutdown', { Force: false, Reason: 'shut down from the web console' });
      return { returnValue: r.returnValue, ...(r.returnValue !== 0 ? { error: r.method.returnCodes?.[r.returnValue] ?? `refused (${r.returnValue})` } : {}) };
    }
    const requested = REQUESTED[action]!;
    const path = this.cim.provider.systemPath(id);
    const r = await m.invokeMethod(path, 'RequestStateChange', { RequestedState: requested });
    const job = r.out.Job as CimObjectPath | undefined;
    const jobId = job?.keys.find((k) => k.name === 'InstanceID')?.value;
    if (r.returnValue !== 4096) {
      const vm = this.vmms.get(id);
      return { returnValue: r.returnValue, error: `${r.method.returnCodes?.[r.returnValue] ?? 'refused'}: ${vm?.name ?? id} is ${vm?.state ?? 'gone'}` };
    }
    return { returnValue: 4096, ...(typeof jobId === 'string' ? { jobId } : {}) };
  }

  define(s: NewVmSettings): WebVm {
    const dir = packageGuestImagesDir();
    if (!dir || !this.images().includes(s.image)) throw new Error(`no guest image ${s.image}`);
    // Integration services on, as Hyper-V offers them to a new VM.
    return webVm(
      this.vmms.defineVm({
        name: s.name,
        memoryBytes: s.memoryBytes,
        vpCount: s.vpCount,
        imagePath: join(dir, s.image),
        cmdline: s.cmdline,
        devices: [{ kind: 'integration-services' }],
      }),
    );
  }

  modify(id: string, change: VmSettingsChange): ActionResult {
    const r = this.vmms.modifyVm(id, change);
    return { returnValue: r.returnValue, ...(r.error ? { error: r.error } : {}) };
  }

  consoleTail(id: string): Uint8Array {
    return Buffer.from(this.vmms.console(id), 'latin1');
  }

  consoleInput(id: string, bytes: Uint8Array): Promise<void> {
    return this.vmms.consoleInput(id, bytes);
  }

  private get benchFile(): string {
    return join(this.vmms.paths.root, 'bench', 'io.json');
  }

  benchStatus(): BenchStatus {
    return this.bench.status;
  }

  runBench(): boolean {
    return this.bench.start();
  }

  benchReport(): { json: unknown; html: string } | null {
    // The newest run kept in the data directory, else the reference run shipped with the package.
    const candidates = [this.benchFile, fileURLToPath(new URL('../../bench/results/reference.json', import.meta.url))];
    for (const file of candidates) {
      if (!existsSync(file)) continue;
      try {
        const json = JSON.parse(readFileSync(file, 'utf8')) as IoBenchReport;
        return { json, html: renderHtml(json) };
      } catch {
        /* a broken file: try the next */
      }
    }
    return null;
  }

  subscribe(listener: (e: WebPortEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  watchCounters(): () => void {
    this.watchers++;
    if (!this.sampler) {
      this.sampler = setInterval(() => this.sample(), SAMPLE_MS);
      this.sampler.unref();
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.watchers === 0 && this.sampler) {
        clearInterval(this.sampler);
        this.sampler = null;
        this.previous.clear();
      }
    };
  }

  private sample(): void {
    const cores = Math.max(1, cpus().length);
    for (const v of this.vmms.list()) {
      if (v.processId === null || v.enabledState !== 2 || this.inFlight.has(v.id)) continue;
      const pid = v.processId;
      this.inFlight.add(v.id);
      this.vmms
        .counters(v.id)
        .then(
          (c) => {
            const now = Date.now();
            const t = totals(c);
            const ticks = cpuTicks(pid);
            const p = this.previous.get(v.id);
            this.previous.set(v.id, { at: now, ticks, ...t, pid });
            if (!p || p.pid !== pid) return;
            const seconds = Math.max(0.001, (now - p.at) / 1000);
            const cpu = ticks !== null && p.ticks !== null ? ((ticks - p.ticks) / TICKS_PER_SECOND / seconds / cores) * 100 : 0;
            const sample: CounterSample = {
              at: now,
              cpuPercent: Math.max(0, Math.min(100, cpu)),
              exitsPerSecond: Math.max(0, (t.exits - p.exits) / seconds),
              ioPerSecond: Math.max(0, (t.io - p.io) / seconds),
              signalsPerSecond: Math.max(0, (t.signals - p.signals) / seconds),
            };
            this.emit({ kind: 'counters', vmId: v.id, sample });
          },
          () => {
            /* the worker went away: its state change says so */
          },
        )
        .finally(() => this.inFlight.delete(v.id));
    }
  }

  private emit(e: WebPortEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        /* one page's failure must not stop the others */
      }
    }
  }
}

export interface WebServiceOptions {
  /** undefined for 5990 (skipped with a warning when taken), 0 for any free port, null for none. */
  webPort?: number | null;
  /** Default 127.0.0.1. */
  webHost?: string;
  /** Serve plain HTTP (loopback only) instead of HTTPS. */
  plainHttp?: boolean;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Console bytes queued per browser before the oldest are dropped (client-queue.ts). */
  consoleQueueBytes?: number;
  /** The console's benchmark button runs the benchmark's smallest run (tests). */
  benchTiny?: boolean;
  warn?: (message: string) => void;
}

export interface WebService {
  readonly url: string | null;
  readonly server: WebConsoleServer | null;
  close(): Promise<void>;
}

export async function startWebService(vmms: Vmms, cim: CimService, o: WebServiceOptions): Promise<WebService> {
  if (o.webPort === null) return { url: null, server: null, close: async () => {} };
  const warn = o.warn ?? (() => {});
  const host = o.webHost ?? '127.0.0.1';
  const port = new VmmsWebPort(vmms, cim, { benchTiny: o.benchTiny ?? false });
  let server: WebConsoleServer;
  let tls: ReturnType<typeof loadTlsIdentity> | undefined;
  try {
    tls = o.plainHttp
      ? undefined
      : loadTlsIdentity(vmms.paths.root, { ...(o.tlsCertFile ? { certFile: o.tlsCertFile } : {}), ...(o.tlsKeyFile ? { keyFile: o.tlsKeyFile } : {}) });
    server = new WebConsoleServer({
      port,
      authenticator: cim.authenticator,
      host,
      listenPort: o.webPort ?? DEFAULT_WEB_PORT,
      ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
      ...(o.consoleQueueBytes ? { consoleQueueBytes: o.consoleQueueBytes } : {}),
      onRefused: (client, reason) => warn(`web console request from ${client} refused: ${reason}`),
    });
  } catch (e) {
    port.dispose();
    // The console the operator asked for must come up; the default one may be skipped (an unbuilt app).
    if (o.webPort !== undefined) throw e;
    warn(`web console not served: ${(e as Error).message}`);
    return { url: null, server: null, close: async () => {} };
  }
  let address: Awaited<ReturnType<WebConsoleServer['listen']>>;
  try {
    address = await server.listen();
  } catch (e) {
    port.dispose();
    await server.close();
    if (o.webPort !== undefined || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    warn(`web console not served: the default port is in use (${(e as Error).message})`);
    return { url: null, server: null, close: async () => {} };
  }
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `${tls ? 'https' : 'http'}://${shownHost}:${address.port}/`,
    server,
    close: async () => {
      await server.close();
      port.dispose();
    },
  };
}
