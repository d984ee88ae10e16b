/**
 * Where the Linux guest's files are built (scripts/build-linux-guest.ts) and what they are.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LINUX_GUEST_DIR = join(import.meta.dirname, '..', '..', 'build', 'linux-guest');
/** What a VM definition names as the Linux guest's image (`vm new --linux`). */
export const LINUX_GUEST_MANIFEST = join(LINUX_GUEST_DIR, 'manifest.json');

/** Modules the initramfs loads, with their dependencies resolved at build time. */
export const LINUX_GUEST_MODULES = ['hv_vmbus', 'hv_utils', 'hv_storvsc', 'sd_mod', 'ata_piix', 'hv_netvsc'] as const;

export interface LinuxGuestManifest {
  kernelVersion: string;
  bios: string;
  vgaBios: string;
  kernel: string;
  initramfs: string;
  modules: string[];
  /** Why the initramfs has no hv_kvp_daemon (absent: it has one, started by /init). */
  kvpUnavailable?: string;
}

/** The built guest, or the reason it is not there (the packages could not be fetched, or the build step was not run). */
export function loadLinuxGuest(): { manifest: LinuxGuestManifest } | { unavailable: string } {
  const m = join(LINUX_GUEST_DIR, 'manifest.json');
  if (existsSync(m)) return { manifest: JSON.parse(readFileSync(m, 'utf8')) as LinuxGuestManifest };
  const u = join(LINUX_GUEST_DIR, 'unavailable.txt');
  if (existsSync(u)) return { unavailable: readFileSync(u, 'utf8').trim() };
  return {
    unavailable: 'build/linux-guest is not built: run `npm run build:linux` (it fetches the Debian kernel, busybox and SeaBIOS packages with apt-get download)',
  };
}
