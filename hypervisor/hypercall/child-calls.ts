/**
 * The hypercalls a child partition's VP may make (input layouts: TLFS per-call
 * pages). Each handler reads the private copy of the input block the dispatcher made.
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { HV_MESSAGE_MAX_PAYLOAD, HV_VP_INDEX_SELF, HvCall } from '../../abi/hv-hypercall.ts';
import { Owner } from '../partition-control.ts';
import type { PortTable } from '../ports.ts';
import type { HandlerTable } from './dispatcher.ts';

export interface ChildCallContext {
  partitionId: number;
  vp: number;
  vpCount: number;
  ports: PortTable;
  /** Register access for this VP: returns a status and fills `out` (16 bytes) on reads. */
  getRegister(name: number, out: DataView, at: number): HvStatus;
  setRegister(name: number, value: DataView, at: number): HvStatus;
  /** Asks the root to start VP `index` at `rip` (the guest's function-table index). */
  startVp(index: number, rip: number): HvStatus;
}

const PARTITION_SELF = 0xffffffffffffffffn;
const HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY = 0x4n;

function selfPartition(ctx: ChildCallContext, id: bigint): boolean {
  return id === PARTITION_SELF || id === BigInt(ctx.partitionId);
}

function selfVp(ctx: ChildCallContext, index: number): boolean {
  return index === HV_VP_INDEX_SELF || index === ctx.vp;
}

export function childCallHandlers(ctx: ChildCallContext): HandlerTable {
  const t: HandlerTable = new Map();
  let payloadBytes: Uint8Array = new Uint8Array(0);

  t.set(HvCall.PostMessage, {
    simple: (input) => {
      const connectionId = input.getUint32(0, true);
      const type = input.getUint32(8, true);
      const size = input.getUint32(12, true);
      if (input.getUint32(4, true) !== 0 || size > HV_MESSAGE_MAX_PAYLOAD) return HvStatus.InvalidParameter;
      if (payloadBytes.buffer !== input.buffer) payloadBytes = new Uint8Array(input.buffer);
      return ctx.ports.postMessage(Owner.Child, connectionId, type, payloadBytes.subarray(16, 16 + size));
    },
  });
  t.set(HvCall.SignalEvent, {
    simple: (input) => {
      if (input.getUint16(6, true) !== 0) return HvStatus.InvalidParameter;
      return ctx.ports.signalEvent(Owner.Child, input.getUint32(0, true), input.getUint16(4, true));
    },
  });
  t.set(HvCall.GetPartitionId, {
    simple: (_input, output) => {
      output.setBigUint64(0, BigInt(ctx.partitionId), true);
      return HvStatus.Success;
    },
  });
  t.set(HvCall.NotifyLongSpinWait, { simple: () => HvStatus.Success });
  // No guest page tables exist, so there is never a translation to flush; the flags still follow the rules.
  t.set(HvCall.FlushVirtualAddressSpace, { simple: () => HvStatus.Success });
  t.set(HvCall.FlushVirtualAddressList, {
    rep: (input) => ((input.getBigUint64(8, true) & HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY) !== 0n ? HvStatus.InvalidParameter : HvStatus.Success),
  });

  const registerHeader = (input: DataView): HvStatus => {
    if (!selfPartition(ctx, input.getBigUint64(0, true))) return HvStatus.InvalidPartitionId;
    if (!selfVp(ctx, input.getUint32(8, true))) return HvStatus.InvalidVpIndex;
    if (input.getUint8(12) !== 0 || input.getUint8(13) !== 0 || input.getUint16(14, true) !== 0) return HvStatus.InvalidParameter;
    return HvStatus.Success;
  };
  t.set(HvCall.GetVpRegisters, {
    rep: (input, rep, output) => {
      const h = registerHeader(input);
      if (h !== HvStatus.Success) return h;
      return ctx.getRegister(input.getUint32(16 + rep * 4, true), output, rep * 16);
    },
  });
  t.set(HvCall.SetVpRegisters, {
    rep: (input, rep) => {
      const h = registerHeader(input);
      if (h !== HvStatus.Success) return h;
      const at = 16 + rep * 32;
      for (let i = 4; i < 16; i += 4) if (input.getUint32(at + i, true) !== 0) return HvStatus.InvalidParameter;
      return ctx.setRegister(input.getUint32(at, true), input, at + 16);
    },
  });
  t.set(HvCall.StartVirtualProcessor, {
    simple: (input) => {
      if (!selfPartition(ctx, input.getBigUint64(0, true))) return HvStatus.InvalidPartitionId;
      const index = input.getUint32(8, true);
      if (input.getUint8(12) !== 0) return HvStatus.InvalidParameter;
      if (index >= ctx.vpCount) return HvStatus.InvalidVpIndex;
      const rip = input.getBigUint64(16, true);
      if (rip > 0xffffffffn) return HvStatus.InvalidParameter;
      return ctx.startVp(index, Number(rip));
    },
  });
  return t;
}
