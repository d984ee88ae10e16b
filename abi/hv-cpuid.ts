// Hypervisor CPUID leaves (TLFS feature-discovery.md; Linux arch/x86/kernel/cpu/mshyperv.c).
export const HV_CPUID_VENDOR_AND_MAX_FUNCTIONS = 0x40000000;
export const HV_CPUID_INTERFACE = 0x40000001;
export const HV_CPUID_VERSION = 0x40000002;
export const HV_CPUID_FEATURES = 0x40000003;
export const HV_CPUID_ENLIGHTENMENT_INFO = 0x40000004;
export const HV_CPUID_IMPLEMENT_LIMITS = 0x40000005;
export const HV_CPUID_HARDWARE_FEATURES = 0x40000006;
export const HV_CPUID_MAX_LEAF = 0x40000006;

// "Microsoft Hv" in EBX, ECX, EDX; "Hv#1" in EAX of 0x40000001.
export const HV_VENDOR_EBX = 0x7263694d;
export const HV_VENDOR_ECX = 0x666f736f;
export const HV_VENDOR_EDX = 0x76482074;
export const HV_INTERFACE_SIGNATURE = 0x31237648;

// CPUID.1:ECX bit 31: hypervisor present.
export const CPUID_1_ECX_HYPERVISOR = 0x80000000;

// Partition privilege mask, low half (CPUID 0x40000003 EAX).
export const HV_ACCESS_VP_RUNTIME_REG = 0x1;
export const HV_ACCESS_PARTITION_REFERENCE_COUNTER = 0x2;
export const HV_ACCESS_SYNIC_REGS = 0x4;
export const HV_ACCESS_SYNTHETIC_TIMER_REGS = 0x8;
export const HV_ACCESS_INTR_CTRL_REGS = 0x10;
export const HV_ACCESS_HYPERCALL_MSRS = 0x20;
export const HV_ACCESS_VP_INDEX = 0x40;
export const HV_ACCESS_RESET_REG = 0x80;
export const HV_ACCESS_STATS_REG = 0x100;
export const HV_ACCESS_PARTITION_REFERENCE_TSC = 0x200;
export const HV_ACCESS_GUEST_IDLE_REG = 0x400;
export const HV_ACCESS_FREQUENCY_REGS = 0x800;
// High half (CPUID 0x40000003 EBX; mask bits 63:32).
export const HV_CREATE_PARTITIONS = 0x1;
export const HV_ACCESS_PARTITION_ID = 0x2;
export const HV_ACCESS_MEMORY_POOL = 0x4;
export const HV_ADJUST_MESSAGE_BUFFERS = 0x8;
export const HV_POST_MESSAGES = 0x10;
export const HV_SIGNAL_EVENTS = 0x20;
export const HV_CREATE_PORT = 0x40;
export const HV_CONNECT_PORT = 0x80;
export const HV_ACCESS_STATS = 0x100;
export const HV_DEBUGGING = 0x800;
export const HV_CPU_MANAGEMENT = 0x1000;
export const HV_ACCESS_VSM = 0x10000;
export const HV_ACCESS_VP_REGISTERS = 0x20000;
export const HV_ENABLE_EXTENDED_HYPERCALLS = 0x100000;
export const HV_START_VIRTUAL_PROCESSOR = 0x200000;
