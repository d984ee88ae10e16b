/**
 * A partition's properties as the root reads and sets them (HvCallGetPartitionProperty,
 * HvCallSetPartitionProperty, TLFS per-call pages), and its privilege mask in the control block.
 */
import * as P from '../abi/hv-cpuid.ts';
import { HvStatus } from '../abi/hv-status.ts';
import { P_GUEST_OS_ID, P_PRIV_HI, P_PRIV_LO, P_REF_FROZEN_AT, type PartitionControl } from './partition-control.ts';
import { ReferenceClock } from './reference-time.ts';

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

export function readPrivileges(ctl: PartitionControl): { lo: number; hi: number } {
  return { lo: ctl.i32[P_PRIV_LO >> 2] >>> 0, hi: ctl.i32[P_PRIV_HI >> 2] >>> 0 };
}

/** CreatePartitions is the root's alone: a child never holds it, whatever it is configured with. */
export function writePrivileges(ctl: PartitionControl, lo: number, hi: number): void {
  ctl.i32[P_PRIV_LO >> 2] = lo;
  ctl.i32[P_PRIV_HI >> 2] = hi & ~P.HV_CREATE_PARTITIONS;
}

/** HvCallGetPartitionProperty (TLFS per-call page); `created`: the partition is not initialized yet. */
export function getPartitionProperty(ctl: PartitionControl, created: boolean, code: number): { status: HvStatus; value: bigint } {
  switch (code) {
    case PartitionProperty.PrivilegeFlags: {
      const { lo, hi } = readPrivileges(ctl);
      return { status: HvStatus.Success, value: (BigInt(hi) << 32n) | BigInt(lo) };
    }
    case PartitionProperty.GuestOsId:
      return { status: HvStatus.Success, value: BigInt.asUintN(64, ctl.i64[P_GUEST_OS_ID >> 3]) };
    case PartitionProperty.ReferenceTime:
      if (created) return { status: HvStatus.InvalidPartitionState, value: 0n };
      return { status: HvStatus.Success, value: BigInt(new ReferenceClock(ctl).now()) };
    case PartitionProperty.TimeFreeze:
      return { status: HvStatus.Success, value: Atomics.load(ctl.i64, P_REF_FROZEN_AT >> 3) >= 0n ? 1n : 0n };
    default:
      return { status: HvStatus.UnknownProperty, value: 0n };
  }
}

/** HvCallSetPartitionProperty. PrivilegeFlags is early: settable only before initialization. */
export function setPartitionProperty(ctl: PartitionControl, created: boolean, code: number, value: bigint): HvStatus {
  switch (code) {
    case PartitionProperty.PrivilegeFlags:
      if (!created) return HvStatus.InvalidPartitionState;
      writePrivileges(ctl, Number(value & 0xffffffffn) | 0, Number((value >> 32n) & 0xffffffffn) | 0);
      return HvStatus.Success;
    case PartitionProperty.TimeFreeze:
      if (created) return HvStatus.InvalidPartitionState;
      if (value === 1n) ReferenceClock.freeze(ctl);
      else if (value === 0n) ReferenceClock.thaw(ctl);
      else return HvStatus.PropertyValueOutOfRange;
      return HvStatus.Success;
    case PartitionProperty.GuestOsId:
    case PartitionProperty.ReferenceTime:
      return HvStatus.InvalidParameter; // read-only here: the guest owns its OS id, time only moves forward
    default:
      return HvStatus.UnknownProperty;
  }
}
