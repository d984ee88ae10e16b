/**
 * Which format a disk image file is in, by its signature, before any backend reads it as data.
 * A container attached as raw would hand the guest its headers as disk data, and the guest's
 * first write would corrupt it; so every format tsvisor does not serve is recognised and
 * refused with the command that converts it.
 */
import * as fs from 'node:fs';
import { HvError } from '../../hypervisor/hv-error.ts';

export type DiskFormat = 'raw' | 'vhdx' | 'vhd' | 'qcow2' | 'vmdk' | 'vdi';

export const DiskFormatError = {
  /** A format recognised by its signature that tsvisor does not attach. */
  Unsupported: 'HV_ERR_DISK_FORMAT_UNSUPPORTED',
  /** A VHDX signature in a file whose name does not say VHDX. */
  NameMismatch: 'HV_ERR_DISK_FORMAT_NAME',
} as const;

/** What `qemu-img info` calls each format, for the conversion hint. */
const QEMU_NAME: Record<DiskFormat, string> = { raw: 'raw', vhdx: 'vhdx', vhd: 'vpc', qcow2: 'qcow2', vmdk: 'vmdk', vdi: 'vdi' };
const LONG_NAME: Record<DiskFormat, string> = {
  raw: 'raw',
  vhdx: 'VHDX',
  vhd: 'VHD (Virtual PC / Hyper-V generation 1)',
  qcow2: 'qcow2 (QEMU)',
  vmdk: 'VMDK (VMware)',
  vdi: 'VDI (VirtualBox)',
};

function ascii(b: Uint8Array, at: number, text: string): boolean {
  if (at < 0 || at + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * The format of the file behind `fd` (of `size` bytes), from its first 512 bytes and its last
 * 512 (where a fixed VHD keeps its only footer). Signatures: VHDX `vhdxfile` at 0 ([MS-VHDX]
 * 2.2.1); VHD `conectix` in the footer, and at 0 in dynamic VHDs (Virtual Hard Disk Image Format
 * Specification, "Hard Disk Footer Format"); qcow2 `QFI\xfb` (QEMU docs/interop/qcow2.txt);
 * VMDK `KDMV` sparse extents and text descriptors starting `# Disk DescriptorFile` (VMware
 * Virtual Disk Format 1.1); VDI 0xBEDA107F at byte 64 (VirtualBox VDICore.h, VDI_IMAGE_SIGNATURE).
 * Anything else is raw.
 */
export function detectFormat(fd: number, size: number): DiskFormat {
  const head = new Uint8Array(512);
  const n = fs.readSync(fd, head, 0, 512, 0);
  const h = head.subarray(0, n);
  if (ascii(h, 0, 'vhdxfile')) return 'vhdx';
  if (ascii(h, 0, 'QFI\xfb')) return 'qcow2';
  if (ascii(h, 0, 'KDMV') || ascii(h, 0, '# Disk DescriptorFile')) return 'vmdk';
  if (n >= 68 && new DataView(h.buffer, h.byteOffset).getUint32(64, true) === 0xbeda107f) return 'vdi';
  if (ascii(h, 0, 'conectix')) return 'vhd';
  if (size >= 512) {
    const tail = new Uint8Array(512);
    const t = fs.readSync(fd, tail, 0, 512, size - 512);
    if (t === 512 && ascii(tail, 0, 'conectix')) return 'vhd';
  }
  return 'raw';
}

/** The refusal for a format tsvisor recognises but does not attach. */
export function unsupportedFormatError(path: string, format: DiskFormat): HvError {
  return new HvError(
    DiskFormatError.Unsupported,
    `disk image ${path} is a ${LONG_NAME[format]} image, which tsvisor does not attach; convert it with ` +
      `\`qemu-img convert -f ${QEMU_NAME[format]} -O vhdx ${path} <new>.vhdx\` (or \`-O raw\`)`,
  );
}

/** Whether a file name claims VHDX (Hyper-V names checkpoints' differencing disks `.avhdx`). */
export function namedVhdx(path: string): boolean {
  return /\.a?vhdx$/i.test(path);
}
