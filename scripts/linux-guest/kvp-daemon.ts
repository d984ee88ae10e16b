/**
 * Debian's KVP daemon in the initramfs: `hv_kvp_daemon` from hyperv-daemons (the user-space half
 * of Linux's KVP integration service: hv_utils' hv_kvp passes the host's requests to it through
 * /dev/vmbus/hv_kvp, tools/hv/hv_kvp_daemon.c), the dynamic loader and C library it links against
 * (libc6), and what it reads for the guest's intrinsic items: /etc/os-release (base-files) for
 * OSName and OSMajor/MinorVersion, the host name and /etc/hosts for FullyQualifiedDomainName
 * (gethostname, then getaddrinfo with AI_CANONNAME; glibc 2.36 has the files lookup built in).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { S_IFDIR, S_IFLNK, S_IFREG, type CpioEntry } from './cpio-newc.ts';

export const KVP_PACKAGES = [
  { pkg: 'hyperv-daemons:i386', prefix: 'hyperv-daemons_' },
  { pkg: 'libc6:i386', prefix: 'libc6_' },
  { pkg: 'base-files:i386', prefix: 'base-files_' },
] as const;

/** The guest's host name (set by /init) and its /etc/hosts entry, whose first name is the canonical one. */
export const LINUX_GUEST_HOSTNAME = 'tsvisor-linux';
export const LINUX_GUEST_FQDN = `${LINUX_GUEST_HOSTNAME}.localdomain`;

/** Files taken from the extracted packages, as [path in the initramfs, path under the extraction root]. */
const FILES = [
  ['usr/sbin/hv_kvp_daemon', 'usr/sbin/hv_kvp_daemon', 0o755],
  ['lib/i386-linux-gnu/ld-linux.so.2', 'lib/i386-linux-gnu/ld-linux.so.2', 0o755],
  ['lib/i386-linux-gnu/libc.so.6', 'lib/i386-linux-gnu/libc.so.6', 0o755],
  ['etc/os-release', 'usr/lib/os-release', 0o644],
] as const;

/** The initramfs entries for the KVP daemon, or why there are none (a package was not fetched). */
export function kvpDaemonEntries(root: string): { entries: CpioEntry[] } | { unavailable: string } {
  const missing = FILES.filter(([, from]) => !existsSync(join(root, from))).map(([, from]) => from);
  if (missing.length > 0) return { unavailable: `missing after extraction: ${missing.join(', ')}` };
  const enc = new TextEncoder();
  const entries: CpioEntry[] = ['usr', 'usr/sbin', 'lib/i386-linux-gnu', 'etc', 'var', 'var/lib', 'var/lib/hyperv'].map((name) => ({
    name,
    mode: S_IFDIR | 0o755,
  }));
  for (const [to, from, mode] of FILES) entries.push({ name: to, mode: S_IFREG | mode, data: readFileSync(join(root, from)) });
  // The program interpreter hv_kvp_daemon names (PT_INTERP /lib/ld-linux.so.2).
  entries.push({ name: 'lib/ld-linux.so.2', mode: S_IFLNK | 0o777, data: enc.encode('i386-linux-gnu/ld-linux.so.2') });
  entries.push({ name: 'etc/hosts', mode: S_IFREG | 0o644, data: enc.encode(`127.0.0.1 localhost\n127.0.1.1 ${LINUX_GUEST_FQDN} ${LINUX_GUEST_HOSTNAME}\n`) });
  return { entries };
}
