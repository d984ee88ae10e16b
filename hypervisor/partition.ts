/**
 * A child partition as the root partition holds it: guest memory, the hypervisor's control
 * block, the VP threads, and the root's side of ports, intercepts and interrupts. Life cycle as
 * in the TLFS root usage pattern: Created → Initialized (early properties frozen) → Active (VPs
 * running) → Finalized (VPs stopped, ports gone) → Deleted.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as P from '../abi/hv-cpuid.ts';
import { BOOT_FLAG_ENLIGHTENED, BOOT_INFO_GPA, IMAGE_BASE, PAGE_SIZE } from '../abi/platform.ts';
import { HvStatus } from '../abi/hv-status.ts';
import { defaultWaitPolicy, type WaitPolicy } from './adaptive-wait.ts';
import { writeBootInfo } from './boot-info.ts';
import { freshBundlePath, REPO_ROOT } from './bundle-freshness.ts';
import { GuestMemory } from './guest-memory.ts';
import { HvError } from './hv-error.ts';
import { loadGuestImage, parseGuestImage, type GuestImage } from './image-loader.ts';
import { assertChildInterrupt, type ChildPartitionAccess, type PartitionShare } from './partition-handle.ts';
import {
  Owner,
  P_CAPTURE_VP,
  P_GUEST_OS_ID,
  P_PAUSED_VPS,
  P_PRIV_HI,
  P_REF_FROZEN_AT,
  P_PRIV_LO,
  P_REQUESTED_STATE,
  PartitionControl,
  RequestedState,
  VP_RUN_STATE,
  VP_WAKE,
  VpRunState,
  vpBase,
  type VpCounterName,
} from './partition-control.ts';
import { PortTable } from './ports.ts';
import { ReferenceClock } from './reference-time.ts';
import { RootInbox } from './root-inbox.ts';
import type { RewriteOptions } from './rewrite/rewrite-abi.ts';
import { CpuBudgetBlock } from './scheduler/cpu-budget-block.ts';
import type { VpEntry, VpExitReason } from './vp/vp-events.ts';
import type { VpStartMessage, VpThreadData, VpThreadMessage } from './vp/vp-thread.ts';
import type { VpCapture, VpExecution } from './vp/vp-capture.ts';

/** What a child partition gets by default: enough for VMBus and the SynIC (TLFS HV_PARTITION_PRIVILEGE_MASK). */
export const DEFAULT_CHILD_PRIVILEGES = {
  lo:
    P.HV_ACCESS_VP_RUNTIME_REG |
    P.HV_ACCESS_PARTITION_REFERENCE_COUNTER |
    P.HV_ACCESS_SYNIC_REGS |
    P.HV_ACCESS_SYNTHETIC_TIMER_REGS |
    P.HV_ACCESS_HYPERCALL_MSRS |
    P.HV_ACCESS_VP_INDEX |
    P.HV_ACCESS_RESET_REG,
  hi: P.HV_ACCESS_PARTITION_ID | P.HV_POST_MESSAGES | P.HV_SIGNAL_EVENTS | P.HV_START_VIRTUAL_PROCESSOR,
};

/** HV_PARTITION_PROPERTY_CODE values this hypervisor implements (TLFS datatypes). */
export const PartitionProperty = {
  PrivilegeFlags: 0x00010000,
  TimeFreeze: 0x00030003,
  ReferenceTime: 0x00030005,
  GuestOsId: 0x00070000,
} as const;

/** What Partition.pause achieved: every VP parked, or the VPs that did not (the pause undone). */
export interface PauseOutcome {
  paused: boolean;
  notParked: number[];
}

export type PartitionState = 'created' | 'initialized' | 'active' | 'finalized' | 'deleted';

export interface PartitionConfig {
  id: number;
  name?: string;
  memoryBytes: number;
  vpCount: number;
  privileges?: { lo: number; hi: number };
  /** Spin budget of VP and root waits (adaptive wait); 0 sleeps at once. */
  waitPolicy?: WaitPolicy;
  /** How the image is prepared at load; default preemption points (TSVISOR_REWRITE=0: unmodified). */
  rewrite?: RewriteOptions;
  /** Fuel between two preemption points (hypervisor/rewrite/preempt-budget.ts). */
  preemptBudget?: number;
}

export interface VpExitEvent {
  vp: number;
  exit: VpExitReason;
}

const VP_WORKER_TSX = new URL('./vp/vp-worker.mjs', import.meta.url);
const VP_BUNDLE = join(REPO_ROOT, 'build', 'host', 'vp-thread.mjs');

/** The VP thread's code: the prebuilt bundle when fresh (bundle-freshness.ts), else the sources through tsx. */
function vpWorkerUrl(): URL {
  const bundle = freshBundlePath(VP_BUNDLE);
  return bundle ? pathToFileURL(bundle) : VP_WORKER_TSX;
}

export class Partition extends EventEmitter implements ChildPartitionAccess {
  readonly id: number;
  readonly name: string;
  readonly vpCount: number;
  readonly ctl: PartitionControl;
  readonly mem: GuestMemory;
  readonly ports: PortTable;
  readonly inbox: RootInbox;
  /** Per-VP CPU budgets the host's scheduler sets (unlimited until it does). */
  readonly cpu: CpuBudgetBlock;
  readonly waitPolicy: WaitPolicy;
  state: PartitionState = 'created';
  private image: GuestImage | null = null;
  private readonly workers = new Map<number, Worker>();
  /** Threads prestartVps started that wait for their state (also in `workers`). */
  private readonly prestarted = new Map<number, Worker>();
  private readonly exits = new Map<number, VpExitReason>();
  private running = 0;
  private idleResolvers: (() => void)[] = [];
  private workerUrl: URL | undefined;
  private readonly rewrite: RewriteOptions | undefined;
  private readonly preemptBudget: number | undefined;
  /** VP threads stop() had to terminate: VPs stuck in a host call, or images run without preemption points. */
  threadsTerminated = 0;
  /** VP threads started so far (prestarted ones included). */
  threadsStarted = 0;

  constructor(config: PartitionConfig) {
    super();
    this.id = config.id;
    this.name = config.name ?? `partition-${config.id}`;
    this.vpCount = config.vpCount;
    this.waitPolicy = config.waitPolicy ?? defaultWaitPolicy();
    this.rewrite = config.rewrite;
    this.preemptBudget = config.preemptBudget;
    this.ctl = PartitionControl.create(config.vpCount, config.id);
    this.mem = new GuestMemory(config.memoryBytes);
    this.ports = new PortTable(this.ctl, this.mem);
    this.inbox = new RootInbox(this.ctl, this.mem, this.ports);
    this.cpu = new CpuBudgetBlock(config.vpCount);
    const priv = config.privileges ?? DEFAULT_CHILD_PRIVILEGES;
    // CreatePartitions is the root's alone: a child never holds it, whatever it is configured with.
    this.ctl.i32[P_PRIV_LO >> 2] = priv.lo;
    this.ctl.i32[P_PRIV_HI >> 2] = priv.hi & ~P.HV_CREATE_PARTITIONS;
  }

  get privileges(): { lo: number; hi: number } {
    return { lo: this.ctl.i32[P_PRIV_LO >> 2] >>> 0, hi: this.ctl.i32[P_PRIV_HI >> 2] >>> 0 };
  }

  /** PrivilegeFlags is an early property: settable only before InitializePartition. */
  setPrivileges(lo: number, hi: number): HvStatus {
    if (this.state !== 'created') return HvStatus.InvalidPartitionState;
    this.ctl.i32[P_PRIV_LO >> 2] = lo;
    this.ctl.i32[P_PRIV_HI >> 2] = hi & ~P.HV_CREATE_PARTITIONS;
    return HvStatus.Success;
  }

  /** HvCallGetPartitionProperty (TLFS per-call page). */
  getProperty(code: number): { status: HvStatus; value: bigint } {
    switch (code) {
      case PartitionProperty.PrivilegeFlags: {
        const { lo, hi } = this.privileges;
        return { status: HvStatus.Success, value: (BigInt(hi) << 32n) | BigInt(lo) };
      }
      case PartitionProperty.GuestOsId:
        return { status: HvStatus.Success, value: BigInt.asUintN(64, this.ctl.i64[P_GUEST_OS_ID >> 3]) };
      case PartitionProperty.ReferenceTime:
        if (this.state === 'created') return { status: HvStatus.InvalidPartitionState, value: 0n };
        return { status: HvStatus.Success, value: BigInt(new ReferenceClock(this.ctl).now()) };
      case PartitionProperty.TimeFreeze:
        return { status: HvStatus.Success, value: Atomics.load(this.ctl.i64, P_REF_FROZEN_AT >> 3) >= 0n ? 1n : 0n };
      default:
        return { status: HvStatus.UnknownProperty, value: 0n };
    }
  }

  /** HvCallSetPartitionProperty. PrivilegeFlags is early: settable only before initialization. */
  setProperty(code: number, value: bigint): HvStatus {
    switch (code) {
      case PartitionProperty.PrivilegeFlags:
        return this.setPrivileges(Number(value & 0xffffffffn) | 0, Number((value >> 32n) & 0xffffffffn) | 0);
      case PartitionProperty.TimeFreeze:
        if (this.state === 'created') return HvStatus.InvalidPartitionState;
        if (value === 1n) ReferenceClock.freeze(this.ctl);
        else if (value === 0n) ReferenceClock.thaw(this.ctl);
        else return HvStatus.PropertyValueOutOfRange;
        return HvStatus.Success;
      case PartitionProperty.GuestOsId:
      case PartitionProperty.ReferenceTime:
        return HvStatus.InvalidParameter; // read-only here: the guest owns its OS id, time only moves forward
      default:
        return HvStatus.UnknownProperty;
    }
  }

  initialize(): HvStatus {
    if (this.state !== 'created') return HvStatus.InvalidPartitionState;
    ReferenceClock.start(this.ctl);
    this.state = 'initialized';
    return HvStatus.Success;
  }

  /** Loads a guest image into memory and writes the boot-information block. */
  loadImage(bytes: Uint8Array, cmdline = ''): GuestImage {
    if (this.state !== 'initialized') throw new HvError('HV_ERR_PARTITION_STATE', `cannot load an image into a partition in state ${this.state}`);
    // Layout first: an image that cannot run here is refused before anything rewrites it.
    const image = parseGuestImage(bytes);
    const ramPages = this.mem.size / 65536;
    if (image.minPages > ramPages) {
      throw new HvError('HV_ERR_IMAGE_TOO_BIG', `the image needs ${image.minPages * 64} KiB of memory; the partition has ${this.mem.size / 1024} KiB`);
    }
    if (image.maxPages !== null && image.maxPages < ramPages) {
      throw new HvError(
        'HV_ERR_IMAGE_MAX',
        `the image accepts at most ${image.maxPages * 64} KiB of memory (built with a smaller --maximumMemory); the partition has ${this.mem.size / 1024} KiB`,
      );
    }
    for (const s of image.segments) {
      if (s.offset < BOOT_INFO_GPA + PAGE_SIZE && s.offset + s.bytes.length > BOOT_INFO_GPA) {
        throw new HvError(
          'HV_ERR_IMAGE_LAYOUT',
          `data segment at 0x${s.offset.toString(16)} overlaps the boot-information page; link images with --memoryBase ${IMAGE_BASE}`,
        );
      }
    }
    const loaded = loadGuestImage(bytes, { rewrite: this.rewrite });
    for (const s of loaded.segments) this.mem.write(s.offset, s.bytes);
    writeBootInfo(this.mem, { vpCount: this.vpCount, partitionId: this.id, flags: BOOT_FLAG_ENLIGHTENED, cmdline, imageEnd: loaded.dataEnd });
    this.image = loaded;
    return loaded;
  }

  /** Whether the loaded image exports a function of this name. */
  imageExportsFunction(name: string): boolean {
    if (!this.image) return false;
    return WebAssembly.Module.exports(this.image.module).some((e) => e.name === name && e.kind === 'function');
  }

  /** The loaded image's preparation (GuestImage.preparation; '' before one is loaded): a capture fits only this one. */
  get imagePreparation(): string {
    return this.image?.preparation ?? '';
  }

  /** The loaded image can have its VPs captured (prepared with capturable stacks). */
  get capturable(): boolean {
    return this.imageExportsFunction('asyncify_start_unwind');
  }

  /** Starts VP 0 at the image's boot entry. */
  start(): void {
    if (!this.image) throw new HvError('HV_ERR_NO_IMAGE', 'no guest image loaded');
    if (this.state !== 'initialized') throw new HvError('HV_ERR_PARTITION_STATE', `cannot start a partition in state ${this.state}`);
    this.state = 'active';
    this.startVp(0, { kind: 'boot' });
  }

  private startVp(vp: number, entry: VpEntry, rewind?: VpCapture): void {
    const ready = this.prestarted.get(vp);
    if (ready) {
      this.prestarted.delete(vp);
      this.exits.delete(vp);
      ready.postMessage({ entry, ...(rewind ? { rewind } : {}) } satisfies VpStartMessage);
      return;
    }
    this.spawnVp(vp, entry, rewind, false);
  }

  /**
   * Starts a thread for each VP that instantiates the image and waits (a live migration's
   * destination calls this while memory still arrives): continueVps then hands each its capture
   * instead of paying for a new thread and an instantiation while the VM is paused. Resolves
   * when every thread is waiting; stop() ends threads never used.
   */
  async prestartVps(timeoutMs = 30_000): Promise<void> {
    if (!this.image) throw new HvError('HV_ERR_NO_IMAGE', 'no guest image loaded');
    if (this.state !== 'initialized') throw new HvError('HV_ERR_PARTITION_STATE', `cannot prestart the VPs of a partition in state ${this.state}`);
    await Promise.all(
      Array.from({ length: this.vpCount }, (_, vp) =>
        this.waitForVp(vp, 'prepared', timeoutMs, () => {
          this.prestarted.set(vp, this.spawnVp(vp, { kind: 'ap', rip: 0 }, undefined, true));
        }).then((outcome) => {
          if (outcome !== 'prepared') throw new HvError('HV_ERR_CONTINUE', `VP ${vp}'s thread did not start: it ${describeExit(outcome)}`);
        }),
      ),
    );
  }

  private spawnVp(vp: number, entry: VpEntry, rewind: VpCapture | undefined, prestart: boolean): Worker {
    const data: VpThreadData = {
      module: this.image!.module,
      memory: this.mem.memory,
      control: this.ctl.sab,
      vp,
      entry,
      spinIterations: this.waitPolicy.spinIterations,
      maxSpinIterations: this.waitPolicy.maxSpinIterations,
      preemptBudget: this.preemptBudget,
      cpuBudget: this.cpu.sab,
      ...(rewind ? { rewind } : {}),
      ...(prestart ? { prestart } : {}),
    };
    this.workerUrl ??= vpWorkerUrl();
    const worker = new Worker(this.workerUrl, { workerData: data, name: `${this.name}/vp${vp}` });
    this.threadsStarted++;
    this.workers.set(vp, worker);
    this.exits.delete(vp);
    this.running++;
    let exited = false;
    const finish = (exit: VpExitReason) => {
      if (exited) return;
      exited = true;
      this.exits.set(vp, exit);
      this.emit('vp-exit', { vp, exit } satisfies VpExitEvent);
      if (exit.reason === 'fault') this.emit('fault', { vp, kind: exit.kind, message: exit.message });
      if (--this.running === 0) for (const r of this.idleResolvers.splice(0)) r();
    };
    worker.on('message', (m: VpThreadMessage) => {
      if (m.kind === 'exit') finish(m.exit);
      else if (m.event.type === 'start-vp' && this.state === 'active') this.startVp(m.event.target, { kind: 'ap', rip: m.event.rip });
      else this.emit(m.event.type, m.event);
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
  private dropPrestarted(): void {
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

  vpExit(vp: number): VpExitReason | undefined {
    return this.exits.get(vp);
  }

  runState(vp: number): number {
    return this.ctl.runState(vp);
  }

  counters(vp: number): Record<VpCounterName, number> {
    return this.ctl.counters(vp);
  }

  /** The root's HvCallAssertVirtualInterrupt on a VP of this partition. */
  assertInterrupt(vp: number, vector: number): HvStatus {
    return assertChildInterrupt(this.ctl, vp, vector);
  }

  referenceTime(): number {
    return this.state === 'created' ? 0 : new ReferenceClock(this.ctl).now();
  }

  /** What another thread needs to attach a PartitionHandle to this partition. */
  share(): PartitionShare {
    return { name: this.name, control: this.ctl.sab, memory: this.mem.memory };
  }

  /** The root's HvCallPostMessage on one of its connections to this child. */
  postMessage(connectionId: number, messageType: number, payload: Uint8Array): HvStatus {
    return this.ports.postMessage(Owner.Root, connectionId, messageType, payload);
  }

  signalEvent(connectionId: number, flagNumber: number): HvStatus {
    return this.ports.signalEvent(Owner.Root, connectionId, flagNumber);
  }

  /**
   * Parks every running VP at its next exit boundary or preemption point and freezes the reference clock. When a VP
   * does not get there within `timeoutMs` (a guest computing without exits, an overloaded host)
   * the pause is undone completely — request cleared, clock running as if never frozen, parked
   * VPs woken — so a failed pause never leaves the partition half-frozen; the outcome names the
   * VPs that did not park.
   */
  async pause(timeoutMs = 5000): Promise<PauseOutcome> {
    Atomics.store(this.ctl.i32, P_REQUESTED_STATE >> 2, RequestedState.Pause);
    ReferenceClock.freeze(this.ctl);
    this.wakeAll();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const live = this.unparkedVps();
      if (live.length === 0) return { paused: true, notParked: [] };
      if (Date.now() >= deadline) {
        this.undoPause();
        return { paused: false, notParked: live };
      }
      this.wakeAll();
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private unparkedVps(): number[] {
    const live: number[] = [];
    for (let vp = 0; vp < this.vpCount; vp++) {
      const s = this.ctl.runState(vp);
      // A VP whose thread is still starting has not run yet: it parks at its first exit.
      if (s === VpRunState.Running || s === VpRunState.Halted || (s === VpRunState.NotStarted && this.workers.has(vp))) live.push(vp);
    }
    return live;
  }

  /**
   * The VPs that never parked kept counting time on the old epoch, so the clock is unfrozen in
   * place (the epoch kept) rather than thawed from the frozen value: every thread agrees again,
   * and guest time stays monotonic (reads during the attempt saw the frozen value, an earlier one).
   */
  private undoPause(): void {
    Atomics.store(this.ctl.i32, P_REQUESTED_STATE >> 2, RequestedState.Run);
    Atomics.store(this.ctl.i64, P_REF_FROZEN_AT >> 3, -1n);
    this.wakeAll();
  }

  resume(): void {
    ReferenceClock.thaw(this.ctl);
    Atomics.store(this.ctl.i32, P_REQUESTED_STATE >> 2, RequestedState.Run);
    this.wakeAll();
  }

  pausedVps(): number {
    return Atomics.load(this.ctl.i32, P_PAUSED_VPS >> 2);
  }

  private wakeAll(): void {
    for (let vp = 0; vp < this.vpCount; vp++) this.ctl.ring(vpBase(vp) + VP_WAKE);
  }

  /**
   * Stops every VP: asks them to leave at their next exit or preemption point, and terminates
   * the threads of VPs that do not after `graceMs` (a VP stuck in a host call that never
   * returns, or an image run without preemption points spinning without exits).
   */
  async stop(graceMs = 200): Promise<void> {
    Atomics.store(this.ctl.i32, P_REQUESTED_STATE >> 2, RequestedState.Stop);
    this.wakeAll();
    this.inbox.kick();
    const idle = this.whenIdle();
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([idle, timer])) === 'timeout') {
      this.threadsTerminated += this.running;
      await Promise.all([...this.workers.values()].map((w) => w.terminate()));
    }
    await Promise.all([...this.workers.values()].map((w) => w.terminate()));
    await this.whenIdle();
  }

  /**
   * Captures every VP of a paused partition, one at a time (they share the capture area,
   * vp/vp-capture.ts): each unwinds its stack at the exit it is parked in and its thread ends with
   * the state to continue it from. VPs never started or already gone are reported as such. If a
   * VP does not capture within `timeoutMs`, or fails, the VPs captured so far are continued again
   * and the partition is as before (still paused); the error says which VP and why.
   */
  async captureVps(timeoutMs = 5000): Promise<VpExecution[]> {
    if (this.state !== 'active') throw new HvError('HV_ERR_PARTITION_STATE', `cannot capture the VPs of a partition in state ${this.state}`);
    if (!this.capturable)
      throw new HvError('HV_ERR_NOT_CAPTURABLE', 'the guest image was prepared without capturable stacks (TSVISOR_REWRITE), so its VPs cannot be captured');
    if (Atomics.load(this.ctl.i32, P_REQUESTED_STATE >> 2) !== RequestedState.Pause || this.unparkedVps().length > 0) {
      throw new HvError('HV_ERR_PARTITION_STATE', 'the VPs are captured from a paused partition: pause it first');
    }
    const out: VpExecution[] = [];
    const captured: VpExecution[] = [];
    try {
      for (let vp = 0; vp < this.vpCount; vp++) {
        if (!this.workers.has(vp)) {
          out.push({ vp, state: this.exits.has(vp) ? 'exited' : 'not-started' });
          continue;
        }
        const exit = await this.waitForVp(vp, 'vp-exit', timeoutMs, () => {
          Atomics.store(this.ctl.i32, P_CAPTURE_VP >> 2, vp);
          this.ctl.ring(vpBase(vp) + VP_WAKE);
        });
        Atomics.store(this.ctl.i32, P_CAPTURE_VP >> 2, -1);
        if (exit.reason !== 'captured') throw new HvError('HV_ERR_CAPTURE', `VP ${vp} was not captured: it ${describeExit(exit)}`);
        const e: VpExecution = { vp, state: 'captured', capture: exit.capture };
        captured.push(e);
        out.push(e);
      }
    } catch (e) {
      Atomics.store(this.ctl.i32, P_CAPTURE_VP >> 2, -1);
      await this.continueVps(captured, timeoutMs);
      throw e;
    }
    return out;
  }

  /**
   * Starts captured VPs again, one at a time, each rewinding to the exit it was captured in and
   * parking there: the partition is paused afterwards (resume() lets it run). Used after a
   * restore into a fresh partition (state initialized: the memory and control block already
   * restored) and to undo a capture. VPs that had exited stay stopped.
   */
  async continueVps(executions: VpExecution[], timeoutMs = 5000): Promise<void> {
    if (!this.image) throw new HvError('HV_ERR_NO_IMAGE', 'no guest image loaded');
    if (this.state === 'initialized') this.state = 'active';
    if (this.state !== 'active') throw new HvError('HV_ERR_PARTITION_STATE', `cannot continue VPs of a partition in state ${this.state}`);
    Atomics.store(this.ctl.i32, P_REQUESTED_STATE >> 2, RequestedState.Pause);
    for (const e of executions) {
      if (e.state === 'exited') Atomics.store(this.ctl.i32, (vpBase(e.vp) + VP_RUN_STATE) >> 2, VpRunState.Stopped);
      if (e.state !== 'captured') continue;
      const capture = e.capture;
      const outcome = await this.waitForVp(e.vp, 'rewound', timeoutMs, () => this.startVp(e.vp, capture.entry, capture));
      if (outcome !== 'rewound') throw new HvError('HV_ERR_CONTINUE', `VP ${e.vp} could not continue from its captured state: it ${describeExit(outcome)}`);
    }
    this.dropPrestarted();
    const deadline = Date.now() + timeoutMs;
    while (this.unparkedVps().length > 0) {
      if (Date.now() >= deadline) throw new HvError('HV_ERR_CONTINUE', `VPs ${this.unparkedVps().join(', ')} did not park after continuing`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Runs `act`, then waits for VP `vp` to exit (what = 'vp-exit') or to report it rewound (else its exit). */
  private waitForVp(vp: number, what: 'vp-exit', timeoutMs: number, act: () => void): Promise<VpExitReason>;
  private waitForVp<W extends 'rewound' | 'prepared'>(vp: number, what: W, timeoutMs: number, act: () => void): Promise<W | VpExitReason>;
  private waitForVp(vp: number, what: 'vp-exit' | 'rewound' | 'prepared', timeoutMs: number, act: () => void): Promise<'rewound' | 'prepared' | VpExitReason> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.off('vp-exit', onExit);
        if (what !== 'vp-exit') this.off(what, onRewound);
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
      this.on('vp-exit', onExit);
      if (what !== 'vp-exit') this.on(what, onRewound);
      try {
        act();
      } catch (e) {
        done();
        reject(e);
      }
    });
  }

  /** HvCallFinalizePartition then HvCallDeletePartition: stops VPs and releases everything. */
  async delete(): Promise<void> {
    if (this.state === 'deleted') return;
    await this.stop();
    this.state = 'deleted';
    this.removeAllListeners();
  }
}

function describeExit(e: VpExitReason): string {
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
