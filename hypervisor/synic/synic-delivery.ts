/**
 * SynIC message and event delivery into a VP's overlay pages (TLFS inter-partition-communication,
 * "Message delivery" and "Event flags"): one slot per SINT in the SIM page; a message waits in the
 * VP's per-SINT queue while the slot is busy and is retried on EOM or on the next post. Runs on
 * whichever thread produces the message (a VP's hypercall, the root's device thread, a timer);
 * the VP's SynIC lock serialises producers, and the pending-flag handshake with the guest (which
 * clears the slot without the lock) is closed by re-checking the slot after setting the flag.
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { HV_MESSAGE_SIZE, HV_SYNIC_SINT_COUNT } from '../../abi/hv-hypercall.ts';
import { HV_SINT_MASKED } from '../../abi/hv-msr.ts';
import type { GuestMemory } from '../guest-memory.ts';
import { assertVector } from '../interrupts.ts';
import {
  PORT_ENTRY,
  PORT_IN_FLIGHT,
  PORTS_OFFSET,
  type PartitionControl,
  SINT_QUEUE_BYTES,
  SINT_QUEUE_DEPTH,
  SINT_QUEUE_ENTRY,
  VP_COUNTERS,
  VP_SCONTROL,
  VP_SIEFP,
  VP_SIMP,
  VP_SINT,
  VP_SINT_QUEUES,
  VP_SYNIC_LOCK,
  VpCounter,
  vpBase,
} from '../partition-control.ts';

const MESSAGE_PENDING_BIT = 1 << 8; // HV_MESSAGE flags byte @5, bit 0, seen in the i32 at @4

function sintReg(ctl: PartitionControl, vp: number, sint: number): number {
  return Number(ctl.i64[(vpBase(vp) + VP_SINT + 8 * sint) >> 3] & 0xffffffffn);
}

/**
 * GPA of the overlay page an SIMP/SIEFP value names (bit 0 enable, bits 63:12 the GPA page
 * number, all 64 bits of it), or -1 when disabled or when the page is not wholly inside RAM.
 * The page number is compared as a u64 before any conversion, so a GPA at or above 4 GiB never
 * aliases low memory; the result is a non-negative number (GPAs of up to 4 GiB do not fit an i32).
 */
export function overlayPageGpa(value: bigint, mem: GuestMemory): number {
  if ((value & 1n) === 0n) return -1;
  const gpa = BigInt.asUintN(64, value) & ~0xfffn;
  if (gpa + 4096n > BigInt(mem.size)) return -1;
  return Number(gpa);
}

/** GPA of the SIM page, or -1 when the SynIC or the page is disabled or outside RAM. */
export function simpPage(ctl: PartitionControl, mem: GuestMemory, vp: number): number {
  const base = vpBase(vp);
  if ((Atomics.load(ctl.i32, (base + VP_SCONTROL) >> 2) & 1) === 0) return -1;
  return overlayPageGpa(Atomics.load(ctl.i64, (base + VP_SIMP) >> 3), mem);
}

export function siefPage(ctl: PartitionControl, mem: GuestMemory, vp: number): number {
  const base = vpBase(vp);
  if ((Atomics.load(ctl.i32, (base + VP_SCONTROL) >> 2) & 1) === 0) return -1;
  return overlayPageGpa(Atomics.load(ctl.i64, (base + VP_SIEFP) >> 3), mem);
}

function bump(ctl: PartitionControl, vp: number, counter: number): void {
  ctl.f64[(vpBase(vp) + VP_COUNTERS + 8 * counter) >> 3]++;
}

/**
 * Queues a 256-byte HV_MESSAGE for SINT `sint` of `vp`. `portIndex` (or -1 for hypervisor
 * messages such as timer expiry) holds one of its port's 16 buffers until the message reaches
 * the slot. Returns an HV_STATUS.
 */
export function postToSint(ctl: PartitionControl, mem: GuestMemory, vp: number, sint: number, message: Uint8Array, portIndex: number): HvStatus {
  if (vp < 0 || vp >= ctl.vpCount) return HvStatus.InvalidVpIndex;
  if (sint < 0 || sint >= HV_SYNIC_SINT_COUNT) return HvStatus.InvalidParameter;
  if (simpPage(ctl, mem, vp) < 0) return HvStatus.InvalidSynicState;
  const base = vpBase(vp);
  const q = base + VP_SINT_QUEUES + sint * SINT_QUEUE_BYTES;
  ctl.lock(base + VP_SYNIC_LOCK);
  try {
    const head = ctl.i32[q >> 2];
    const tail = ctl.i32[(q + 4) >> 2];
    if (tail - head >= SINT_QUEUE_DEPTH) return HvStatus.InsufficientBuffers;
    if (portIndex >= 0) {
      const inFlight = PORTS_OFFSET + portIndex * PORT_ENTRY + PORT_IN_FLIGHT;
      if (Atomics.add(ctl.i32, inFlight >> 2, 1) >= 16) {
        Atomics.sub(ctl.i32, inFlight >> 2, 1);
        return HvStatus.InsufficientBuffers;
      }
    }
    const entry = q + 8 + (tail % SINT_QUEUE_DEPTH) * SINT_QUEUE_ENTRY;
    ctl.i32[entry >> 2] = portIndex + 1;
    ctl.u8.set(message.subarray(0, HV_MESSAGE_SIZE), entry + 8);
    ctl.i32[(q + 4) >> 2] = tail + 1;
    flushLocked(ctl, mem, vp, sint);
    return HvStatus.Success;
  } finally {
    ctl.unlock(base + VP_SYNIC_LOCK);
  }
}

/** Moves queued messages into free slots (on EOM, after a post). */
export function retryDelivery(ctl: PartitionControl, mem: GuestMemory, vp: number): void {
  const base = vpBase(vp);
  ctl.lock(base + VP_SYNIC_LOCK);
  try {
    for (let sint = 0; sint < HV_SYNIC_SINT_COUNT; sint++) flushLocked(ctl, mem, vp, sint);
  } finally {
    ctl.unlock(base + VP_SYNIC_LOCK);
  }
}

export function queuedMessages(ctl: PartitionControl, vp: number, sint: number): number {
  const q = vpBase(vp) + VP_SINT_QUEUES + sint * SINT_QUEUE_BYTES;
  return ctl.i32[(q + 4) >> 2] - ctl.i32[q >> 2];
}

function flushLocked(ctl: PartitionControl, mem: GuestMemory, vp: number, sint: number): void {
  const base = vpBase(vp);
  const q = base + VP_SINT_QUEUES + sint * SINT_QUEUE_BYTES;
  for (;;) {
    const head = ctl.i32[q >> 2];
    if (head === ctl.i32[(q + 4) >> 2]) return;
    const page = simpPage(ctl, mem, vp);
    if (page < 0) return;
    const slot = page + sint * HV_MESSAGE_SIZE;
    const typeIdx = slot >>> 2; // unsigned: a slot may lie at or above 2 GiB
    if (Atomics.load(mem.i32, typeIdx) !== 0) {
      // Slot busy: flag it, then look again in case the guest emptied it meanwhile (it clears the
      // type before reading the flag, so one of the two sides sees the other's write).
      Atomics.or(mem.i32, typeIdx + 1, MESSAGE_PENDING_BIT);
      if (Atomics.load(mem.i32, typeIdx) !== 0) return;
    }
    const entry = q + 8 + (head % SINT_QUEUE_DEPTH) * SINT_QUEUE_ENTRY;
    const portPlusOne = ctl.i32[entry >> 2];
    // Payload and header first, the type last: a non-zero type tells the guest the slot is full.
    mem.u8.set(ctl.u8.subarray(entry + 8 + 4, entry + 8 + HV_MESSAGE_SIZE), slot + 4);
    mem.u8[slot + 5] &= ~1; // the pending flag belongs to this delivery's successor, set above if needed
    Atomics.store(mem.i32, typeIdx, ctl.i32[(entry + 8) >> 2]);
    ctl.i32[q >> 2] = head + 1;
    if (portPlusOne > 0) Atomics.sub(ctl.i32, (PORTS_OFFSET + (portPlusOne - 1) * PORT_ENTRY + PORT_IN_FLIGHT) >> 2, 1);
    if (ctl.i32[q >> 2] !== ctl.i32[(q + 4) >> 2]) Atomics.or(mem.i32, typeIdx + 1, MESSAGE_PENDING_BIT);
    bump(ctl, vp, VpCounter.MessagesDelivered);
    const reg = sintReg(ctl, vp, sint);
    if ((reg & HV_SINT_MASKED) === 0) assertVector(ctl, vp, reg & 0xff);
  }
}

/**
 * Sets event flag `flag` of SINT `sint` in the VP's SIEF page; raises the SINT only when the
 * flag was clear (TLFS "Event flags"). Returns an HV_STATUS.
 */
export function signalSintEvent(ctl: PartitionControl, mem: GuestMemory, vp: number, sint: number, flag: number): HvStatus {
  if (vp < 0 || vp >= ctl.vpCount) return HvStatus.InvalidVpIndex;
  if (sint < 0 || sint >= HV_SYNIC_SINT_COUNT || flag < 0 || flag >= 2048) return HvStatus.InvalidParameter;
  const page = siefPage(ctl, mem, vp);
  const reg = sintReg(ctl, vp, sint);
  if (page < 0 || (reg & HV_SINT_MASKED) !== 0) return HvStatus.InvalidSynicState;
  const word = ((page + sint * 256) >>> 2) + (flag >>> 5);
  const mask = 1 << (flag & 31);
  const before = Atomics.or(mem.i32, word, mask);
  bump(ctl, vp, VpCounter.EventsSignalled);
  if ((before & mask) === 0) assertVector(ctl, vp, reg & 0xff);
  return HvStatus.Success;
}
