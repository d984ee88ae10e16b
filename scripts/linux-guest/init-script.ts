/**
 * The initramfs's /init: mounts the kernel file systems, loads the Hyper-V and disk modules in
 * dependency order (a module whose device is absent loads and waits, as on Hyper-V), prints a
 * marker the host waits for, and gives a shell on the console.
 */
export const INIT_SCRIPT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
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
