/**
 * Parameter data a SCSI direct-access disk returns: standard INQUIRY, VPD pages, READ CAPACITY,
 * mode pages. Pure functions producing exact bytes (SPC-3, SBC-3); the command logic is in
 * scsi-disk.ts.
 */

/** Identity Hyper-V's virtual disks report (Linux storvsc matches vendor "Msft"). */
export const INQUIRY_VENDOR = 'Msft    ';
export const INQUIRY_PRODUCT = 'Virtual Disk    ';
export const INQUIRY_REVISION = '1.0 ';

/** SPC-3 VERSION value in standard INQUIRY data byte 2. */
const VERSION_SPC3 = 0x05;
/** The IEEE OUI Microsoft's Hyper-V disks carry in their NAA 6 WWN (WWN 0x60022480…). */
const MICROSOFT_OUI = 0x002248;

function ascii(dst: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) dst[at + i] = s.charCodeAt(i) & 0x7f;
}

/** Standard INQUIRY data, 36 bytes (SPC-3 6.4.2). */
export function standardInquiry(): Uint8Array {
  const d = new Uint8Array(36);
  d[0] = 0x00; // peripheral qualifier 0 (connected), device type 0 (direct access block device)
  d[1] = 0x00; // RMB = 0: not removable
  d[2] = VERSION_SPC3;
  d[3] = 0x02; // RESPONSE DATA FORMAT 2
  d[4] = d.length - 5; // ADDITIONAL LENGTH
  d[7] = 0x02; // CMDQUE: tagged command queuing (storvsc sends SIMPLE tags)
  ascii(d, 8, INQUIRY_VENDOR);
  ascii(d, 16, INQUIRY_PRODUCT);
  ascii(d, 32, INQUIRY_REVISION);
  return d;
}

/**
 * INQUIRY data for an address with no logical unit: peripheral qualifier 3, type 0x1F (SPC-3
 * 6.4.2), as OpenVMM's storvsp answers so that Linux moves on to REPORT LUNS.
 */
export function notPresentInquiry(lun: number): Uint8Array {
  const d = standardInquiry();
  d[0] = 0x7f;
  if (lun !== 0) d.fill(0, 8, 36);
  return d;
}

export const SUPPORTED_VPD_PAGES = [0x00, 0x80, 0x83, 0xb0, 0xb2] as const;

/** VPD 0x00 Supported VPD Pages (SPC-3 7.6.12). */
export function vpdSupportedPages(): Uint8Array {
  const d = new Uint8Array(4 + SUPPORTED_VPD_PAGES.length);
  d[3] = SUPPORTED_VPD_PAGES.length;
  d.set(SUPPORTED_VPD_PAGES, 4);
  return d;
}

/** The unit serial number: the disk id in upper-case hex (ASCII, SPC-3 7.6.10). */
export function serialNumber(diskId: Uint8Array): string {
  return Array.from(diskId, (b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/** VPD 0x80 Unit Serial Number (SPC-3 7.6.10). */
export function vpdUnitSerialNumber(diskId: Uint8Array): Uint8Array {
  const sn = serialNumber(diskId);
  const d = new Uint8Array(4 + sn.length);
  d[1] = 0x80;
  d[3] = sn.length;
  ascii(d, 4, sn);
  return d;
}

/**
 * VPD 0x83 Device Identification (SPC-3 7.6.4) with one designator: NAA IEEE Registered Extended
 * (NAA 6, 16 bytes, SPC-3 7.6.4.6.5) associated with the logical unit, built from Microsoft's OUI
 * and the first 13 nibbles + 8 bytes of the disk id, so each disk has a stable, distinct WWN.
 */
export function vpdDeviceIdentification(diskId: Uint8Array): Uint8Array {
  const d = new Uint8Array(4 + 4 + 16);
  d[1] = 0x83;
  d[3] = d.length - 4;
  d[4] = 0x01; // PROTOCOL IDENTIFIER 0, CODE SET 1 (binary)
  d[5] = 0x03; // PIV 0, ASSOCIATION 0 (logical unit), DESIGNATOR TYPE 3 (NAA)
  d[7] = 16; // DESIGNATOR LENGTH
  const id = new Uint8Array(16);
  id.set(diskId.subarray(0, 16));
  d[8] = 0x60 | ((MICROSOFT_OUI >> 20) & 0x0f);
  d[9] = (MICROSOFT_OUI >> 12) & 0xff;
  d[10] = (MICROSOFT_OUI >> 4) & 0xff;
  d[11] = ((MICROSOFT_OUI & 0x0f) << 4) | (id[0]! & 0x0f);
  d.set(id.subarray(1, 13), 12);
  return d;
}

/** READ CAPACITY(10) data (SBC-3 5.12): 0xFFFFFFFF when the last LBA does not fit 32 bits. */
export function readCapacity10(sectorCount: number, sectorSize: number): Uint8Array {
  const d = new Uint8Array(8);
  const dv = new DataView(d.buffer);
  const last = Math.max(sectorCount - 1, 0);
  dv.setUint32(0, last > 0xfffffffe ? 0xffffffff : last, false);
  dv.setUint32(4, sectorSize, false);
  return d;
}

/**
 * READ CAPACITY(16) parameter data (SBC-3 5.16), 32 bytes; no protection, 1:1 physical blocks.
 * LBPME (byte 14 bit 7): the unit is thin provisioned and takes UNMAP; LBPRZ stays 0 — a
 * released block reads zero here, but partial ranges are left mapped, and other readers of a
 * VHDX may return an UNMAPPED block's old content.
 */
export function readCapacity16(sectorCount: number, sectorSize: number, thin = false): Uint8Array {
  const d = new Uint8Array(32);
  const dv = new DataView(d.buffer);
  dv.setBigUint64(0, BigInt(Math.max(sectorCount - 1, 0)), false);
  dv.setUint32(8, sectorSize, false);
  if (thin) d[14] = 0x80;
  return d;
}

/** Unmap limits a thin-provisioned disk reports (VPD 0xB0) and UNMAP enforces. */
export interface UnmapLimits {
  /** MAXIMUM UNMAP LBA COUNT: sectors one UNMAP may name in all. */
  maxLbaCount: number;
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. */
  maxDescriptors: number;
  /** OPTIMAL UNMAP GRANULARITY in sectors (the image's block), aligned at LBA 0. */
  granularity: number;
}

/**
 * VPD 0xB0 Block Limits (SBC-3 6.5.3), 64 bytes. Only the unmap fields are set (transfer limits 0:
 * not reported); without `unmap` they are 0 too, as for a disk that does not take UNMAP.
 */
export function vpdBlockLimits(unmap: UnmapLimits | null): Uint8Array {
  const d = new Uint8Array(64);
  const dv = new DataView(d.buffer);
  d[1] = 0xb0;
  dv.setUint16(2, d.length - 4, false);
  if (unmap) {
    dv.setUint32(20, unmap.maxLbaCount, false);
    dv.setUint32(24, unmap.maxDescriptors, false);
    dv.setUint32(28, unmap.granularity, false);
    d[32] = 0x80; // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
  }
  return d;
}

/**
 * VPD 0xB2 Logical Block Provisioning (SBC-3 6.5.4), 8 bytes: LBPU (byte 5 bit 7) when the disk
 * takes UNMAP, and PROVISIONING TYPE 2 (thin); else all zero (fully provisioned).
 */
export function vpdLogicalBlockProvisioning(unmap: boolean): Uint8Array {
  const d = new Uint8Array(8);
  d[1] = 0xb2;
  d[3] = d.length - 4;
  if (unmap) {
    d[5] = 0x80;
    d[6] = 0x02;
  }
  return d;
}

/** Caching mode page 0x08 (SBC-3 6.3.4), 20 bytes. WCE = 1: writes are acknowledged before they are
 * durable, so the guest must send SYNCHRONIZE CACHE, which this target maps to flush(). */
export function cachingModePage(pageControl: number): Uint8Array {
  const p = new Uint8Array(20);
  p[0] = 0x08; // PS = 0, SPF = 0, PAGE CODE 0x08
  p[1] = 0x12; // PAGE LENGTH
  // Changeable values (PC = 1): none are, so the mask is all zero.
  if (pageControl !== 1) p[2] = 0x04; // WCE = 1, RCD = 0
  return p;
}

/** MODE SENSE(6) header (SPC-3 7.4.3), no block descriptors; WP is bit 7 of the device-specific byte. */
export function modeSense6(pages: Uint8Array, writeProtected: boolean): Uint8Array {
  const d = new Uint8Array(4 + pages.length);
  d[0] = d.length - 1; // MODE DATA LENGTH excludes itself
  d[2] = writeProtected ? 0x80 : 0x00;
  d.set(pages, 4);
  return d;
}

/** MODE SENSE(10) header (SPC-3 7.4.3), no block descriptors. */
export function modeSense10(pages: Uint8Array, writeProtected: boolean): Uint8Array {
  const d = new Uint8Array(8 + pages.length);
  new DataView(d.buffer).setUint16(0, d.length - 2, false);
  d[3] = writeProtected ? 0x80 : 0x00;
  d.set(pages, 8);
  return d;
}

/** REPORT LUNS parameter data (SPC-3 6.21) with single-level peripheral addressing (SAM-4 4.6.7). */
export function reportLuns(luns: readonly number[]): Uint8Array {
  const sorted = [...luns].sort((a, b) => a - b);
  const d = new Uint8Array(8 + 8 * sorted.length);
  new DataView(d.buffer).setUint32(0, 8 * sorted.length, false);
  sorted.forEach((lun, i) => {
    d[8 + 8 * i + 1] = lun & 0xff;
  });
  return d;
}
