import type { AccessSize } from '../port-io.ts';

/** Type 0 configuration header offsets (PCI Local Bus Specification 3.0 §6.1). */
export const PciCfg = {
  VendorId: 0x00,
  DeviceId: 0x02,
  Command: 0x04,
  Status: 0x06,
  RevisionId: 0x08,
  ClassCode: 0x09,
  CacheLineSize: 0x0c,
  LatencyTimer: 0x0d,
  HeaderType: 0x0e,
  Bar0: 0x10,
  Bar4: 0x20,
  SubsystemVendorId: 0x2c,
  InterruptLine: 0x3c,
  InterruptPin: 0x3d,
} as const;

export const PciCommand = { IoSpace: 0x0001, MemorySpace: 0x0002, BusMaster: 0x0004 } as const;
/** Header type bit 7: the device has more functions than function 0. */
export const PCI_MULTI_FUNCTION = 0x80;

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  revision: number;
  /** class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  headerType: number;
}

/** A function as the configuration mechanism sees it. */
export interface PciFunction {
  readonly name: string;
  readConfig(offset: number, size: AccessSize): number;
  writeConfig(offset: number, size: AccessSize, value: number): void;
}

/**
 * 256 bytes of configuration space with a per-byte mask of the bits software may write; everything
 * else is read-only (identity, class, hard-wired BAR bits). Subclasses react to writes in `changed`.
 */
export class PciConfigSpace implements PciFunction {
  readonly bytes = new Uint8Array(256);
  private readonly writable = new Uint8Array(256);

  constructor(
    readonly name: string,
    id: PciIdentity,
  ) {
    this.set16(PciCfg.VendorId, id.vendorId);
    this.set16(PciCfg.DeviceId, id.deviceId);
    this.bytes[PciCfg.RevisionId] = id.revision;
    this.bytes[PciCfg.ClassCode] = id.classCode & 0xff;
    this.bytes[PciCfg.ClassCode + 1] = (id.classCode >> 8) & 0xff;
    this.bytes[PciCfg.ClassCode + 2] = (id.classCode >> 16) & 0xff;
    this.bytes[PciCfg.HeaderType] = id.headerType;
  }

  /** Declares `mask` writable for `size` bytes at `offset` (little-endian). */
  protected allowWrite(offset: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.writable[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  get16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
  }

  set16(offset: number, v: number): void {
    this.bytes[offset] = v & 0xff;
    this.bytes[offset + 1] = (v >> 8) & 0xff;
  }

  get32(offset: number): number {
    return (this.get16(offset) | (this.get16(offset + 2) << 16)) >>> 0;
  }

  set32(offset: number, v: number): void {
    this.set16(offset, v & 0xffff);
    this.set16(offset + 2, v >>> 16);
  }

  get command(): number {
    return this.get16(PciCfg.Command);
  }

  readConfig(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.bytes[(offset + i) & 0xff]! << (8 * i);
    return v >>> 0;
  }

  writeConfig(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const o = (offset + i) & 0xff;
      const m = this.writable[o]!;
      this.bytes[o] = (this.bytes[o]! & ~m) | ((value >>> (8 * i)) & m);
    }
    this.changed(offset, size);
  }

  /** Hook: bytes [offset, offset+size) were written. */
  protected changed(_offset: number, _size: number): void {}
}

/** Intel 82443BX host bridge (AGP disabled) at 00:00.0, as Hyper-V Gen1 exposes it (OpenVMM pci_ids). */
export class I440bxHostBridge extends PciConfigSpace {
  constructor() {
    super('i440bx-host', { vendorId: 0x8086, deviceId: 0x7192, revision: 0x03, classCode: 0x060000, headerType: 0x00 });
    this.set16(PciCfg.Command, 0x0006);
    this.set16(PciCfg.Status, 0x0200);
    this.allowWrite(PciCfg.LatencyTimer, 1, 0xf8);
  }
}

/**
 * PIIX4 function 0, the PCI-to-ISA bridge (8086:7110). Multi-function header, so enumeration finds
 * the IDE function behind it. PIRQ route control registers 0x60–0x63 (PIIX4 datasheet PIRQRC[A:D],
 * default 0x80 = routing disabled) are kept as storage: legacy IDE does not use PIRQs.
 */
export class Piix4IsaBridge extends PciConfigSpace {
  constructor() {
    super('piix4-isa', { vendorId: 0x8086, deviceId: 0x7110, revision: 0x01, classCode: 0x060100, headerType: PCI_MULTI_FUNCTION });
    this.set16(PciCfg.Command, 0x0007);
    this.set16(PciCfg.Status, 0x0280);
    for (let i = 0; i < 4; i++) this.bytes[0x60 + i] = 0x80;
    this.allowWrite(0x60, 4, 0x8f8f8f8f);
  }
}
