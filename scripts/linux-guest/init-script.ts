/**
 * The initramfs's /init: mounts the kernel file systems, loads hv_vmbus and hv_utils when the
 * firmware describes a VMBus device (ACPI _HID "VMBUS"; without one hv_vmbus waits 5 s and gives
 * up, drivers/hv/vmbus_drv.c hv_acpi_init), prints a marker the host waits for, and gives a shell
 * on the console. The other Hyper-V and disk modules are in /lib/modules with their dependency
 * order in /lib/modules/load-order, loaded by hand: every module costs boot time on an emulated CPU.
 */
export const INIT_SCRIPT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
if [ -e /sys/bus/acpi/devices/VMBUS:00 ]; then
  insmod /lib/modules/hv_vmbus.ko && insmod /lib/modules/hv_utils.ko
fi
echo "tsvisor-linux: init done"
export PS1='~ # '
exec setsid cttyhack sh
`;

/** The busybox applets /init and the shell need, as links in /bin. */
export const BUSYBOX_LINKS = [
  'sh', 'mount', 'umount', 'insmod', 'rmmod', 'lsmod', 'cat', 'echo', 'ls', 'dmesg', 'dd', 'setsid', 'cttyhack',
  'poweroff', 'reboot', 'halt', 'sync', 'mkdir', 'uname', 'grep', 'head', 'tail', 'sleep', 'hexdump', 'md5sum', 'ps',
  'free', 'ln', 'cp', 'mv', 'rm', 'wc', 'sed', 'awk', 'tr', 'cut', 'date', 'true', 'false', 'test', '[',
] as const;
