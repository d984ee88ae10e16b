/**
 * The hypervisor's own per-partition state, in one SharedArrayBuffer that the guest never sees:
 * VP run states and wake words, pending interrupt vectors, SynIC registers and message queues,
 * ports and connections, intercept mailboxes and counters. Every thread that acts for the
 * partition (VP threads, the root partition's device thread, the VMWP main thread) attaches to
 * the same buffer, so delivery works from wherever an event happens.
 *
 * Offsets are in bytes; each region is 8-byte aligned so Int32/BigInt64/Float64 views line up.
 */
import { HV_MESSAGE_SIZE, HV_PORT_MESSAGE_BUFFER_COUNT, HV_SYNIC_SINT_COUNT, HV_SYNIC_STIMER_COUNT } from '../abi/hv-hypercall.ts';

export const MAX_VPS = 64;
export const MAX_PORTS = 256;
export const MAX_CONNECTIONS = 256;

// ---- partition header -------------------------------------------------------------------
export const P_DOORBELL = 0; // i32: root inbox sequence, bumped by every producer
export const P_REQUESTED_STATE = 4; // i32: RequestedState.*
export const P_PARTITION_ID = 8; // i32
export const P_VP_COUNT = 12; // i32
export const P_PRIV_LO = 16; // i32: privilege mask bits 31:0
export const P_PRIV_HI = 20; // i32: bits 63:32
export const P_GUEST_OS_ID = 24; // i64
export const P_HYPERCALL_MSR = 32; // i64
export const P_REF_EPOCH_NS = 40; // i64: hrtime (ns) at which the reference counter read 0
export const P_PORT_LOCK = 48; // i32 spinlock for the port/connection tables
export const P_PAUSED_VPS = 52; // i32: VPs parked at an exit boundary
export const P_REF_FROZEN_AT = 56; // i64: reference time (100 ns) while frozen (paused), else -1
export const P_ROOT_EVENT_FLAGS = 64; // 2048 bits: event flags of root-owned event ports
export const P_ROOT_EVENT_SUMMARY = P_ROOT_EVENT_FLAGS + 256; // i32: non-zero when a flag may be set
export const P_ROOT_PENDING_VPS = P_ROOT_EVENT_SUMMARY + 8; // 64 bits: VPs with an intercept waiting
export const P_CAPTURE_VP = P_ROOT_PENDING_VPS + 8; // i32: the paused VP asked to capture its state now, else -1
// Doorbells a root thread other than the device thread sleeps on: a root event port routed to
// one (PortTable.routeEvents) rings it instead of setting its flag and the main doorbell, so a
// guest's HvCallSignalEvent wakes that thread alone. Per doorbell: i32 sequence, i32 claimed.
export const P_ROOT_DOORBELLS = 512;
export const ROOT_DOORBELL_ENTRY = 8;
export const MAX_ROOT_DOORBELLS = 32;
export const P_HEADER_SIZE = 1024;

export const RequestedState = { Run: 0, Pause: 1, Stop: 2 } as const;

// ---- ports and connections ----------------------------------------------------------------
// Port entry (32 bytes): id, type (0 = free), owner (0 root, 1 child), target VP, target SINT,
// base flag, flag count, messages in flight. A root event port has no target SINT: that word
// holds its routed doorbell + 1 (0 = the main doorbell and the root event flags).
export const PORT_ENTRY = 32;
export const PORT_ID = 0;
export const PORT_TYPE = 4;
export const PORT_OWNER = 8;
export const PORT_TARGET_VP = 12;
export const PORT_TARGET_SINT = 16;
export const PORT_BASE_FLAG = 20;
export const PORT_FLAG_COUNT = 24;
export const PORT_IN_FLIGHT = 28;
export const PORTS_OFFSET = P_HEADER_SIZE;
// Connection entry (16 bytes): id, owner (0 root, 1 child), port index + 1 (0 = free), reserved.
export const CONN_ENTRY = 16;
export const CONN_ID = 0;
export const CONN_OWNER = 4;
export const CONN_PORT = 8;
export const CONNECTIONS_OFFSET = PORTS_OFFSET + MAX_PORTS * PORT_ENTRY;
export const Owner = { Root: 0, Child: 1 } as const;

// Messages posted to root-owned message ports wait here: per port, a ring of 16 buffers
// (HV_PORT_MESSAGE_BUFFER_COUNT), each a full HV_MESSAGE; head/tail counters per port.
export const ROOT_QUEUE_HEADS = CONNECTIONS_OFFSET + MAX_CONNECTIONS * CONN_ENTRY; // i32 head, i32 tail per port
export const ROOT_QUEUES = ROOT_QUEUE_HEADS + MAX_PORTS * 8;
export const ROOT_QUEUE_BYTES = HV_PORT_MESSAGE_BUFFER_COUNT * HV_MESSAGE_SIZE;
// Root message ports are fewer than ports: a root queue slot is bound to a port at creation.
export const MAX_ROOT_MESSAGE_PORTS = 32;
export const VP_BLOCKS_OFFSET = ROOT_QUEUES + MAX_ROOT_MESSAGE_PORTS * ROOT_QUEUE_BYTES;

// ---- per-VP block -------------------------------------------------------------------------
export const VP_RUN_STATE = 0; // i32: VpRunState.*
export const VP_WAKE = 4; // i32: bumped to wake the VP from halt or a pause
export const VP_PENDING_SUMMARY = 8; // i32: non-zero when a vector may be pending
export const VP_SYNIC_LOCK = 12; // i32 spinlock: SINT queues and message slot delivery
export const VP_PENDING_VECTORS = 16; // 256 bits
export const VP_SCONTROL = 48; // i32
export const VP_SIMP = 56; // i64 (raw MSR value)
export const VP_SIEFP = 64; // i64
export const VP_SINT = 72; // 16 × i64
export const VP_STIMER_CONFIG = VP_SINT + 8 * HV_SYNIC_SINT_COUNT; // 4 × i64
export const VP_STIMER_COUNT = VP_STIMER_CONFIG + 8 * HV_SYNIC_STIMER_COUNT; // 4 × i64
export const VP_STIMER_DUE = VP_STIMER_COUNT + 8 * HV_SYNIC_STIMER_COUNT; // 4 × f64: next expiry (100 ns ref time), or -1
export const VP_STIMER_MSG_PENDING = VP_STIMER_DUE + 8 * HV_SYNIC_STIMER_COUNT; // 4 × i32: expiry message queued
export const VP_MAILBOX = VP_STIMER_MSG_PENDING + 16; // intercept mailbox, 64 bytes
export const VP_COUNTERS = VP_MAILBOX + 64; // Float64 counters, VpCounter.*
export const VP_COUNTER_SLOTS = 24;
export const VP_REGISTERS = VP_COUNTERS + 8 * VP_COUNTER_SLOTS; // general register file, 64 × 16 bytes
export const VP_REGISTER_SLOTS = 64;
export const VP_SINT_QUEUES = VP_REGISTERS + 16 * VP_REGISTER_SLOTS;
// Each SINT queue: head i32, tail i32, then SINT_QUEUE_DEPTH entries of [port index + 1 (i32), pad, HV_MESSAGE].
// Depth: a port's 16 buffers plus the VP's 4 timer-message buffers (TLFS inter-partition-communication).
export const SINT_QUEUE_DEPTH = HV_PORT_MESSAGE_BUFFER_COUNT + HV_SYNIC_STIMER_COUNT;
export const SINT_QUEUE_ENTRY = 8 + HV_MESSAGE_SIZE;
export const SINT_QUEUE_BYTES = 8 + SINT_QUEUE_DEPTH * SINT_QUEUE_ENTRY;
export const VP_BLOCK_SIZE = align8(VP_SINT_QUEUES + HV_SYNIC_SINT_COUNT * SINT_QUEUE_BYTES);

// Intercept mailbox (offsets inside VP_MAILBOX), see intercept-mailbox.ts.
export const MB_STATE = 0;
export const MB_KIND = 4;
export const MB_PORT = 8; // port, MSR number, CPUID leaf, or MMIO GPA
export const MB_SIZE = 12; // access size, or CPUID subleaf
export const MB_VALUE_LO = 16;
export const MB_VALUE_HI = 20;
export const MB_GPA = 24; // string I/O buffer, CPUID output
export const MB_COUNT = 28;
export const MB_RESULT = 32; // InterceptResult.*
export const MB_OUT = 36; // 4 × i32 outputs (CPUID EAX..EDX, read values)

export const VpRunState = { NotStarted: 0, Running: 1, Halted: 2, Stopped: 3, Paused: 4 } as const;
export type VpRunStateValue = (typeof VpRunState)[keyof typeof VpRunState];

export const VpCounter = {
  Exits: 0,
  CpuidExits: 1,
  MsrExits: 2,
  HypercallExits: 3,
  IoExits: 4,
  StringIoExits: 5,
  MmioExits: 6,
  HaltExits: 7,
  InterruptsDelivered: 8,
  InterceptsToRoot: 9,
  MessagesDelivered: 10,
  EventsSignalled: 11,
  PostMessageCalls: 12,
  SignalEventCalls: 13,
  TimerExpiries: 14,
  StringIoBytes: 15,
  WaitSpinHits: 16,
  WaitSleeps: 17,
  /** Preemption points that ran out of fuel (rewritten images only, hypervisor/rewrite/). */
  PreemptionExits: 18,
} as const;
export type VpCounterName = keyof typeof VpCounter;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

export function controlSize(vpCount: number): number {
  return VP_BLOCKS_OFFSET + vpCount * VP_BLOCK_SIZE;
}

export function vpBase(vp: number): number {
  return VP_BLOCKS_OFFSET + vp * VP_BLOCK_SIZE;
}

/** Typed views over one partition's control buffer. Cheap to create on any thread. */
export class PartitionControl {
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly vpCount: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.i64 = new BigInt64Array(sab);
    this.f64 = new Float64Array(sab);
    this.u8 = new Uint8Array(sab);
    this.dv = new DataView(sab);
    this.vpCount = this.i32[P_VP_COUNT >> 2];
  }

  static create(vpCount: number, partitionId: number): PartitionControl {
    if (!Number.isInteger(vpCount) || vpCount < 1 || vpCount > MAX_VPS) throw new RangeError(`VP count ${vpCount} must be 1..${MAX_VPS}`);
    const sab = new SharedArrayBuffer(controlSize(vpCount));
    const i32 = new Int32Array(sab);
    i32[P_VP_COUNT >> 2] = vpCount;
    i32[P_PARTITION_ID >> 2] = partitionId;
    new BigInt64Array(sab)[P_REF_FROZEN_AT >> 3] = -1n;
    i32[P_CAPTURE_VP >> 2] = -1;
    const c = new PartitionControl(sab);
    for (let vp = 0; vp < vpCount; vp++) {
      for (let s = 0; s < 16; s++) c.i64[(vpBase(vp) + VP_SINT + 8 * s) >> 3] = 0x10000n; // SINTx reset value: masked
      for (let t = 0; t < 4; t++) c.f64[(vpBase(vp) + VP_STIMER_DUE + 8 * t) >> 3] = -1;
    }
    return c;
  }

  counter(vp: number, name: VpCounterName): number {
    return this.f64[(vpBase(vp) + VP_COUNTERS + 8 * VpCounter[name]) >> 3];
  }

  counters(vp: number): Record<VpCounterName, number> {
    const out = {} as Record<VpCounterName, number>;
    for (const k of Object.keys(VpCounter) as VpCounterName[]) out[k] = this.counter(vp, k);
    return out;
  }

  runState(vp: number): VpRunStateValue {
    return Atomics.load(this.i32, (vpBase(vp) + VP_RUN_STATE) >> 2) as VpRunStateValue;
  }

  /** Bumps a sequence word and wakes its waiters. */
  ring(byteOffset: number): void {
    Atomics.add(this.i32, byteOffset >> 2, 1);
    Atomics.notify(this.i32, byteOffset >> 2);
  }

  lock(byteOffset: number): void {
    const i = byteOffset >> 2;
    while (Atomics.compareExchange(this.i32, i, 0, 1) !== 0) {
      // Critical sections are a few hundred ns; a brief sleep only if the holder was descheduled.
      if (Atomics.compareExchange(this.i32, i, 0, 1) === 0) return;
      Atomics.wait(this.i32, i, 1, 0.05);
    }
  }

  unlock(byteOffset: number): void {
    Atomics.store(this.i32, byteOffset >> 2, 0);
    Atomics.notify(this.i32, byteOffset >> 2, 1);
  }
}
