/** Messages between an x86 VM's owner and its VP thread (x86-vp-thread.ts). */
export interface X86VmThreadData {
  memoryBytes: number;
  cmdline: string;
  bios: string;
  vgaBios?: string;
  kernel: string;
  initrd?: string;
  /** Run v86 prepared with the Hyper-V enlightenments (CPUID/MSR hooks, hypercall page). */
  enlightened: boolean;
}

/** What the VP thread reports about itself (counters and the enlightenment state). */
export interface X86VpStatus {
  instructions: number;
  hostPortAccesses: number;
  enlightened: boolean;
  cpuid: number;
  rdmsr: number;
  wrmsr: number;
  hypercalls: number;
  /** HV_X64_MSR_GUEST_OS_ID and HV_X64_MSR_HYPERCALL as hex strings. */
  guestOsId: string;
  hypercallMsr: string;
  /** The first bytes of the hypercall page when it is enabled, as hex. */
  hypercallPage: string;
}

export type ToX86Vp = { type: 'input'; bytes: Uint8Array } | { type: 'status' } | { type: 'stop' };

export type FromX86Vp =
  | { type: 'started' }
  | { type: 'console'; bytes: Uint8Array }
  | { type: 'status'; status: X86VpStatus }
  /** The VP ended: the owner asked (`stop`) or the guest powered off through ACPI (`poweroff`). */
  | { type: 'stopped'; reason: 'stop' | 'poweroff'; status: X86VpStatus }
  | { type: 'error'; message: string };
