/**
 * The built-in Linux guest (scripts/build-linux-guest.ts) as an x86 VM: Debian's unmodified i686
 * kernel with a busybox initramfs, its console on COM1.
 */
import { loadLinuxGuest } from '../../hypervisor/x86/linux-guest-files.ts';
import { X86Vm } from './x86-vm.ts';

/**
 * The kernel command line: the console on COM1; `noisapnp` skips a 1.5 s ISA PnP scan there is
 * nothing to find for; `tsc=reliable` keeps the TSC clocksource without the watchdog, which an
 * emulated CPU's uneven speed would trip.
 */
export const LINUX_GUEST_CMDLINE = 'console=ttyS0 noisapnp tsc=reliable';

export interface LinuxGuestOptions {
  memoryBytes?: number;
  /** Appended to LINUX_GUEST_CMDLINE. */
  cmdline?: string;
}

export const LINUX_GUEST_DEFAULT_MEMORY = 128 << 20;

/** Starts the built-in Linux guest, or throws with why it is not available. */
export function startLinuxGuest(opts: LinuxGuestOptions = {}): X86Vm {
  const g = loadLinuxGuest();
  if ('unavailable' in g) throw new Error(`the Linux guest is not available: ${g.unavailable}`);
  const m = g.manifest;
  return new X86Vm({
    memoryBytes: opts.memoryBytes ?? LINUX_GUEST_DEFAULT_MEMORY,
    cmdline: [LINUX_GUEST_CMDLINE, opts.cmdline].filter(Boolean).join(' '),
    bios: m.bios,
    vgaBios: m.vgaBios,
    kernel: m.kernel,
    initrd: m.initramfs,
  });
}
