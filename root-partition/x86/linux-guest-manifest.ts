/**
 * The Linux guest's manifest as a VM definition names it (imagePath): read through the storage
 * roots like any guest image, and every file it names held to the same roots, so a manifest
 * cannot make the host load a file the operator did not allow into a guest.
 */
import { readFileSync } from 'node:fs';
import { StorageRoots } from '../host/storage-roots.ts';
import type { LinuxGuestManifest } from './linux-guest-files.ts';

const FILES = ['bios', 'vgaBios', 'kernel', 'initramfs'] as const;

/** The manifest at `path`, checked; throws with the field or file at fault. */
export function readLinuxGuestManifest(path: string, storageRoots?: readonly string[]): LinuxGuestManifest {
  const roots = storageRoots ? StorageRoots.of([...storageRoots]) : null;
  const text = (roots ? roots.readConfined(path, 'guest image') : readFileSync(path)).toString('utf8');
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`the Linux guest manifest ${path} is not JSON (${(e as Error).message}); rebuild it with npm run build:linux`);
  }
  if (typeof m !== 'object' || m === null) throw new Error(`the Linux guest manifest ${path} is not a JSON object`);
  for (const f of [...FILES, 'kernelVersion'] as const) {
    if (typeof m[f] !== 'string' || m[f] === '') throw new Error(`the Linux guest manifest ${path}: ${f} must be a non-empty string`);
  }
  if (!Array.isArray(m.modules) || !m.modules.every((x) => typeof x === 'string'))
    throw new Error(`the Linux guest manifest ${path}: modules must be a list of names`);
  for (const f of FILES) roots?.check(m[f] as string, 'guest image');
  return m as unknown as LinuxGuestManifest;
}
