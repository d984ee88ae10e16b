import { describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import { HVMSG_TIMER_EXPIRED } from '../../abi/hv-msr.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { takeHighestVector } from '../../hypervisor/interrupts.ts';
import { PartitionControl, VP_SCONTROL, VP_SIEFP, VP_SIMP, VP_SINT, vpBase } from '../../hypervisor/partition-control.ts';
import { ReferenceClock } from '../../hypervisor/reference-time.ts';
import { SyntheticTimers } from '../../hypervisor/synic/stimers.ts';
import { postToSint, queuedMessages, retryDelivery, signalSintEvent } from '../../hypervisor/synic/synic-delivery.ts';

const SIMP = 0x5000,
  SIEFP = 0x6000;

function setup() {
  const mem = new GuestMemory(1 << 20);
  const ctl = PartitionControl.create(1, 3);
  const b = vpBase(0);
  ctl.i32[(b + VP_SCONTROL) >> 2] = 1;
  ctl.i64[(b + VP_SIMP) >> 3] = BigInt(SIMP | 1);
  ctl.i64[(b + VP_SIEFP) >> 3] = BigInt(SIEFP | 1);
  ctl.i64[(b + VP_SINT + 16) >> 3] = 0x32n; // SINT2 → vector 0x32, unmasked
  return { mem, ctl };
}

function message(type: number, text: string): Uint8Array {
  const m = new Uint8Array(256);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, type, true);
  m[4] = text.length;
  m.set(Buffer.from(text), 16);
  return m;
}

const slot = (sint: number) => SIMP + sint * 256;

describe('SynIC message slots', () => {
  it('copies a message into the empty slot and raises the SINT vector', () => {
    const { mem, ctl } = setup();
    expect(postToSint(ctl, mem, 0, 2, message(1, 'abc'), -1)).toBe(HvStatus.Success);
    expect(mem.readU32(slot(2))).toBe(1);
    expect(mem.u8[slot(2) + 4]).toBe(3);
    expect(mem.u8[slot(2) + 5]).toBe(0); // no MessagePending
    expect(Buffer.from(mem.read(slot(2) + 16, 3)).toString()).toBe('abc');
    expect(takeHighestVector(ctl, 0)).toBe(0x32);
    expect(takeHighestVector(ctl, 0)).toBe(-1);
  });

  it('queues behind a busy slot with MessagePending set, and redelivers on EOM', () => {
    const { mem, ctl } = setup();
    postToSint(ctl, mem, 0, 2, message(1, 'first'), -1);
    postToSint(ctl, mem, 0, 2, message(2, 'second'), -1);
    expect(queuedMessages(ctl, 0, 2)).toBe(1);
    expect(mem.u8[slot(2) + 5] & 1).toBe(1);
    takeHighestVector(ctl, 0);
    // The guest consumes: clear the type, see MessagePending, write EOM.
    Atomics.store(mem.i32, slot(2) >> 2, 0);
    expect(takeHighestVector(ctl, 0)).toBe(-1);
    retryDelivery(ctl, mem, 0);
    expect(mem.readU32(slot(2))).toBe(2);
    expect(Buffer.from(mem.read(slot(2) + 16, 6)).toString()).toBe('second');
    expect(mem.u8[slot(2) + 5] & 1).toBe(0);
    expect(takeHighestVector(ctl, 0)).toBe(0x32);
  });

  it('an EOM with nothing queued is a no-op', () => {
    const { mem, ctl } = setup();
    retryDelivery(ctl, mem, 0);
    expect(mem.readU32(slot(2))).toBe(0);
  });

  it('keeps a masked SINT from interrupting but still fills the slot', () => {
    const { mem, ctl } = setup();
    ctl.i64[(vpBase(0) + VP_SINT + 16) >> 3] = 0x10032n;
    expect(postToSint(ctl, mem, 0, 2, message(1, 'x'), -1)).toBe(HvStatus.Success);
    expect(mem.readU32(slot(2))).toBe(1);
    expect(takeHighestVector(ctl, 0)).toBe(-1);
  });

  it('refuses delivery with INVALID_SYNIC_STATE when the SynIC or the SIM page is disabled', () => {
    const { mem, ctl } = setup();
    ctl.i32[(vpBase(0) + VP_SCONTROL) >> 2] = 0;
    expect(postToSint(ctl, mem, 0, 2, message(1, 'x'), -1)).toBe(HvStatus.InvalidSynicState);
    ctl.i32[(vpBase(0) + VP_SCONTROL) >> 2] = 1;
    ctl.i64[(vpBase(0) + VP_SIMP) >> 3] = BigInt(SIMP);
    expect(postToSint(ctl, mem, 0, 2, message(1, 'x'), -1)).toBe(HvStatus.InvalidSynicState);
  });

  it('bounds the per-SINT queue', () => {
    const { mem, ctl } = setup();
    let ok = 0;
    for (let i = 0; i < 40; i++) if (postToSint(ctl, mem, 0, 2, message(1, 'x'), -1) === HvStatus.Success) ok++;
    expect(ok).toBe(1 + 20); // the slot plus the queue depth
  });
});

describe('SynIC event flags', () => {
  it('sets the flag bit and raises the SINT only on a clear→set transition', () => {
    const { mem, ctl } = setup();
    expect(signalSintEvent(ctl, mem, 0, 2, 37)).toBe(HvStatus.Success);
    expect(mem.readU32(SIEFP + 2 * 256 + 4)).toBe(1 << 5);
    expect(takeHighestVector(ctl, 0)).toBe(0x32);
    expect(signalSintEvent(ctl, mem, 0, 2, 37)).toBe(HvStatus.Success);
    expect(takeHighestVector(ctl, 0)).toBe(-1);
  });

  it('returns INVALID_SYNIC_STATE for a masked SINT', () => {
    const { mem, ctl } = setup();
    ctl.i64[(vpBase(0) + VP_SINT + 16) >> 3] = 0x10032n;
    expect(signalSintEvent(ctl, mem, 0, 2, 1)).toBe(HvStatus.InvalidSynicState);
  });
});

describe('synthetic timers', () => {
  it('posts HVMSG_TIMER_EXPIRED to the configured SINT when due, never early; one-shot disables itself', async () => {
    const { mem, ctl } = setup();
    ReferenceClock.start(ctl);
    const clock = new ReferenceClock(ctl);
    const timers = new SyntheticTimers(ctl, mem, 0, clock);
    const due = clock.now() + 20_000; // 2 ms
    timers.writeCount(1, BigInt(due));
    expect(timers.writeConfig(1, 0x1n | (2n << 16n))).toBe(true);
    expect(timers.poll()).toBe(0);
    while (clock.now() < due) await new Promise((r) => setTimeout(r, 1));
    expect(timers.poll()).toBe(1);
    expect(mem.readU32(slot(2))).toBe(HVMSG_TIMER_EXPIRED >>> 0);
    expect(mem.u8[slot(2) + 4]).toBe(24);
    expect(mem.readU32(slot(2) + 16)).toBe(1);
    expect(Number(mem.readU64(slot(2) + 24))).toBe(due);
    expect(Number(mem.readU64(slot(2) + 32))).toBeGreaterThanOrEqual(due);
    expect(timers.config(1) & 1n).toBe(0n);
    expect(timers.nextDue).toBe(Infinity);
  });

  it('clears Enable for a message timer with SINTx = 0 and rejects reserved bits', () => {
    const { mem, ctl } = setup();
    ReferenceClock.start(ctl);
    const timers = new SyntheticTimers(ctl, mem, 0, new ReferenceClock(ctl));
    expect(timers.writeConfig(0, 0x1n)).toBe(true);
    expect(timers.config(0) & 1n).toBe(0n);
    expect(timers.writeConfig(0, 1n << 13n)).toBe(false);
  });

  it('a periodic timer keeps firing and auto-enable arms on a count write', async () => {
    const { mem, ctl } = setup();
    ReferenceClock.start(ctl);
    const clock = new ReferenceClock(ctl);
    const timers = new SyntheticTimers(ctl, mem, 0, clock);
    timers.writeConfig(0, 0x2n | 0x8n | 0x1000n | (0x40n << 4n)); // periodic, auto-enable, direct mode, vector 0x40
    timers.writeCount(0, 10_000n);
    expect(timers.config(0) & 1n).toBe(1n);
    let fired = 0;
    const end = Date.now() + 30;
    while (Date.now() < end) {
      fired += timers.poll();
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(fired).toBeGreaterThanOrEqual(3);
    expect(takeHighestVector(ctl, 0)).toBe(0x40);
  });
});
