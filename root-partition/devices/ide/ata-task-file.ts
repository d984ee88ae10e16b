import { AtaDevice, AtaReg } from './ata-protocol.ts';

/**
 * The command block registers a channel's drives latch (both drives see every write).
 * Sector count and the three LBA registers are two-deep FIFOs for 48-bit commands: a write pushes
 * the current byte into the "previous" slot, which HOB reads return (ATA/ATAPI-6, "48-bit
 * Address feature set"). The features register is a FIFO too.
 */
export class AtaTaskFile {
  features = 0;
  featuresPrev = 0;
  count = 0;
  countPrev = 0;
  lbaLow = 0;
  lbaLowPrev = 0;
  lbaMid = 0;
  lbaMidPrev = 0;
  lbaHigh = 0;
  lbaHighPrev = 0;
  device = 0;

  write(reg: number, value: number): void {
    value &= 0xff;
    switch (reg) {
      case AtaReg.ErrorFeatures:
        this.featuresPrev = this.features;
        this.features = value;
        break;
      case AtaReg.SectorCount:
        this.countPrev = this.count;
        this.count = value;
        break;
      case AtaReg.LbaLow:
        this.lbaLowPrev = this.lbaLow;
        this.lbaLow = value;
        break;
      case AtaReg.LbaMid:
        this.lbaMidPrev = this.lbaMid;
        this.lbaMid = value;
        break;
      case AtaReg.LbaHigh:
        this.lbaHighPrev = this.lbaHigh;
        this.lbaHigh = value;
        break;
      case AtaReg.Device:
        this.device = value;
        break;
      default:
        break;
    }
  }

  /** Read of registers 2–6; `hob` selects the previous (high-order) bytes. */
  read(reg: number, hob: boolean): number {
    switch (reg) {
      case AtaReg.SectorCount:
        return hob ? this.countPrev : this.count;
      case AtaReg.LbaLow:
        return hob ? this.lbaLowPrev : this.lbaLow;
      case AtaReg.LbaMid:
        return hob ? this.lbaMidPrev : this.lbaMid;
      case AtaReg.LbaHigh:
        return hob ? this.lbaHighPrev : this.lbaHigh;
      case AtaReg.Device:
        return this.device | AtaDevice.Obsolete;
      default:
        return 0;
    }
  }

  /** The drive a command addresses: 0 master, 1 slave. */
  get selected(): 0 | 1 {
    return this.device & AtaDevice.Dev ? 1 : 0;
  }

  get lbaMode(): boolean {
    return (this.device & AtaDevice.Lba) !== 0;
  }

  lba28(): number {
    return (((this.device & 0x0f) << 24) | (this.lbaHigh << 16) | (this.lbaMid << 8) | this.lbaLow) >>> 0;
  }

  /** 28-bit sector count: 0 means 256. */
  count28(): number {
    return this.count === 0 ? 256 : this.count;
  }

  lba48(): number {
    // 48 bits exceed int32: combine the high 24 and low 24 bits arithmetically.
    const high = (this.lbaHighPrev << 16) | (this.lbaMidPrev << 8) | this.lbaLowPrev;
    const low = (this.lbaHigh << 16) | (this.lbaMid << 8) | this.lbaLow;
    return high * 0x1000000 + low;
  }

  /** 48-bit sector count: 0 means 65536. */
  count48(): number {
    const n = (this.countPrev << 8) | this.count;
    return n === 0 ? 65536 : n;
  }

  /** The address of a failed sector, in the 28-bit (device bits 3:0) and the 48-bit (HOB) forms. */
  setErrorLba(lba: number): void {
    this.lbaLow = lba & 0xff;
    this.lbaMid = (lba >>> 8) & 0xff;
    this.lbaHigh = (lba >>> 16) & 0xff;
    const high = Math.floor(lba / 0x1000000);
    this.lbaLowPrev = high & 0xff;
    this.lbaMidPrev = (high >>> 8) & 0xff;
    this.lbaHighPrev = (high >>> 16) & 0xff;
    this.device = (this.device & 0xf0) | (high & 0x0f);
  }

  /** Loads the reset/diagnostic signature of an ATA device (ATA/ATAPI-6, signature and persistence). */
  setSignature(): void {
    this.count = this.countPrev = 1;
    this.lbaLow = this.lbaLowPrev = 1;
    this.lbaMid = this.lbaMidPrev = 0;
    this.lbaHigh = this.lbaHighPrev = 0;
    this.device = 0;
  }
}
