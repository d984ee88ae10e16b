/**
 * A child partition as the root partition holds it: guest memory, the hypervisor's control
 * block, the VP threads, and the root's side of ports, intercepts and interrupts. Life cycle as
 * in the TLFS root usage pattern: Created → Initialized (early properties frozen) → Active (VPs
 * running) → Finalized (VPs stopped, ports gone) → Deleted.
 */
import { EventEmitter } from 'node:events';
import { HvStatus } from '../abi/hv-status.ts';
import { defaultWaitPolicy, type WaitPolicy } from './adaptive-wait.ts';
import { GuestMemory } from './guest-memory.ts';
import { HvError } from './hv-error.ts';
import type { GuestImage } from './image-loader.ts';
import type { PartitionConfig, PartitionState, PauseOutcome } from './partition-config.ts';
import { assertChildInterrupt, type ChildPartitionAccess, type PartitionShare } from './partition-handle.ts';
import {
  Owner,
  P_CAPTURE_VP,
  P_PAUSED_VPS,
  P_REF_FROZEN_AT,
  P_REQUESTED_STATE,
  PartitionControl,
  RequestedState,
  VP_RUN_STATE,
  VP_WAKE,
  VpRunState,
  vpBase,
  type VpCounterName,
} from './partition-control.ts';
import { DEFAULT_CHILD_PRIVILEGES, getPartitionProperty, readPrivileges, setPartitionProperty, writePrivileges } from './partition-properties.ts';
import { loadImageIntoMemory } from './partition-image-load.ts';
import { describeExit, PartitionVpThreads } from './partition-vp-threads.ts';
import { PortTable } from './ports.ts';
import { ReferenceClock } from './reference-time.ts';
import { RootInbox } from './root-inbox.ts';
import type { RewriteOptions } from './rewrite/rewrite-abi.ts';
import { CpuBudgetBlock } from './scheduler/cpu-budget-block.ts';
import type { VpExitReason } from './vp/vp-events.ts';
import type { VpExecution } from './vp/vp-capture.ts';

export { DEFAULT_CHILD_PRIVILEGES, PartitionProperty } from './partition-properties.ts';
export type { VpExitEvent } from './partition-vp-threads.ts';
export type { PartitionConfig, PartitionState, PauseOutcome } from './partition-config.ts';

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
  /** The VP threads: started, prestarted, exited (partition-vp-threads.ts). */
  private readonly threads: PartitionVpThreads;
  private readonly rewrite: RewriteOptions | undefined;
  private readonly preemptBudget: number | undefined;
  /** VP threads stop() had to terminate: VPs stuck in a host call, or images run without preemption points. */
  threadsTerminated = 0;

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
    writePrivileges(this.ctl, priv.lo, priv.hi);
    this.threads = new PartitionVpThreads(this, () => ({
      module: this.image!.module,
      memory: this.mem.memory,
      control: this.ctl.sab,
      spinIterations: this.waitPolicy.spinIterations,
      maxSpinIterations: this.waitPolicy.maxSpinIterations,
      preemptBudget: this.preemptBudget,
      cpuBudget: this.cpu.sab,
    }));
  }

  get privileges(): { lo: number; hi: number } {
    return readPrivileges(this.ctl);
  }

  /** PrivilegeFlags is an early property: settable only before InitializePartition. */
  setPrivileges(lo: number, hi: number): HvStatus {
    if (this.state !== 'created') return HvStatus.InvalidPartitionState;
    writePrivileges(this.ctl, lo, hi);
    return HvStatus.Success;
  }

  /** HvCallGetPartitionProperty (partition-properties.ts). */
  getProperty(code: number): { status: HvStatus; value: bigint } {
    return getPartitionProperty(this.ctl, this.state === 'created', code);
  }

  /** HvCallSetPartitionProperty. PrivilegeFlags is early: settable only before initialization. */
  setProperty(code: number, value: bigint): HvStatus {
    return setPartitionProperty(this.ctl, this.state === 'created', code, value);
  }

  initialize(): HvStatus {
    if (this.state !== 'created') return HvStatus.InvalidPartitionState;
    ReferenceClock.start(this.ctl);
    this.state = 'initialized';
    return HvStatus.Success;
  }

  /** Loads a guest image into memory and writes the boot-information block (partition-image-load.ts). */
  loadImage(bytes: Uint8Array, cmdline = ''): GuestImage {
    if (this.state !== 'initialized') throw new HvError('HV_ERR_PARTITION_STATE', `cannot load an image into a partition in state ${this.state}`);
    const loaded = loadImageIntoMemory(this.mem, bytes, { vpCount: this.vpCount, partitionId: this.id, cmdline, rewrite: this.rewrite });
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
    this.threads.start(0, { kind: 'boot' });
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
    await this.threads.prestart(this.vpCount, timeoutMs);
  }

  /** Resolves when every started VP has exited. */
  whenIdle(): Promise<void> {
    return this.threads.whenIdle();
  }

  vpExit(vp: number): VpExitReason | undefined {
    return this.threads.exit(vp);
  }

  /** VP threads started so far (prestarted ones included). */
  get threadsStarted(): number {
    return this.threads.started;
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
      if (s === VpRunState.Running || s === VpRunState.Halted || (s === VpRunState.NotStarted && this.threads.has(vp))) live.push(vp);
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
      this.threadsTerminated += this.threads.running;
      await this.threads.terminateAll();
    }
    await this.threads.terminateAll();
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
        if (!this.threads.has(vp)) {
          out.push({ vp, state: this.threads.exit(vp) !== undefined ? 'exited' : 'not-started' });
          continue;
        }
        const exit = await this.threads.waitFor(vp, 'vp-exit', timeoutMs, () => {
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
      const outcome = await this.threads.waitFor(e.vp, 'rewound', timeoutMs, () => this.threads.start(e.vp, capture.entry, capture));
      if (outcome !== 'rewound') throw new HvError('HV_ERR_CONTINUE', `VP ${e.vp} could not continue from its captured state: it ${describeExit(outcome)}`);
    }
    this.threads.dropPrestarted();
    const deadline = Date.now() + timeoutMs;
    while (this.unparkedVps().length > 0) {
      if (Date.now() >= deadline) throw new HvError('HV_ERR_CONTINUE', `VPs ${this.unparkedVps().join(', ')} did not park after continuing`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** HvCallFinalizePartition then HvCallDeletePartition: stops VPs and releases everything. */
  async delete(): Promise<void> {
    if (this.state === 'deleted') return;
    await this.stop();
    this.state = 'deleted';
    this.removeAllListeners();
  }
}
