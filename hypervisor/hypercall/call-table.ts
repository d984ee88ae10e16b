/**
 * What the dispatcher knows of each hypercall before running it: simple or rep, whether it may be
 * fast, the input and output block sizes (for the alignment and page-crossing rules), and the
 * privilege a caller needs (TLFS per-call pages, HV_PARTITION_PRIVILEGE_MASK). A call a child partition
 * lacks the privilege for returns HV_STATUS_ACCESS_DENIED; so does every root-only call.
 */
import { HvCall } from '../../abi/hv-hypercall.ts';
import * as P from '../../abi/hv-cpuid.ts';

export interface CallSpec {
  code: number;
  name: string;
  rep: boolean;
  /** Fast (register) form allowed: input ≤ 16 bytes and no output. */
  fastOk: boolean;
  /** Fixed input header bytes. */
  inputHeader: number;
  /** Bytes per rep element of input (rep calls). */
  inputElement: number;
  /** Fixed output bytes (simple calls) or bytes per rep element of output (rep calls). */
  output: number;
  /** Privilege bit needed, in the low (0) or high (1) half of the mask; null = none. */
  privilege: { half: 0 | 1; bit: number } | null;
  /** Calls only the root partition may make (needs CreatePartitions). */
  rootOnly?: boolean;
}

const hi = (bit: number) => ({ half: 1 as const, bit });
const root = { half: 1 as const, bit: P.HV_CREATE_PARTITIONS };

function spec(code: number, name: string, s: Partial<CallSpec>): CallSpec {
  return { code, name, rep: false, fastOk: false, inputHeader: 0, inputElement: 0, output: 0, privilege: null, ...s };
}

/** HV_INITIAL_VP_CONTEXT is 224 bytes (Linux hvgdk.h, struct hv_initial_vp_context). */
const START_VP_INPUT = 16 + 224;

export const CALLS: ReadonlyMap<number, CallSpec> = new Map(
  [
    spec(HvCall.FlushVirtualAddressSpace, 'HvCallFlushVirtualAddressSpace', { inputHeader: 24 }),
    spec(HvCall.FlushVirtualAddressList, 'HvCallFlushVirtualAddressList', { rep: true, inputHeader: 24, inputElement: 8 }),
    spec(HvCall.NotifyLongSpinWait, 'HvCallNotifyLongSpinWait', { fastOk: true, inputHeader: 8 }),
    spec(HvCall.PostMessage, 'HvCallPostMessage', { inputHeader: 256, privilege: hi(P.HV_POST_MESSAGES) }),
    spec(HvCall.SignalEvent, 'HvCallSignalEvent', { fastOk: true, inputHeader: 8, privilege: hi(P.HV_SIGNAL_EVENTS) }),
    spec(HvCall.GetPartitionId, 'HvCallGetPartitionId', { output: 8, privilege: hi(P.HV_ACCESS_PARTITION_ID) }),
    spec(HvCall.GetVpRegisters, 'HvCallGetVpRegisters', { rep: true, inputHeader: 16, inputElement: 4, output: 16, privilege: hi(P.HV_ACCESS_VP_REGISTERS) }),
    spec(HvCall.SetVpRegisters, 'HvCallSetVpRegisters', { rep: true, inputHeader: 16, inputElement: 32, privilege: hi(P.HV_ACCESS_VP_REGISTERS) }),
    spec(HvCall.StartVirtualProcessor, 'HvCallStartVirtualProcessor', { inputHeader: START_VP_INPUT, privilege: hi(P.HV_START_VIRTUAL_PROCESSOR) }),
    // Root-only calls: a child gets ACCESS_DENIED; the root makes them through RootHypercalls.
    spec(HvCall.CreatePartition, 'HvCallCreatePartition', { inputHeader: 56, output: 8, privilege: root, rootOnly: true }),
    spec(HvCall.InitializePartition, 'HvCallInitializePartition', { fastOk: true, inputHeader: 8, privilege: root, rootOnly: true }),
    spec(HvCall.FinalizePartition, 'HvCallFinalizePartition', { fastOk: true, inputHeader: 8, privilege: root, rootOnly: true }),
    spec(HvCall.DeletePartition, 'HvCallDeletePartition', { fastOk: true, inputHeader: 8, privilege: root, rootOnly: true }),
    spec(HvCall.GetPartitionProperty, 'HvCallGetPartitionProperty', { inputHeader: 16, output: 8, privilege: root, rootOnly: true }),
    spec(HvCall.SetPartitionProperty, 'HvCallSetPartitionProperty', { inputHeader: 24, privilege: root, rootOnly: true }),
    spec(HvCall.GetNextChildPartition, 'HvCallGetNextChildPartition', { inputHeader: 16, output: 8, privilege: root, rootOnly: true }),
    spec(HvCall.CreateVp, 'HvCallCreateVp', { inputHeader: 40, privilege: root, rootOnly: true }),
    spec(HvCall.DeleteVp, 'HvCallDeleteVp', { inputHeader: 16, privilege: root, rootOnly: true }),
    spec(HvCall.InstallIntercept, 'HvCallInstallIntercept', { inputHeader: 24, privilege: root, rootOnly: true }),
    spec(HvCall.AssertVirtualInterrupt, 'HvCallAssertVirtualInterrupt', { inputHeader: 32, privilege: root, rootOnly: true }),
    spec(HvCall.CreatePort, 'HvCallCreatePort', { inputHeader: 56, privilege: hi(P.HV_CREATE_PORT), rootOnly: true }),
    spec(HvCall.ConnectPort, 'HvCallConnectPort', { inputHeader: 72, privilege: hi(P.HV_CONNECT_PORT), rootOnly: true }),
    spec(HvCall.DeletePort, 'HvCallDeletePort', { inputHeader: 16, privilege: hi(P.HV_CREATE_PORT), rootOnly: true }),
    spec(HvCall.DisconnectPort, 'HvCallDisconnectPort', { inputHeader: 16, privilege: hi(P.HV_CONNECT_PORT), rootOnly: true }),
    spec(HvCall.DepositMemory, 'HvCallDepositMemory', { rep: true, inputHeader: 8, inputElement: 8, privilege: hi(P.HV_ACCESS_MEMORY_POOL), rootOnly: true }),
    spec(HvCall.WithdrawMemory, 'HvCallWithdrawMemory', { rep: true, inputHeader: 16, output: 8, privilege: hi(P.HV_ACCESS_MEMORY_POOL), rootOnly: true }),
    spec(HvCall.MapGpaPages, 'HvCallMapGpaPages', { rep: true, inputHeader: 24, inputElement: 8, privilege: root, rootOnly: true }),
    spec(HvCall.UnmapGpaPages, 'HvCallUnmapGpaPages', { rep: true, inputHeader: 24, privilege: root, rootOnly: true }),
  ].map((s) => [s.code, s]),
);

export function hasPrivilege(s: CallSpec, privLo: number, privHi: number): boolean {
  if (!s.privilege) return true;
  const mask = s.privilege.half === 0 ? privLo : privHi;
  return (mask & s.privilege.bit) !== 0;
}
