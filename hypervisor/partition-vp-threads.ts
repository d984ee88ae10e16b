/**
 * A partition's VP threads: each VP's worker thread started (or prestarted, waiting for its
 * state), its exit recorded and announced on the partition ('vp-exit', 'fault'), its events passed
 * on, idleness awaited, and the wait for one VP's exit, rewind or readiness.
 */
import type { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { freshBundlePath, REPO_ROOT } from './bundle-freshness.ts';
import { HvError } from './hv-error.ts';
import type { PartitionState } from './partition-config.ts';
import type { VpEntry, VpExitReason } from './vp/vp-events.ts';
import type { VpStartMessage, VpThreadData, VpThreadMessage } from './vp/vp-thread.ts';
import type { VpCapture } from './vp/vp-capture.ts';

export interface VpExitEvent {
  vp: number;
  exit: VpExitReason;
}

/** What every VP thread of the partition is given besides its own index, entry and state. */
export type VpThreadCommon = Omit<VpThreadData, 'vp' | 'entry' | 'rewind' | 'prestart'>;

const VP_WORKER_TSX = new URL('./vp/vp-worker.mjs', import.meta.url);
const VP_BUNDLE = join(REPO_ROOT, 'build', 'host', 'vp-thread.mjs');

/** The VP thread's code: the prebuilt bundle when fresh (bundle-freshness.ts), else the sources through tsx. */
function vpWorkerUrl(): URL {
  const bundle = freshBundlePath(VP_BUNDLE);
  return bundle ? pathToFileURL(bundle) : VP_WORKER_TSX;
}

export class PartitionVpThreads {
  private readonly workers = new Map<number, Worker>();
  /** Threads prestart started that wait for their state (also in `workers`). */
  private readonly prestarted = new Map<number, Worker>();
  private readonly exits = new Map<number, VpExitReason>();
  /** Threads started and not exited. */
  running = 0;
  private idleResolvers: (() => void)[] = [];
  private workerUrl: URL | undefined;
  /** VP threads started so far (prestarted ones included). */
  started = 0;

  constructor(
    private readonly partition: EventEmitter & { readonly name: string; readonly state: PartitionState },
    private readonly common: () => VpThreadCommon,
  ) {}

  /** Starts VP `vp` at `entry` (rewinding to `rewind`), on its prestarted thread when it has one. */
  start(vp: number, entry: VpEntry, rewind?: VpCapture): void {
    const ready = this.prestarted.get(vp);
    if (ready) {
      this.prestarted.delete(vp);
      this.exits.delete(vp);
      ready.postMessage({ entry, ...(rewind ? { rewind } : {}) } satisfies VpStartMessage);
      return;
    }
    this.spawn(vp, entry, rewind, false);
  }

  /** A thread for each of `vpCount` VPs that instantiates the image and waits; resolves when every one is waiting. */
  async prestart(vpCount: number, timeoutMs: number): Promise<void> {
    await Promise.all(
      Array.from({ length: vpCount }, (_, vp) =>
        this.waitFor(vp, 'prepared', timeoutMs, () => {
          this.prestarted.set(vp, this.spawn(vp, { kind: 'ap', rip: 0 }, undefined, true));
        }).then((outcome) => {
          if (outcome !== 'prepared') throw new HvError('HV_ERR_CONTINUE', `VP ${vp}'s thread did not start: it ${describeExit(outcome)}`);
        }),
      ),
    );
  }

  private spawn(vp: number, entry: VpEntry, rewind: VpCapture | undefined, prestart: boolean): Worker {
    const data: VpThreadData = {
      ...this.common(),
      vp,
      entry,
      ...(rewind ? { rewind } : {}),
      ...(prestart ? { prestart } : {}),
    };
    this.workerUrl ??= vpWorkerUrl();
    const worker = new Worker(this.workerUrl, { workerData: data, name: `${this.partition.name}/vp${vp}` });
    this.started++;
    this.workers.set(vp, worker);
    this.exits.delete(vp);
    this.running++;
    let exited = false;
    const finish = (exit: VpExitReason) => {
      if (exited) return;
      exited = true;
      this.exits.set(vp, exit);
      this.partition.emit('vp-exit', { vp, exit } satisfies VpExitEvent);
      if (exit.reason === 'fault') this.partition.emit('fault', { vp, kind: exit.kind, message: exit.message });
      if (--this.running === 0) for (const r of this.idleResolvers.splice(0)) r();
    };
    worker.on('message', (m: VpThreadMessage) => {
      if (m.kind === 'exit') finish(m.exit);
      else if (m.event.type === 'start-vp' && this.partition.state === 'active') this.start(m.event.target, { kind: 'ap', rip: m.event.rip });
      else this.partition.emit(m.event.type, m.event);
    });
    worker.on('error', (e) => finish({ reason: 'fault', kind: 'host', message: `VP thread failed: ${e.message}` }));
    worker.on('exit', () => {
      // A captured VP may already run again on a new thread under the same index.
      if (this.workers.get(vp) === worker) this.workers.delete(vp);
      finish({ reason: 'stopped' });
    });
    return worker;
  }

  /** Ends prestarted threads no capture needed (a VP never started or exited): as if never started. */
  dropPrestarted(): void {
    for (const [vp, w] of this.prestarted) {
      w.removeAllListeners();
      w.on('error', () => {});
      if (this.workers.get(vp) === w) this.workers.delete(vp);
      if (--this.running === 0) for (const r of this.idleResolvers.splice(0)) r();
      void w.terminate();
    }
    this.prestarted.clear();
  }

  /** Resolves when every started VP has exited. */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idleResolvers.push(r));
  }

  /** VP `vp` has a thread (running, parked, or prestarted). */
  has(vp: number): boolean {
    return this.workers.has(vp);
  }

  exit(vp: number): VpExitReason | undefined {
    return this.exits.get(vp);
  }

  terminateAll(): Promise<unknown> {
    return Promise.all([...this.workers.values()].map((w) => w.terminate()));
  }

  /** Runs `act`, then waits for VP `vp` to exit (what = 'vp-exit') or to report it rewound (else its exit). */
  waitFor(vp: number, what: 'vp-exit', timeoutMs: number, act: () => void): Promise<VpExitReason>;
  waitFor<W extends 'rewound' | 'prepared'>(vp: number, what: W, timeoutMs: number, act: () => void): Promise<W | VpExitReason>;
  waitFor(vp: number, what: 'vp-exit' | 'rewound' | 'prepared', timeoutMs: number, act: () => void): Promise<'rewound' | 'prepared' | VpExitReason> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.partition.off('vp-exit', onExit);
        if (what !== 'vp-exit') this.partition.off(what, onRewound);
      };
      const onExit = (e: VpExitEvent) => {
        if (e.vp === vp) {
          done();
          resolve(e.exit);
        }
      };
      const onRewound = (e: { vp: number }) => {
        if (e.vp === vp) {
          done();
          resolve(what as 'rewound' | 'prepared');
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new HvError(
            'HV_ERR_CAPTURE',
            `VP ${vp} did not ${what === 'rewound' ? 'continue' : what === 'prepared' ? 'start its thread' : 'capture its state'} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.partition.on('vp-exit', onExit);
      if (what !== 'vp-exit') this.partition.on(what, onRewound);
      try {
        act();
      } catch (e) {
        done();
        reject(e);
      }
    });
  }
}

export function describeExit(e: VpExitReason): string {
  switch (e.reason) {
    case 'returned':
      return `returned ${e.value}`;
    case 'fault':
      return `faulted (${e.kind}): ${e.message}`;
    case 'captured':
      return 'was captured';
    default:
      return e.reason;
  }
}
