/**
 * `tsvisor run linux`: boots the built-in Linux guest (Debian's unmodified i686 kernel with a
 * busybox initramfs, scripts/build-linux-guest.ts) on the x86 VP kind, streams COM1 to stdout and
 * stdin to COM1. Ends when the guest powers off (`poweroff` in its shell) or when the user
 * interrupts (the VM is turned off). SIGTERM asks the guest to shut down through the shutdown
 * integration service (hv_utils), as Stop-VM without -TurnOff does; with --counters, the VP's counters and enlightenment state
 * go to stderr. With --nic, a synthetic NIC (hv_netvsc) on a switch of its own with passt as the
 * uplink (run-linux-network.ts).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startLinuxGuest } from '../x86/linux-guest-vm.ts';
import type { X86VmEnd } from '../x86/x86-vm.ts';
import { X86_IDE_MAX_DISKS } from '../x86/x86-ide.ts';
import { CommandFailure } from './management-session.ts';
import { startRunNetwork, type RunNetwork } from './run-linux-network.ts';

export interface RunLinuxOptions {
  memoryBytes: number;
  cmdline: string;
  counters?: boolean;
  /** Run v86's own CPU, without the Hyper-V enlightenments. */
  noEnlightenments?: boolean;
  /** Disk images on the synthetic SCSI controller (hv_storvsc: /dev/sda, /dev/sdb, …). */
  scsi?: string[];
  /** Disk images on the emulated PIIX4 IDE controller (ata_piix: /dev/sdX through libata). */
  ide?: string[];
  /** A synthetic NIC (hv_netvsc: eth0) with passt's user-mode networking behind it. */
  nic?: boolean;
}

export async function runLinuxGuest(opts: RunLinuxOptions): Promise<number> {
  if (opts.memoryBytes < 32 * 2 ** 20 || opts.memoryBytes > 2 * 2 ** 30) {
    throw new CommandFailure('RUN', 6, 'the Linux guest needs between 32M and 2G of memory');
  }
  const scsi = (opts.scsi ?? []).map((f) => resolve(f));
  const ide = (opts.ide ?? []).map((f) => resolve(f));
  for (const f of [...scsi, ...ide]) if (!existsSync(f)) throw new CommandFailure('RUN', 6, `there is no disk image ${f}`);
  if (ide.length > X86_IDE_MAX_DISKS) throw new CommandFailure('RUN', 6, `the IDE controller takes at most ${X86_IDE_MAX_DISKS} disks`);
  if (opts.nic && opts.noEnlightenments) throw new CommandFailure('RUN', 6, 'a synthetic NIC needs the Hyper-V enlightenments (VMBus)');
  const log = (message: string) => process.stderr.write(`[tsvisor] ${message}\n`);
  let net: RunNetwork | undefined;
  let vm: ReturnType<typeof startLinuxGuest>;
  try {
    if (opts.nic) net = await startRunNetwork(log);
    vm = startLinuxGuest({
      memoryBytes: opts.memoryBytes,
      cmdline: opts.cmdline,
      enlightened: !opts.noEnlightenments,
      scsi,
      ide,
      ...(net ? { nics: [net.nic] } : {}),
    });
  } catch (e) {
    await net?.close();
    throw new CommandFailure('RUN', 6, (e as Error).message);
  }
  vm.on('console', (bytes) => process.stdout.write(bytes));
  vm.on('error', () => undefined); // kept in vm.error, reported below
  vm.on('log', log);
  const onInput = (chunk: Buffer) => vm.input(chunk);
  process.stdin.on('data', onInput);
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    void vm.stop();
  };
  process.once('SIGINT', onSigint);
  const onSigterm = () => {
    process.stderr.write('[tsvisor] asking the guest to shut down (shutdown integration service)\n');
    void vm.shutdown().then(
      (outcome) => {
        process.stderr.write(`[tsvisor] the guest's answer: ${outcome}\n`);
        if (outcome !== 'shut-down') void vm.stop();
      },
      () => undefined,
    );
  };
  process.once('SIGTERM', onSigterm);
  const end: X86VmEnd = await vm.whenEnded();
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
  process.stdin.off('data', onInput);
  process.stdin.destroy();
  await net?.close();
  if (end.reason === 'poweroff') process.stderr.write('[tsvisor] VP 0: the guest powered off\n');
  else if (interrupted) process.stderr.write('[tsvisor] interrupted: the Linux VM was turned off\n');
  if (vm.error) process.stderr.write(`[tsvisor] ${vm.error.message}\n`);
  if (opts.counters && end.status) process.stderr.write(`[tsvisor] VP 0 counters ${JSON.stringify(end.status)}\n`);
  return vm.error ? 1 : 0;
}
