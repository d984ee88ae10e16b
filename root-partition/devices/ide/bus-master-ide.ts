import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import type { AccessSize, PortIoDevice, PortRange } from '../port-io.ts';
import { BmCommand, BmReg, BmStatus, PRD_ENTRY_SIZE, PRD_EOT, PRD_TABLE_ALIGN } from './ata-protocol.ts';

/** A guest-memory region one PRD entry describes. */
export interface PrdRegion {
  readonly gpa: number;
  readonly length: number;
}

/**
 * The PRD table as the controller found it: regions covering the transfer (validated to lie in
 * guest memory), or why it could not be used.
 */
export type PrdScan =
  | { readonly kind: 'ok'; readonly regions: readonly PrdRegion[]; readonly total: number; readonly endOfTable: boolean }
  | { readonly kind: 'fault'; readonly reason: string };

/**
 * One channel's Bus Master IDE registers (SFF-8038i rev 1.0; PIIX4 datasheet BMICX/BMISX/BMIDTPX)
 * and its PRD walker. The drive side (AtaChannel) asks for the table with `scan` when both the
 * drive has a DMA command and the guest has set Start.
 */
export class BusMasterChannel {
  command = 0;
  /** Drive-capable bits 5/6 are plain read/write storage; the PIIX4 is not simplex. */
  status = 0;
  prdTable = 0;
  /** The drive side: told when Start goes 0→1 so a waiting DMA command can run. */
  onStart: (() => void) | undefined = undefined;

  constructor(
    private readonly memory: GuestMemory,
    /** PCI command register bit 2 (bus master enable) of the IDE function. */
    private readonly busMasterEnabled: () => boolean = () => true,
  ) {}

  get started(): boolean {
    return (this.command & BmCommand.Start) !== 0;
  }

  /** Direction bit: 1 = device → memory (READ DMA). */
  get toMemory(): boolean {
    return (this.command & BmCommand.ReadFromDevice) !== 0;
  }

  /**
   * True when the engine may master the bus now: started and still active (an engine that ended a
   * transfer needs Start written 0→1 again; SFF-8038i: operations cannot be stopped and resumed)
   * and PCI bus mastering enabled.
   */
  get canTransfer(): boolean {
    return this.started && (this.status & BmStatus.Active) !== 0 && this.busMasterEnabled();
  }

  readByte(offset: number): number {
    switch (offset) {
      case BmReg.Command:
        return this.command;
      case BmReg.Status:
        return this.status;
      case BmReg.PrdTable:
      case BmReg.PrdTable + 1:
      case BmReg.PrdTable + 2:
      case BmReg.PrdTable + 3:
        return (this.prdTable >>> (8 * (offset - BmReg.PrdTable))) & 0xff;
      default:
        return 0; // reserved bytes +1, +3
    }
  }

  writeByte(offset: number, value: number): void {
    switch (offset) {
      case BmReg.Command: {
        const wasStarted = this.started;
        // The direction may not change while the engine runs (SFF-8038i: "must not be changed when active").
        const dir = wasStarted ? this.command & BmCommand.ReadFromDevice : value & BmCommand.ReadFromDevice;
        this.command = dir | (value & BmCommand.Start);
        if (!this.started) {
          this.status &= ~BmStatus.Active;
        } else if (!wasStarted) {
          this.status |= BmStatus.Active;
          this.onStart?.();
        }
        return;
      }
      case BmReg.Status:
        // Interrupt and Error are write-1-to-clear; drive-capable bits are read/write; Active is read-only.
        this.status =
          (this.status & BmStatus.Active) |
          (this.status & ~value & (BmStatus.Error | BmStatus.Interrupt)) |
          (value & (BmStatus.Drive0DmaCapable | BmStatus.Drive1DmaCapable));
        return;
      case BmReg.PrdTable:
      case BmReg.PrdTable + 1:
      case BmReg.PrdTable + 2:
      case BmReg.PrdTable + 3: {
        const shift = 8 * (offset - BmReg.PrdTable);
        const v = (this.prdTable & ~(0xff << shift)) | ((value & 0xff) << shift);
        this.prdTable = (v & ~3) >>> 0; // dword aligned: bits 1:0 read as zero
        return;
      }
      default:
        return;
    }
  }

  /** The drive raised INTRQ: BMIS bit 2 latches every rising edge of the IDE interrupt (SFF-8038i). */
  noteInterrupt(): void {
    this.status |= BmStatus.Interrupt;
  }

  /**
   * Reads the PRD table from guest memory until it covers `bytes` or reaches an EOT entry.
   * Every entry is copied out before use and every region checked against guest memory; the walk
   * stops at the table's 64 KiB boundary, so a table without EOT costs at most 8192 entries.
   */
  scan(bytes: number): PrdScan {
    const regions: PrdRegion[] = [];
    let total = 0;
    let addr = this.prdTable;
    const limit = (Math.floor(addr / PRD_TABLE_ALIGN) + 1) * PRD_TABLE_ALIGN;
    while (addr + PRD_ENTRY_SIZE <= limit) {
      if (!this.memory.contains(addr, PRD_ENTRY_SIZE)) return { kind: 'fault', reason: `PRD entry at 0x${addr.toString(16)} is outside guest memory` };
      const base = (this.memory.readU32(addr) & ~1) >>> 0;
      const raw = this.memory.dv.getUint16(addr + 4, true) & 0xfffe;
      const length = raw === 0 ? 0x10000 : raw;
      const eot = (this.memory.u8[addr + 7]! & PRD_EOT) !== 0;
      if (!this.memory.contains(base, length)) {
        return { kind: 'fault', reason: `PRD region 0x${base.toString(16)}+${length} is outside guest memory` };
      }
      regions.push({ gpa: base, length });
      total += length;
      if (eot || total >= bytes) return { kind: 'ok', regions, total, endOfTable: eot };
      addr += PRD_ENTRY_SIZE;
    }
    return { kind: 'fault', reason: 'PRD table has no EOT entry before its 64 KiB boundary' };
  }

  /**
   * Ends a transfer (SFF-8038i table "Bus master IDE status"): Interrupt set; Active cleared when
   * the table ended exactly with the transfer, left set when the table was larger; Error set on a
   * bus fault or a table too small for the drive's transfer.
   */
  finish(outcome: 'exact' | 'table-larger' | 'error'): void {
    if (outcome !== 'table-larger') this.status &= ~BmStatus.Active;
    if (outcome === 'error') this.status |= BmStatus.Error;
  }

  reset(): void {
    this.command = 0;
    this.status &= BmStatus.Drive0DmaCapable | BmStatus.Drive1DmaCapable;
    this.prdTable = 0;
  }
}

/** Size of the BMIDE I/O block at BAR4: 8 bytes per channel. */
export const BMIDE_SIZE = 16;

/** The BMIDE I/O block (BAR4): primary channel at +0, secondary at +8. Relocatable. */
export class BusMasterIde implements PortIoDevice {
  readonly name = 'piix4-bmide';
  readonly channels: readonly [BusMasterChannel, BusMasterChannel];
  base: number;

  constructor(memory: GuestMemory, base: number, busMasterEnabled: () => boolean = () => true) {
    this.base = base;
    this.channels = [new BusMasterChannel(memory, busMasterEnabled), new BusMasterChannel(memory, busMasterEnabled)];
  }

  get ports(): readonly PortRange[] {
    return [{ base: this.base, length: BMIDE_SIZE }];
  }

  read(port: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const off = port - this.base + i;
      const byte = off >= 0 && off < BMIDE_SIZE ? this.channels[off >> 3]!.readByte(off & 7) : 0xff;
      v |= byte << (8 * i);
    }
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const off = port - this.base + i;
      if (off >= 0 && off < BMIDE_SIZE) this.channels[off >> 3]!.writeByte(off & 7, (value >>> (8 * i)) & 0xff);
    }
  }
}
