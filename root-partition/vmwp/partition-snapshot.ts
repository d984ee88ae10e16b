/**
 * Captures a parked partition's hypervisor state and puts it back into a fresh partition. The
 * control block is copied whole (SynIC registers and message queues, timers, registers, ports);
 * the words that describe the *running* threads of the saving process — requested state, parked
 * VP count, VP run states, the doorbell — are reset, and the reference counter is restarted at
 * the value it was frozen at, so guest time does not jump over the time spent saved.
 */
import type { Partition } from '../../hypervisor/partition.ts';
import {
  P_DOORBELL, P_PARTITION_ID, P_PAUSED_VPS, P_REF_FROZEN_AT, P_REQUESTED_STATE, RequestedState, VP_RUN_STATE, VpRunState, vpBase,
} from '../../hypervisor/partition-control.ts';
import { ReferenceClock } from '../../hypervisor/reference-time.ts';

export interface PartitionSnapshot {
  control: Uint8Array;
  vpCount: number;
  referenceTicks: number;
}

/** Only valid while the partition is paused (Partition.pause resolved true): the clock is frozen. */
export function capturePartition(p: Partition): PartitionSnapshot {
  const frozen = Atomics.load(p.ctl.i64, P_REF_FROZEN_AT >> 3);
  if (frozen < 0n) throw new Error('capturePartition needs a paused partition (the reference clock is running)');
  return { control: p.ctl.u8.slice(), vpCount: p.vpCount, referenceTicks: Number(frozen) };
}

/** Call after loadImage and before start('resume'). */
export function restorePartition(p: Partition, s: PartitionSnapshot): void {
  if (s.vpCount !== p.vpCount || s.control.length !== p.ctl.u8.length) {
    throw new Error(`saved control block is for ${s.vpCount} VPs (${s.control.length} bytes); the partition has ${p.vpCount} VPs (${p.ctl.u8.length} bytes)`);
  }
  const id = p.ctl.i32[P_PARTITION_ID >> 2];
  p.ctl.u8.set(s.control);
  p.ctl.i32[P_PARTITION_ID >> 2] = id;
  p.ctl.i32[P_REQUESTED_STATE >> 2] = RequestedState.Run;
  p.ctl.i32[P_PAUSED_VPS >> 2] = 0;
  p.ctl.i32[P_DOORBELL >> 2] = 0;
  for (let vp = 0; vp < p.vpCount; vp++) p.ctl.i32[(vpBase(vp) + VP_RUN_STATE) >> 2] = VpRunState.NotStarted;
  ReferenceClock.start(p.ctl, BigInt(s.referenceTicks));
}
