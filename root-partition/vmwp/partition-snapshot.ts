/**
 * Captures a parked partition's hypervisor state as named values and puts them back into a fresh
 * partition: per partition the guest OS id and hypercall MSR, per VP the SynIC registers, the
 * synthetic timers, the pending interrupt vectors, the architectural registers and the timer
 * messages queued for a SINT. Never a copy of the control block: its layout belongs to this
 * build, and the words that describe running threads (run states, locks, doorbells, counters)
 * mean nothing to another process.
 *
 * Each VP's execution state (its captured Wasm stack, vp-execution-record.ts) travels in its VP
 * record; the VM worker captures the VPs before this snapshot and continues them after a restore.
 *
 * Ports and connections are not saved: the device thread builds them from the VM's configuration
 * when it starts (VMBus setup), exactly as at boot, and restores the VMBus state over them. The
 * device thread serves every message and event flag in flight before it saves; one still here
 * could not be matched to a port, so the capture is refused (the VM runs on).
 *
 * The reference counter is restored frozen at the value it was frozen at, and thawed when the VPs
 * start, so guest time does not jump over the time spent saved or restoring.
 */
import { HV_MESSAGE_SIZE, HV_SYNIC_SINT_COUNT, HV_SYNIC_STIMER_COUNT } from '../../abi/hv-hypercall.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import {
  MAX_ROOT_MESSAGE_PORTS,
  P_GUEST_OS_ID,
  P_HYPERCALL_MSR,
  P_REF_FROZEN_AT,
  P_ROOT_EVENT_FLAGS,
  type PartitionControl,
  ROOT_QUEUE_HEADS,
  SINT_QUEUE_BYTES,
  SINT_QUEUE_DEPTH,
  SINT_QUEUE_ENTRY,
  VP_PENDING_SUMMARY,
  VP_PENDING_VECTORS,
  VP_REGISTERS,
  VP_SCONTROL,
  VP_SIEFP,
  VP_SIMP,
  VP_SINT,
  VP_SINT_QUEUES,
  VP_STIMER_CONFIG,
  VP_STIMER_COUNT,
  VP_STIMER_DUE,
  VP_STIMER_MSG_PENDING,
  vpBase,
} from '../../hypervisor/partition-control.ts';
import { ReferenceClock } from '../../hypervisor/reference-time.ts';
import { registerSlot } from '../../hypervisor/vp/registers.ts';
import type { VpStateRecord } from '../ipc/saved-state-schema.ts';
import type { VpExecution } from '../../hypervisor/vp/vp-capture.ts';
import { executionFromRecord, ExecutionRecordError } from './vp-execution-record.ts';

export interface PartitionSnapshot {
  vpCount: number;
  /** GuestImage.preparation of the image the VPs run (their captured stacks fit only it). */
  imagePreparation: string;
  guestOsId: string;
  hypercallMsr: string;
  referenceTicks: number;
  vps: VpStateRecord[];
}

export class SnapshotError extends Error {
  constructor(
    readonly code: 'VMWP_ERR_SAVE_IN_FLIGHT' | 'VMWP_ERR_SAVE_NOT_RESTORABLE' | 'SAVED_STATE_LAYOUT',
    message: string,
  ) {
    super(message);
  }
}

const ROOT_EVENT_FLAG_WORDS = 2048 / 32;
const REGISTER_BYTES = 16;

/**
 * The architectural register names the VP keeps a slot for: every HV_REGISTER_NAME in the
 * classes the register file covers (0x0001xxxx..0x0008xxxx) that registerSlot accepts.
 */
const REGISTER_NAMES: readonly number[] = (() => {
  const names: number[] = [];
  for (let cls = 1; cls <= 8; cls++) for (let i = 0; i < 256; i++) if (registerSlot((cls << 16) | i) >= 0) names.push((cls << 16) | i);
  return names;
})();

const u64 = (ctl: PartitionControl, at: number) => BigInt.asUintN(64, ctl.i64[at >> 3]).toString();

/** Only valid while the partition is paused (Partition.pause succeeded): the clock is frozen. */
export function capturePartition(p: Partition): PartitionSnapshot {
  const ctl = p.ctl;
  const frozen = Atomics.load(ctl.i64, P_REF_FROZEN_AT >> 3);
  if (frozen < 0n) throw new Error('capturePartition needs a paused partition (the reference clock is running)');
  refuseInFlight(ctl);
  const vps: VpStateRecord[] = [];
  for (let vp = 0; vp < p.vpCount; vp++) vps.push(captureVp(ctl, vp));
  return {
    vpCount: p.vpCount,
    imagePreparation: p.imagePreparation,
    guestOsId: u64(ctl, P_GUEST_OS_ID),
    hypercallMsr: u64(ctl, P_HYPERCALL_MSR),
    referenceTicks: Number(frozen),
    vps,
  };
}

function refuseInFlight(ctl: PartitionControl): void {
  for (let q = 0; q < MAX_ROOT_MESSAGE_PORTS; q++) {
    const h = (ROOT_QUEUE_HEADS + q * 8) >> 2;
    if (ctl.i32[h] !== ctl.i32[h + 1])
      throw new SnapshotError('VMWP_ERR_SAVE_IN_FLIGHT', 'a message from the guest to the root partition is still queued; try the save again');
  }
  for (let w = 0; w < ROOT_EVENT_FLAG_WORDS; w++) {
    if (ctl.i32[(P_ROOT_EVENT_FLAGS >> 2) + w] !== 0)
      throw new SnapshotError('VMWP_ERR_SAVE_IN_FLIGHT', 'an event the guest signalled to the root partition is not yet served; try the save again');
  }
}

function captureVp(ctl: PartitionControl, vp: number): VpStateRecord {
  const base = vpBase(vp);
  const pendingVectors: number[] = [];
  for (let v = 0; v < 256; v++) if (ctl.i32[(base + VP_PENDING_VECTORS) / 4 + (v >> 5)] & (1 << (v & 31))) pendingVectors.push(v);
  const timers: VpStateRecord['timers'] = [];
  for (let t = 0; t < HV_SYNIC_STIMER_COUNT; t++) {
    timers.push({
      index: t,
      config: u64(ctl, base + VP_STIMER_CONFIG + 8 * t),
      count: u64(ctl, base + VP_STIMER_COUNT + 8 * t),
      due: ctl.f64[(base + VP_STIMER_DUE + 8 * t) >> 3],
      messagePending: ctl.i32[(base + VP_STIMER_MSG_PENDING + 4 * t) >> 2] !== 0,
    });
  }
  const registers: VpStateRecord['registers'] = [];
  for (const name of REGISTER_NAMES) {
    const at = base + VP_REGISTERS + registerSlot(name) * REGISTER_BYTES;
    const value = ctl.u8.slice(at, at + REGISTER_BYTES);
    if (value.some((b) => b !== 0)) registers.push({ name, value });
  }
  const queuedMessages: VpStateRecord['queuedMessages'] = [];
  for (let sint = 0; sint < HV_SYNIC_SINT_COUNT; sint++) {
    const q = base + VP_SINT_QUEUES + sint * SINT_QUEUE_BYTES;
    for (let i = ctl.i32[q >> 2], tail = ctl.i32[(q + 4) >> 2]; i !== tail; i++) {
      const entry = q + 8 + (i % SINT_QUEUE_DEPTH) * SINT_QUEUE_ENTRY;
      if (ctl.i32[entry >> 2] !== 0)
        throw new SnapshotError('VMWP_ERR_SAVE_IN_FLIGHT', `a port message for SINT ${sint} of VP ${vp} is not yet delivered; try the save again`);
      queuedMessages.push({ sint, message: ctl.u8.slice(entry + 8, entry + 8 + HV_MESSAGE_SIZE) });
    }
  }
  return {
    vp,
    pendingVectors,
    scontrol: ctl.i32[(base + VP_SCONTROL) >> 2] >>> 0,
    simp: u64(ctl, base + VP_SIMP),
    siefp: u64(ctl, base + VP_SIEFP),
    sint: Array.from({ length: HV_SYNIC_SINT_COUNT }, (_, s) => u64(ctl, base + VP_SINT + 8 * s)),
    timers,
    registers,
    queuedMessages,
  };
}

function parseU64(value: string, what: string): bigint {
  if (!/^\d{1,20}$/.test(value) || BigInt(value) >= 1n << 64n) throw new SnapshotError('SAVED_STATE_LAYOUT', `${what} is not a 64-bit value`);
  return BigInt.asIntN(64, BigInt(value));
}

/**
 * Every value of the snapshot checked against this build's layout before the first write, so a
 * snapshot that does not fit is refused whole and nothing is half-restored.
 */
function validate(p: Partition, s: PartitionSnapshot): void {
  const bad = (m: string) => {
    throw new SnapshotError('SAVED_STATE_LAYOUT', m);
  };
  if (s.vpCount !== p.vpCount) bad(`the saved partition has ${s.vpCount} VPs; this one has ${p.vpCount}`);
  if (s.vps.length !== p.vpCount || new Set(s.vps.map((v) => v.vp)).size !== p.vpCount || s.vps.some((v) => !(v.vp >= 0 && v.vp < p.vpCount))) {
    bad(`the saved state holds virtual processor records ${s.vps.map((v) => v.vp).join(', ')}; the partition has VPs 0..${p.vpCount - 1}`);
  }
  if (s.imagePreparation !== p.imagePreparation) {
    bad(
      'the saved VPs were captured from another preparation of the guest image (another tsvisor release or TSVISOR_REWRITE setting); this build cannot continue them — turn the VM off to discard the saved state',
    );
  }
  parseU64(s.guestOsId, 'the guest OS id');
  parseU64(s.hypercallMsr, 'the hypercall MSR');
  if (!Number.isSafeInteger(s.referenceTicks) || s.referenceTicks < 0) bad(`reference time ${s.referenceTicks} is not a count of 100 ns units`);
  for (const v of s.vps) {
    const where = `VP ${v.vp}`;
    try {
      executionFromRecord(v.vp, v.execution);
    } catch (e) {
      if (e instanceof ExecutionRecordError) bad(e.message);
      throw e;
    }
    if (v.pendingVectors.some((x) => !(Number.isInteger(x) && x >= 0 && x < 256))) bad(`${where}: a pending interrupt vector is outside 0..255`);
    if (v.sint.length !== HV_SYNIC_SINT_COUNT) bad(`${where}: ${v.sint.length} SINT registers; the SynIC has ${HV_SYNIC_SINT_COUNT}`);
    v.sint.forEach((x, i) => parseU64(x, `${where} SINT${i}`));
    parseU64(v.simp, `${where} SIMP`);
    parseU64(v.siefp, `${where} SIEFP`);
    if (
      v.timers.length !== HV_SYNIC_STIMER_COUNT ||
      new Set(v.timers.map((t) => t.index)).size !== HV_SYNIC_STIMER_COUNT ||
      v.timers.some((t) => !(t.index >= 0 && t.index < HV_SYNIC_STIMER_COUNT))
    ) {
      bad(`${where}: synthetic timers ${v.timers.map((t) => t.index).join(', ')}; the SynIC has timers 0..${HV_SYNIC_STIMER_COUNT - 1}`);
    }
    for (const t of v.timers) {
      parseU64(t.config, `${where} STIMER${t.index}_CONFIG`);
      parseU64(t.count, `${where} STIMER${t.index}_COUNT`);
      if (!(t.due === -1 || (Number.isFinite(t.due) && t.due >= 0))) bad(`${where} STIMER${t.index}: expiry ${t.due} is not a reference time`);
    }
    for (const r of v.registers) {
      if (registerSlot(r.name) < 0) bad(`${where}: register 0x${r.name.toString(16)} is not one this hypervisor keeps`);
      if (r.value.length !== REGISTER_BYTES) bad(`${where}: register 0x${r.name.toString(16)} has ${r.value.length} bytes, not ${REGISTER_BYTES}`);
    }
    const perSint = new Map<number, number>();
    for (const m of v.queuedMessages) {
      if (!(Number.isInteger(m.sint) && m.sint >= 0 && m.sint < HV_SYNIC_SINT_COUNT)) bad(`${where}: a queued message for SINT ${m.sint}`);
      if (m.message.length !== HV_MESSAGE_SIZE) bad(`${where}: a queued message of ${m.message.length} bytes, not ${HV_MESSAGE_SIZE}`);
      perSint.set(m.sint, (perSint.get(m.sint) ?? 0) + 1);
      if (perSint.get(m.sint)! > SINT_QUEUE_DEPTH) bad(`${where}: more than ${SINT_QUEUE_DEPTH} messages queued for SINT ${m.sint}`);
    }
  }
}

/**
 * Call after loadImage and before the device thread and the VPs start: the control block is
 * written by this thread alone, and nothing else reads it until they start. Leaves the reference
 * clock frozen; ReferenceClock.thaw it just before the VPs start.
 */
export function restorePartition(p: Partition, s: PartitionSnapshot): VpExecution[] {
  validate(p, s);
  const ctl = p.ctl;
  ctl.i64[P_GUEST_OS_ID >> 3] = parseU64(s.guestOsId, '');
  ctl.i64[P_HYPERCALL_MSR >> 3] = parseU64(s.hypercallMsr, '');
  for (const v of s.vps) {
    const base = vpBase(v.vp);
    for (const x of v.pendingVectors) ctl.i32[(base + VP_PENDING_VECTORS) / 4 + (x >> 5)] |= 1 << (x & 31);
    ctl.i32[(base + VP_PENDING_SUMMARY) >> 2] = v.pendingVectors.length > 0 ? 1 : 0;
    ctl.i32[(base + VP_SCONTROL) >> 2] = v.scontrol | 0;
    ctl.i64[(base + VP_SIMP) >> 3] = parseU64(v.simp, '');
    ctl.i64[(base + VP_SIEFP) >> 3] = parseU64(v.siefp, '');
    v.sint.forEach((x, i) => {
      ctl.i64[(base + VP_SINT + 8 * i) >> 3] = parseU64(x, '');
    });
    for (const t of v.timers) {
      ctl.i64[(base + VP_STIMER_CONFIG + 8 * t.index) >> 3] = parseU64(t.config, '');
      ctl.i64[(base + VP_STIMER_COUNT + 8 * t.index) >> 3] = parseU64(t.count, '');
      ctl.f64[(base + VP_STIMER_DUE + 8 * t.index) >> 3] = t.due;
      ctl.i32[(base + VP_STIMER_MSG_PENDING + 4 * t.index) >> 2] = t.messagePending ? 1 : 0;
    }
    for (const r of v.registers) ctl.u8.set(r.value, base + VP_REGISTERS + registerSlot(r.name) * REGISTER_BYTES);
    const tails = new Map<number, number>();
    for (const m of v.queuedMessages) {
      const q = base + VP_SINT_QUEUES + m.sint * SINT_QUEUE_BYTES;
      const tail = tails.get(m.sint) ?? 0;
      const entry = q + 8 + tail * SINT_QUEUE_ENTRY;
      ctl.i32[entry >> 2] = 0; // a hypervisor message: no port buffer held
      ctl.u8.set(m.message, entry + 8);
      tails.set(m.sint, tail + 1);
      ctl.i32[(q + 4) >> 2] = tail + 1;
    }
  }
  // Frozen at the saved value until the VPs start (the caller thaws it then): the device
  // thread's start-up is not guest time either.
  ReferenceClock.start(ctl, BigInt(s.referenceTicks));
  Atomics.store(ctl.i64, P_REF_FROZEN_AT >> 3, BigInt(s.referenceTicks));
  return [...s.vps].sort((a, b) => a.vp - b.vp).map((v) => executionFromRecord(v.vp, v.execution));
}
