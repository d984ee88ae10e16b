// Synthetic MSRs (TLFS; Linux include/hyperv/hvgdk_mini.h).
export const HV_X64_MSR_GUEST_OS_ID = 0x40000000;
export const HV_X64_MSR_HYPERCALL = 0x40000001;
export const HV_X64_MSR_VP_INDEX = 0x40000002;
export const HV_X64_MSR_RESET = 0x40000003;
export const HV_X64_MSR_VP_RUNTIME = 0x40000010;
export const HV_X64_MSR_TIME_REF_COUNT = 0x40000020;
export const HV_X64_MSR_REFERENCE_TSC = 0x40000021;
export const HV_X64_MSR_TSC_FREQUENCY = 0x40000022;
export const HV_X64_MSR_APIC_FREQUENCY = 0x40000023;
export const HV_X64_MSR_SCONTROL = 0x40000080;
export const HV_X64_MSR_SVERSION = 0x40000081;
export const HV_X64_MSR_SIEFP = 0x40000082;
export const HV_X64_MSR_SIMP = 0x40000083;
export const HV_X64_MSR_EOM = 0x40000084;
export const HV_X64_MSR_SINT0 = 0x40000090;
export const HV_X64_MSR_SINT15 = 0x4000009f;
export const HV_X64_MSR_STIMER0_CONFIG = 0x400000b0;
export const HV_X64_MSR_STIMER3_COUNT = 0x400000b7;
export const HV_X64_MSR_CRASH_P0 = 0x40000100;
export const HV_X64_MSR_CRASH_CTL = 0x40000105;

// SINTx register: 7:0 vector, 16 masked, 17 AutoEOI, 18 polling.
export const HV_SINT_MASKED = 0x10000;
export const HV_SINT_AUTO_EOI = 0x20000;
export const HV_SINT_POLLING = 0x40000;
export const HV_SINT_RESET_VALUE = 0x10000;

// STIMERn_CONFIG: 0 enable, 1 periodic, 2 lazy, 3 auto-enable, 11:4 APIC vector, 12 direct,
// 19:16 SINTx, 15:13 and 63:20 RsvdZ.
export const HV_STIMER_ENABLE = 0x1;
export const HV_STIMER_PERIODIC = 0x2;
export const HV_STIMER_LAZY = 0x4;
export const HV_STIMER_AUTO_ENABLE = 0x8;
export const HV_STIMER_DIRECT = 0x1000;
export const HV_STIMER_SINT_SHIFT = 16;

// Statically assigned SINTs (Linux hvgdk_mini.h).
export const HV_SINT_INTERCEPT = 0;
export const HV_SINT_VMBUS = 2;

// Hypervisor message types (TLFS hv_message_type.md).
export const HVMSG_NONE = 0x00000000;
export const HVMSG_TIMER_EXPIRED = 0x80000010;
export const HVMSG_X64_IO_PORT_INTERCEPT = 0x80010000;
export const HVMSG_X64_MSR_INTERCEPT = 0x80010001;
export const HVMSG_X64_CPUID_INTERCEPT = 0x80010002;
export const HVMSG_GPA_INTERCEPT = 0x80000001;
