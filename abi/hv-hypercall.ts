// Hypercall codes and control-word layout (TLFS hypercall-interface.md; Linux hvgdk_mini.h HVCALL_*).
export enum HvCall {
  FlushVirtualAddressSpace = 0x0002,
  FlushVirtualAddressList = 0x0003,
  NotifyLongSpinWait = 0x0008,
  CreatePartition = 0x0040,
  InitializePartition = 0x0041,
  FinalizePartition = 0x0042,
  DeletePartition = 0x0043,
  GetPartitionProperty = 0x0044,
  SetPartitionProperty = 0x0045,
  GetPartitionId = 0x0046,
  GetNextChildPartition = 0x0047,
  DepositMemory = 0x0048,
  WithdrawMemory = 0x0049,
  GetMemoryBalance = 0x004a,
  MapGpaPages = 0x004b,
  UnmapGpaPages = 0x004c,
  InstallIntercept = 0x004d,
  CreateVp = 0x004e,
  DeleteVp = 0x004f,
  GetVpRegisters = 0x0050,
  SetVpRegisters = 0x0051,
  DeletePort = 0x0058,
  DisconnectPort = 0x005b,
  PostMessage = 0x005c,
  SignalEvent = 0x005d,
  AssertVirtualInterrupt = 0x0094,
  CreatePort = 0x0095,
  ConnectPort = 0x0096,
  StartVirtualProcessor = 0x0099,
}

// Control word (input value) fields: bits 15:0 code, 16 fast, 26:17 variable header size,
// 30:27 RsvdZ, 31 nested, 43:32 rep count, 47:44 RsvdZ, 59:48 rep start index, 63:60 RsvdZ.
// The guest passes the word as two u32 halves (lo = bits 31:0, hi = bits 63:32).
export const HV_HYPERCALL_FAST_BIT = 0x10000;
export const HV_HYPERCALL_VARHEAD_SHIFT = 17;
export const HV_HYPERCALL_VARHEAD_MASK = 0x3ff;
export const HV_HYPERCALL_NESTED_BIT = 0x80000000;
export const HV_HYPERCALL_RSVD_LO_MASK = 0x78000000; // bits 30:27
export const HV_HYPERCALL_REP_COUNT_MASK = 0xfff; // hi bits 11:0  = bits 43:32
export const HV_HYPERCALL_RSVD_HI_MASK = 0xf000f000; // hi bits 15:12 and 31:28 = bits 47:44, 63:60
export const HV_HYPERCALL_REP_START_SHIFT = 16; // hi bits 27:16 = bits 59:48

// Result value as the platform returns it (docs/guest-abi.md §5.3): bits 15:0 HV_STATUS,
// bits 27:16 reps completed (TLFS result bits 43:32, folded into the 32-bit return).
export const HV_RESULT_STATUS_MASK = 0xffff;
export const HV_RESULT_REPS_SHIFT = 16;

export const HV_PARTITION_ID_INVALID = 0;
export const HV_VP_INDEX_SELF = 0xfffffffe;
export const HV_ANY_VP = 0xffffffff;
export const HV_PAGE_SIZE = 4096;
export const HV_MESSAGE_SIZE = 256;
export const HV_MESSAGE_MAX_PAYLOAD = 240;
export const HV_PORT_MESSAGE_BUFFER_COUNT = 16;
export const HV_EVENT_FLAGS_COUNT = 2048;
export const HV_SYNIC_SINT_COUNT = 16;
export const HV_SYNIC_STIMER_COUNT = 4;
export const HV_PORT_ID_MASK = 0xffffff;

export enum HvPortType {
  Message = 1,
  Event = 2,
  Monitor = 3,
  Doorbell = 4,
}
