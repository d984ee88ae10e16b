/** Messages between an x86 VM's owner and its VP thread (x86-vp-thread.ts). */
export interface X86VmThreadData {
  memoryBytes: number;
  cmdline: string;
  bios: string;
  vgaBios?: string;
  kernel: string;
  initrd?: string;
}

export type ToX86Vp = { type: 'input'; bytes: Uint8Array } | { type: 'stop' };

export type FromX86Vp =
  | { type: 'started' }
  | { type: 'console'; bytes: Uint8Array }
  | { type: 'stopped'; instructions: number; hostPortAccesses: number }
  | { type: 'error'; message: string };
