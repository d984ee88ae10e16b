/**
 * The built-in Linux guest (scripts/build-linux-guest.ts) as an x86 VM: Debian's unmodified i686
 * kernel with a busybox initramfs, its console on COM1.
 */
import type { DiskConfig, IntegrationServicesConfig, NicConfig } from '../vmwp/device-config.ts';
import { loadLinuxGuest, type LinuxGuestManifest } from './linux-guest-files.ts';
import { X86Vm } from './x86-vm.ts';

/**
 * The kernel command line: the console on COM1, then what saves boot time on an emulated CPU
 * (measured with initcall_debug): `noisapnp` skips an ISA PnP scan with nothing to find;
 * `cryptomgr.notests` skips the crypto self-tests; the initcalls left out parse the built-in
 * X.509 certificates (modules then load unverified, which Debian's kernel allows, tainting it),
 * set up kprobe tracing and self-test KDF108 — together most of the boot time. `tsc=reliable`
 * keeps the TSC clocksource without the watchdog, which an emulated CPU's uneven speed trips.
 */
export const LINUX_GUEST_CMDLINE =
  'console=ttyS0 noisapnp cryptomgr.notests tsc=reliable initcall_blacklist=load_system_certificate_list,init_kprobe_trace,crypto_kdf108_init';

export interface LinuxGuestOptions {
  memoryBytes?: number;
  /** Appended to LINUX_GUEST_CMDLINE. */
  cmdline?: string;
  /** Hyper-V enlightenments (default on); off, the kernel sees v86's own CPU, as on bare hardware. */
  enlightened?: boolean;
  /** Disk images for the synthetic SCSI controller (needs the enlightenments); /init then loads hv_storvsc and sd_mod. */
  scsi?: (string | DiskConfig)[];
  /** The guest's files (default: the built guest's manifest). */
  manifest?: LinuxGuestManifest;
  /** A VMMS-managed VM: where its disks may come from, its integration services, and their status reported as it changes. */
  storageRoots?: string[];
  integrationServices?: IntegrationServicesConfig;
  reportIntegration?: boolean;
  /** Synthetic network adapters (needs the enlightenments); /init then loads hv_netvsc. */
  nics?: NicConfig[];
  /** Disk images on our emulated PIIX4 IDE controller; /init then loads libata, ata_piix and sd_mod. */
  ide?: string[];
}

/** On the kernel command line when the VM has a synthetic NIC: /init loads hv_netvsc only then (boot time). */
export const LINUX_GUEST_NETVSC_FLAG = 'tsvisor.netvsc';

/** On the kernel command line when the VM has a SCSI controller: /init loads the storvsc stack only then (boot time). */
export const LINUX_GUEST_STORVSC_FLAG = 'tsvisor.storvsc';
/** On the kernel command line when the VM has an IDE disk: /init loads ata_piix only then. */
export const LINUX_GUEST_IDE_FLAG = 'tsvisor.ide';

export const LINUX_GUEST_DEFAULT_MEMORY = 128 << 20;

/** Starts the built-in Linux guest, or throws with why it is not available. */
export function startLinuxGuest(opts: LinuxGuestOptions = {}): X86Vm {
  const g = opts.manifest ? { manifest: opts.manifest } : loadLinuxGuest();
  if ('unavailable' in g) throw new Error(`the Linux guest is not available: ${g.unavailable}`);
  const m = g.manifest;
  const scsi = opts.scsi ?? [];
  const ide = opts.ide ?? [];
  const enlightened = opts.enlightened ?? true;
  if (scsi.length > 0 && !enlightened) throw new Error('a SCSI disk needs the Hyper-V enlightenments (VMBus)');
  return new X86Vm({
    memoryBytes: opts.memoryBytes ?? LINUX_GUEST_DEFAULT_MEMORY,
    cmdline: [
      LINUX_GUEST_CMDLINE,
      scsi.length > 0 ? LINUX_GUEST_STORVSC_FLAG : '',
      ide.length > 0 ? LINUX_GUEST_IDE_FLAG : '',
      opts.nics?.length ? LINUX_GUEST_NETVSC_FLAG : '',
      opts.cmdline,
    ]
      .filter(Boolean)
      .join(' '),
    scsi,
    ide,
    bios: m.bios,
    vgaBios: m.vgaBios,
    kernel: m.kernel,
    initrd: m.initramfs,
    enlightened,
    ...(opts.storageRoots ? { storageRoots: opts.storageRoots } : {}),
    ...(opts.integrationServices ? { integrationServices: opts.integrationServices } : {}),
    ...(opts.reportIntegration ? { reportIntegration: true } : {}),
    ...(opts.nics?.length ? { nics: opts.nics } : {}),
  });
}
