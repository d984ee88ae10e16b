/**
 * The initramfs's /init: mounts the kernel file systems, loads hv_vmbus and hv_utils when the
 * firmware describes a VMBus device (ACPI _HID "VMBUS"; without one hv_vmbus waits 5 s and gives
 * up, drivers/hv/vmbus_drv.c hv_acpi_init), prints a marker the host waits for, and gives a shell
 * on the console; hv_kvp_daemon when the build included it (kvp-daemon.ts); hv_netvsc with
 * `tsvisor.netvsc` (a synthetic NIC); hv_storvsc and sd_mod when the kernel command line has
 * `tsvisor.storvsc` (the host adds it with a SCSI disk), and libata, ata_piix and sd_mod with
 * `tsvisor.ide` (an IDE disk). Every module costs boot time on an emulated CPU, so each set loads
 * only when asked for; all are in /lib/modules, with their dependency order in
 * /lib/modules/load-order.
 */
import { LINUX_GUEST_HOSTNAME } from './kvp-daemon.ts';

/** libata and ata_piix, after scsi_mod and before sd_mod: the IDE disk as /dev/sdX (linux-guest-files.ts lists ata_piix). */
export const IDE_MODULES = ['libata', 'ata_piix'] as const;

/** hv_storvsc and the SCSI disk driver with their dependencies, in load order (linux-guest-files.ts lists the same). */
export const STORVSC_MODULES = [
  'scsi_common',
  'scsi_mod',
  'scsi_transport_fc',
  'hv_storvsc',
  'crct10dif_common',
  'crc_t10dif',
  'crc64',
  'crc64_rocksoft',
  't10_pi',
  'sd_mod',
] as const;

export const INIT_SCRIPT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname ${LINUX_GUEST_HOSTNAME}
if [ -e /sys/bus/acpi/devices/VMBUS:00 ]; then
  insmod /lib/modules/hv_vmbus.ko && insmod /lib/modules/hv_utils.ko
  # The user-space half of hv_utils' KVP service (kvp-daemon.ts), when the build included it: it daemonizes.
  if [ -x /usr/sbin/hv_kvp_daemon ]; then /usr/sbin/hv_kvp_daemon; fi
  if grep -q tsvisor.netvsc /proc/cmdline; then insmod /lib/modules/hv_netvsc.ko; fi
  if grep -q tsvisor.storvsc /proc/cmdline; then
    for m in ${STORVSC_MODULES.join(' ')}; do insmod /lib/modules/$m.ko; done
  fi
fi
if grep -q tsvisor.ide /proc/cmdline; then
  for m in ${STORVSC_MODULES.filter((m) => m !== 'hv_storvsc' && m !== 'scsi_transport_fc' && m !== 'sd_mod').join(' ')} ${IDE_MODULES.join(' ')} sd_mod; do
    grep -q "^$m " /proc/modules || insmod /lib/modules/$m.ko
  done
fi
echo "tsvisor-linux: init done"
export PS1='~ # '
exec setsid cttyhack sh
`;

/** The busybox applets /init and the shell need, as links in /bin. */
export const BUSYBOX_LINKS = [
  'sh',
  'mount',
  'umount',
  'insmod',
  'rmmod',
  'lsmod',
  'cat',
  'echo',
  'ls',
  'dmesg',
  'dd',
  'setsid',
  'cttyhack',
  'poweroff',
  'reboot',
  'halt',
  'sync',
  'mkdir',
  'uname',
  'hostname',
  'ip',
  'ping',
  'ifconfig',
  'grep',
  'head',
  'tail',
  'sleep',
  'hexdump',
  'md5sum',
  'ps',
  'free',
  'ln',
  'cp',
  'mv',
  'rm',
  'wc',
  'sed',
  'awk',
  'tr',
  'cut',
  'date',
  'true',
  'false',
  'test',
  '[',
] as const;
