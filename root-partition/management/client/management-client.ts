/**
 * The typed management client: root/virtualization/v2 over the VMMS socket (the cim.* requests
 * of root-partition/vmms/cim-socket.ts). Queries, instance reads and method calls answer
 * CimInstance and CimObjectPath values as the core has them; `watch` opens a subscription whose
 * events the service pushes on the connection as they happen.
 *
 *   const c = await ManagementClient.connect('/var/lib/tsvisor/vmms.sock');
 *   const vms = await c.query("SELECT * FROM Msvm_ComputerSystem WHERE Description = 'Microsoft Virtual Machine'");
 *   const r = await c.invoke(c.systemPath(vms[0].get('Name')), 'RequestStateChange', { RequestedState: 2 });
 *   const job = await c.waitForJob(r);
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { CimStatus, type CimStatusName } from '../cim/errors.ts';
import type { CimInstance } from '../cim/instance.ts';
import type { CimObjectPath } from '../cim/object-path.ts';
import type { CimInstanceEventKind } from '../cim/provider.ts';
import type { CimValue } from '../cim/types.ts';
import { decodeInstance, decodePath, decodeParam, encodeParam, encodePath, type JsonValue, type WireEvent, type WireInstance, type WirePath } from './wire.ts';

/** A failure the service reported: the CIM status (DSP0200) when there is one, and why. */
export class ManagementError extends Error {
  constructor(
    readonly code: string,
    readonly cimStatus: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'ManagementError';
  }
}

export interface MethodOutcome {
  readonly returnValue: number;
  /** The return code's meaning from the method's ValueMap ("Invalid state for this operation"). */
  readonly description: string | null;
  readonly out: Readonly<Record<string, CimValue>>;
}

export interface ManagementEvent {
  readonly kind: CimInstanceEventKind;
  readonly eventClass: string;
  readonly time: Date;
  readonly target: CimInstance;
  readonly previous?: CimInstance;
}

export interface Watch {
  readonly subscription: number;
  stop(): Promise<void>;
}

const KIND: Record<string, CimInstanceEventKind> = {
  __InstanceCreationEvent: 'creation',
  __InstanceModificationEvent: 'modification',
  __InstanceDeletionEvent: 'deletion',
};

/** JobState values that end a job (Msvm_ConcreteJob, Microsoft Docs: 7 Completed … 10 Exception). */
export const FINISHED_JOB_STATES = new Set([7, 8, 9, 10]);

export class ManagementClient {
  private nextId = 1;
  private buf = '';
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly watchers = new Map<number, (e: ManagementEvent) => void>();
  /** 'close' when the service goes away. */
  readonly events = new EventEmitter();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const w of this.waiting.values())
        w.reject(new ManagementError('CIM_ERR_FAILED', CimStatus.CIM_ERR_FAILED, 'the management service closed the connection'));
      this.waiting.clear();
      this.events.emit('close');
    });
  }

  static connect(socketPath: string): Promise<ManagementClient> {
    return new Promise((resolve, reject) => {
      const s = connect(socketPath);
      s.once('connect', () => resolve(new ManagementClient(s)));
      s.once('error', (e) =>
        reject(new ManagementError('VMMS_ERR_UNREACHABLE', null, `no management service at ${socketPath} (${e.message}); start one with \`tsvisor serve\``)),
      );
    });
  }

  close(): void {
    this.socket.end();
  }

  /** Instances of a class and its subclasses. */
  async enumerate(className: string): Promise<CimInstance[]> {
    const rows = await this.call<{ instance: WireInstance }[]>('cim.enumerate', { className });
    return rows.map((r) => decodeInstance(r.instance));
  }

  async get(path: CimObjectPath): Promise<CimInstance> {
    return decodeInstance(await this.call<WireInstance>('cim.get', { path: encodePath(path) as unknown as JsonValue }));
  }

  /** A WQL SELECT, ASSOCIATORS OF or REFERENCES OF; instances with their paths. */
  async queryRows(wql: string): Promise<{ path: CimObjectPath; instance: CimInstance }[]> {
    const r = await this.call<{ rows?: { path: WirePath; instance: WireInstance }[]; classes?: string[] }>('cim.query', { wql });
    if (!r.rows)
      throw new ManagementError(
        'CIM_ERR_NOT_SUPPORTED',
        CimStatus.CIM_ERR_NOT_SUPPORTED,
        'the query answered class definitions (ClassDefsOnly); ask for instances',
      );
    return r.rows.map((row) => ({ path: decodePath(row.path), instance: decodeInstance(row.instance) }));
  }

  async query(wql: string): Promise<CimInstance[]> {
    return (await this.queryRows(wql)).map((r) => r.instance);
  }

  /** An extrinsic method; parameters by name (paths, CimInstance for embedded instances, bigint or number). */
  async invoke(path: CimObjectPath, method: string, params: Readonly<Record<string, unknown>> = {}): Promise<MethodOutcome> {
    const wire = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, encodeParam(v)]));
    const r = await this.call<{ returnValue: number; description: string | null; out: Record<string, JsonValue> }>('cim.invoke', {
      path: encodePath(path) as unknown as JsonValue,
      method,
      params: wire,
    });
    return {
      returnValue: r.returnValue,
      description: r.description,
      out: Object.fromEntries(Object.entries(r.out).map(([k, v]) => [k, decodeParam(v) as CimValue])),
    };
  }

  /** Subscribe an event query (`SELECT * FROM __InstanceModificationEvent WITHIN 1 WHERE …`); events are pushed. */
  async watch(wql: string, onEvent: (e: ManagementEvent) => void): Promise<Watch> {
    const { subscription } = await this.call<{ subscription: number }>('cim.watch', { wql });
    this.watchers.set(subscription, onEvent);
    return {
      subscription,
      stop: async () => {
        this.watchers.delete(subscription);
        await this.call('cim.unwatch', { subscription });
      },
    };
  }

  /**
   * The job a 4096 answer started, followed to its end through pushed modification events (no
   * polling); the job as it ended. `onProgress` sees each change.
   */
  async waitForJob(outcome: MethodOutcome, onProgress?: (job: CimInstance) => void): Promise<CimInstance | null> {
    const ref = outcome.out.Job as CimObjectPath | null | undefined;
    if (outcome.returnValue !== 4096 || !ref) return null;
    const id = String(ref.keys.find((k) => k.name === 'InstanceID')?.value ?? '');
    let done!: (job: CimInstance) => void;
    const finished = new Promise<CimInstance>((resolve) => {
      done = resolve;
    });
    const seen = (job: CimInstance) => {
      onProgress?.(job);
      if (FINISHED_JOB_STATES.has(Number(job.get('JobState')))) done(job);
    };
    const w = await this.watch(
      `SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_ConcreteJob' AND TargetInstance.InstanceID = '${id.replace(/'/g, "\\'")}'`,
      (e) => seen(e.target),
    );
    try {
      // The job may have ended before the subscription began: read it once after subscribing.
      seen(await this.get(ref));
      return await finished;
    } finally {
      await w.stop().catch(() => {});
    }
  }

  /** The Msvm_ComputerSystem path of a VM id. */
  systemPath(vmId: string): CimObjectPath {
    return {
      className: 'Msvm_ComputerSystem',
      keys: [
        { name: 'CreationClassName', value: 'Msvm_ComputerSystem' },
        { name: 'Name', value: vmId },
      ],
    };
  }

  private call<T>(method: string, params: Record<string, JsonValue>): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  private receive(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let m: { id?: number; result?: unknown; error?: { code: string; message: string }; event?: WireEvent & { subscription: number } };
      try {
        m = JSON.parse(line);
      } catch {
        continue;
      }
      if (m.event) {
        const e = m.event;
        this.watchers.get(e.subscription)?.({
          kind: KIND[e.eventClass] ?? 'modification',
          eventClass: e.eventClass,
          time: new Date(e.time),
          target: decodeInstance(e.target),
          ...(e.previous ? { previous: decodeInstance(e.previous) } : {}),
        });
        continue;
      }
      const w = this.waiting.get(m.id ?? -1);
      if (!w) continue;
      this.waiting.delete(m.id!);
      if (m.error) {
        const status = (CimStatus as Record<string, number>)[m.error.code] ?? null;
        w.reject(new ManagementError(m.error.code, status, m.error.message));
      } else w.resolve(m.result);
    }
  }
}

export type { CimStatusName };
