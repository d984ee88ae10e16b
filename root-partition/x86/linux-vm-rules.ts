/**
 * What a VM definition may ask of the built-in Linux guest (`guest: 'linux'`), and why the rest is
 * refused. The guest runs on the x86 VP kind: one 32-bit processor emulated by v86, whose guest RAM
 * is v86's own Wasm memory, not the partition's shared memory. So nothing that captures or moves a
 * running VM's state applies (save, running checkpoints, live migration, pause), and neither do
 * the CPU reserve, maximum and weight, which the hypervisor enforces through the preemption points
 * of a WebAssembly guest image that v86 does not have. Pure: the definition schema and the worker
 * both ask.
 */

/** v86 emulates one processor. */
export const LINUX_VM_VP_COUNT = 1;
/** Below this Debian's kernel with the initramfs does not reach /init. */
export const LINUX_VM_MIN_MEMORY = 64 << 20;
/** The most a 32-bit guest without PAE addresses as low memory here; v86's own heap holds it. */
export const LINUX_VM_MAX_MEMORY = 768 << 20;
/** Device kinds a Linux VM can have today (one SCSI controller on storvsp, the integration services, synthetic network adapters on netvsp). */
export const LINUX_VM_DEVICE_KINDS = ['scsi-controller', 'integration-services', 'network-adapter'] as const;

/** Why an operation that captures the VM's state cannot be done for a Linux VM. */
export const LINUX_VM_NOT_CAPTURABLE =
  "the Linux guest runs on the x86 VP kind (v86), whose guest memory is v86's own rather than the partition's shared memory, so its state cannot be captured";

/** The operations refused for a running Linux VM, with the sentence that says why. */
export function linuxVmRefusal(operation: 'save' | 'checkpoint' | 'pause' | 'migrate' | 'merge'): string {
  switch (operation) {
    case 'save':
      return `a Linux VM cannot be saved: ${LINUX_VM_NOT_CAPTURABLE}; shut it down (vm stop) or turn it off`;
    case 'checkpoint':
      return `a running Linux VM cannot be checkpointed: ${LINUX_VM_NOT_CAPTURABLE}; turn it off to checkpoint its disks`;
    case 'pause':
      return 'a Linux VM cannot be paused: pausing is not built for the x86 VP kind (v86 runs the processor on its own thread loop)';
    case 'migrate':
      return `a Linux VM cannot be migrated live: ${LINUX_VM_NOT_CAPTURABLE}`;
    case 'merge':
      return 'a running Linux VM cannot merge a disk while it runs (the x86 VP kind has no live merge); turn it off first';
  }
}

interface LinuxDefinitionView {
  memoryBytes: number;
  vpCount: number;
  automaticStopAction: string;
  devices: readonly { kind: string; [k: string]: unknown }[];
  cpuReserve?: number;
  cpuMaximum?: number;
  cpuWeight?: number;
}

/** Each setting of a `guest: 'linux'` definition that the Linux guest cannot have, with why. */
export function linuxDefinitionProblems(d: LinuxDefinitionView): string[] {
  const p: string[] = [];
  if (d.vpCount !== LINUX_VM_VP_COUNT) p.push(`vpCount: must be ${LINUX_VM_VP_COUNT} for the Linux guest (v86 emulates one processor)`);
  if (d.memoryBytes < LINUX_VM_MIN_MEMORY || d.memoryBytes > LINUX_VM_MAX_MEMORY)
    p.push(`memoryBytes: must be from ${LINUX_VM_MIN_MEMORY >> 20} MiB to ${LINUX_VM_MAX_MEMORY >> 20} MiB for the Linux guest`);
  if (d.automaticStopAction !== 'turn-off')
    p.push(`automaticStopAction: must be 'turn-off' for the Linux guest (${LINUX_VM_NOT_CAPTURABLE}, so it cannot be saved)`);
  for (const k of ['cpuReserve', 'cpuMaximum', 'cpuWeight'] as const) {
    if (d[k] !== undefined)
      p.push(
        `${k}: not available for the Linux guest (CPU shares are enforced through a WebAssembly image's preemption points; v86 runs its processor unmetered)`,
      );
  }
  d.devices.forEach((e, i) => {
    if (!(LINUX_VM_DEVICE_KINDS as readonly string[]).includes(e.kind))
      p.push(
        `devices[${i}]: a ${e.kind} is not available to the Linux guest yet (it has ${LINUX_VM_DEVICE_KINDS.slice(0, -1).join(', ')} and ${LINUX_VM_DEVICE_KINDS.at(-1)})`,
      );
  });
  d.devices.forEach((e, i) => {
    if (e.kind === 'network-adapter' && e.legacy === true)
      p.push(`devices[${i}]: a legacy network adapter is not available to the Linux guest (its PCI bus is v86's); use a synthetic one (hv_netvsc)`);
  });
  if (d.devices.filter((e) => e.kind === 'scsi-controller').length > 1) p.push('devices: the Linux guest has one SCSI controller');
  return p;
}
