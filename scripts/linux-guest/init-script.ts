/**
 * The initramfs's /init: mounts the kernel file systems, prints a marker the host waits for, and
 * gives a shell on the console. The Hyper-V and disk modules are in /lib/modules with their
 * dependency order in /lib/modules/load-order, loaded by hand for now: without a VMBus device
 * hv_vmbus waits 5 s for one and gives up (drivers/hv/vmbus_drv.c, hv_acpi_init), and every
 * module costs boot time on an emulated CPU.
 */
export const INIT_SCRIPT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
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
