/**
 * One VM inside its worker process: the child partition (hypervisor core), the emulated platform
 * serving its intercepts on this process's event loop, and the operations VMMS asks for —
 * pause, resume, save, turn off, reset. It knows nothing of sockets; worker-main.ts wires it to
 * the control server.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import type { VpExitReason } from '../../hypervisor/vp/vp-runtime.ts';
import type { WorkerCounters } from '../ipc/bulk-codec.ts';
import type { Logger } from '../vmms/log.ts';
import { EmulatedPlatform } from './emulated-platform.ts';
import { capturePartition, restorePartition } from './partition-snapshot.ts';
import { configurationHash, readSavedState, writeSavedState, type SaveSummary } from './saved-state-file.ts';

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
}

export type WorkerState = 'booting' | 'running' | 'paused' | 'stopped';

export interface VpExitRecord { vp: number; reason: string; detail?: string }

/**
 * Events: 'console' (bytes), 'state' (WorkerState), 'guest-fault' (message),
 * 'guest-stopped' (VpExitRecord[]: every VP left on its own: the guest is done).
 */
export class VmWorker extends EventEmitter {
  state: WorkerState = 'booting';
  readonly startedAt = Date.now();
  private readonly hv = new Hypervisor();
  private partition: Partition | null = null;
  private platform: EmulatedPlatform | null = null;
  private serving: { ac: AbortController; done: Promise<void> } | null = null;
  private image!: Uint8Array;
  private consoleBytes = 0;
  /** Set while the worker itself stops the VPs, so their exits are not "the guest stopped". */
  private stopping = false;

  constructor(readonly launch: WorkerLaunch, private readonly log: Logger) {
    super();
  }

  configurationHash(): Buffer {
    return configurationHash({ vmId: this.launch.vmId, memoryBytes: this.launch.memoryBytes, vpCount: this.launch.vpCount, image: this.image });
  }

  /** Creates the partition and starts the guest: at boot, or from the saved state. */
  async boot(): Promise<void> {
    this.image = readFileSync(this.launch.imagePath);
    const p = this.createPartition();
    if (this.launch.restoreFrom) {
      const saved = readSavedState(this.launch.restoreFrom, this.configurationHash(), p.mem.u8);
      this.platform!.restoreState(saved.devices);
      restorePartition(p, saved);
      this.log.info(`restored from ${this.launch.restoreFrom} at reference time ${saved.referenceTicks}`);
      p.start('resume');
    } else {
      p.start('boot');
    }
    this.watchIdle(p);
    this.setState('running');
  }

  private createPartition(): Partition {
    const p = this.hv.createPartition({ name: this.launch.name, memoryBytes: this.launch.memoryBytes, vpCount: this.launch.vpCount });
    p.initialize();
    // Loaded on restore too: it compiles the module without its data segments; memory is then
    // overwritten from the saved state.
    p.loadImage(this.image, this.launch.cmdline);
    const platform = new EmulatedPlatform(p, {
      console: (bytes) => {
        this.consoleBytes += bytes.length;
        this.emit('console', Uint8Array.from(bytes));
      },
    });
    p.inbox.handler = platform;
    p.inbox.onHandlerError = (e, vp) => this.log.error(`device model failed on an intercept from VP ${vp}: ${(e as Error).message ?? e}`);
    p.on('fault', (f: { vp: number; kind: string; message: string }) => {
      this.log.warn(`guest fault on VP ${f.vp} (${f.kind}): ${f.message}`);
      this.emit('guest-fault', `VP ${f.vp} (${f.kind}): ${f.message}`);
    });
    const ac = new AbortController();
    this.serving = { ac, done: p.inbox.serveAsync(ac.signal) };
    this.partition = p;
    this.platform = platform;
    return p;
  }

  /** Call after start: whenIdle resolves at once while no VP has started. */
  private watchIdle(p: Partition): void {
    void p.whenIdle().then(() => this.onIdle(p));
  }

  private onIdle(p: Partition): void {
    // Every started VP has left without being asked: the guest returned, halted for good or faulted.
    if (this.stopping || p !== this.partition || p.state === 'deleted') return;
    const exits: VpExitRecord[] = [];
    for (let vp = 0; vp < p.vpCount; vp++) {
      const e = p.vpExit(vp);
      if (e) exits.push(describe(vp, e));
    }
    this.log.info(`guest stopped: ${exits.map((e) => `VP ${e.vp} ${e.reason}${e.detail ? ` ${e.detail}` : ''}`).join('; ')}`);
    this.setState('stopped');
    this.emit('guest-stopped', exits);
  }

  private setState(s: WorkerState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private get live(): Partition {
    if (!this.partition || this.state === 'stopped' || this.state === 'booting') throw new Error(`the VM is ${this.state}`);
    return this.partition;
  }

  async pause(): Promise<void> {
    const p = this.live;
    if (!(await p.pause())) throw new Error('the VPs did not reach an exit boundary in time');
    this.setState('paused');
  }

  resume(): void {
    this.live.resume();
    this.setState('running');
  }

  /** Parks the VPs, writes the saved-state file, and stops the partition (the VM is then Saved). */
  async save(path: string): Promise<SaveSummary> {
    const p = this.live;
    const wasRunning = this.state === 'running';
    if (wasRunning) await this.pause();
    let summary: SaveSummary;
    try {
      const snap = capturePartition(p);
      summary = writeSavedState(path, this.configurationHash(), { ...snap, devices: this.platform!.saveState(), memory: p.mem.u8 });
    } catch (e) {
      if (wasRunning) this.resume();
      throw e;
    }
    this.log.info(`saved to ${path}: ${summary.pagesWritten} non-zero pages in ${summary.pageRuns} runs, device records ${this.platform!.saveState().map((d) => d.name).join(', ')}, ${summary.bytes} bytes`);
    await this.turnOff();
    return summary;
  }

  async turnOff(): Promise<void> {
    this.stopping = true;
    const p = this.partition;
    if (p) {
      await p.stop();
      this.serving?.ac.abort();
      await this.serving?.done;
      await this.hv.deletePartition(p.id);
    }
    this.partition = null;
    this.setState('stopped');
  }

  /** A hard reset: new partition, devices at power-on state, the image booted again. */
  async reset(): Promise<void> {
    const old = this.live;
    this.stopping = true;
    await old.stop();
    this.serving?.ac.abort();
    await this.serving?.done;
    await this.hv.deletePartition(old.id);
    this.stopping = false;
    const p = this.createPartition();
    p.start('boot');
    this.watchIdle(p);
    this.setState('running');
  }

  counters(): WorkerCounters {
    const p = this.partition;
    const vps = p ? Array.from({ length: p.vpCount }, (_, vp) => p.counters(vp)) : [];
    return { vps, interceptsServed: p?.inbox.served ?? 0, consoleBytes: this.consoleBytes };
  }
}

function describe(vp: number, e: VpExitReason): VpExitRecord {
  switch (e.reason) {
    case 'returned': return { vp, reason: 'returned', detail: String(e.value) };
    case 'fault': return { vp, reason: 'fault', detail: `${e.kind}: ${e.message}` };
    default: return { vp, reason: e.reason };
  }
}
