import type { AccessSize, InterruptLine, PortIoDevice, PortRange } from '../port-io.ts';
import type { DeviceStateRecord, SavableDevice } from '../device-state.ts';
import { restoreNe2000State, saveNe2000State } from './ne2000-state.ts';
import {
  Cr,
  Dp8390Reg as R,
  ETH_MIN_FRAME,
  Isr,
  NE_DATAPORT,
  NE_IO_EXTENT,
  NE_PROM_BYTES,
  NE_RAM_END,
  NE_RAM_START,
  NE_RESET,
  PAGE_BYTES,
  Rcr,
  Rsr,
  RTL8029_ID,
  RX_HEADER_BYTES,
  Tcr,
  Tsr,
  ethernetCrc32,
} from './dp8390-registers.ts';

/** Largest frame the card takes from the wire or sends (1500 + 14; no jumbo on the legacy NIC). */
export const NE2000_MAX_FRAME = 1514;

export interface Ne2000Counters {
  txFrames: number;
  rxFrames: number;
  /** Frames refused by the receive filter (RCR, PAR, MAR). */
  rxFiltered: number;
  /** Frames lost for want of ring space or because the receiver was stopped (CNTR2 counts the first kind). */
  rxMissed: number;
  /** Transmit commands refused (bad length or buffer outside card memory). */
  txErrors: number;
  /** Rising edges of the interrupt line. */
  interrupts: number;
}

export interface Ne2000Options {
  name?: string;
  mac: Uint8Array;
  irq: InterruptLine;
  /** I/O base of the 32-port window; 0 = not decoded yet (the PCI BAR places it). */
  base?: number;
}

/**
 * An NE2000-compatible card: a DP8390 core (three register pages, remote DMA, receive ring,
 * transmit from a buffer in card memory) behind the NE2000 ASIC's data port (base + 0x10) and
 * reset port (base + 0x1F), with 16 KiB of card RAM and a word-wide station-address PROM.
 * Facts: DP8390 datasheet; Linux 8390.h, lib8390.c, ne.c; QEMU hw/net/ne2000.c.
 *
 * Transmission is instantaneous: the frame leaves in the OUT that sets CR.TXP, and PTX is set
 * before that OUT returns. Received frames come from the host through `receive()`.
 */
export class Ne2000 implements PortIoDevice, SavableDevice {
  readonly name: string;
  private range: PortRange[] = [];
  readonly mac: Uint8Array;
  readonly memory = new Uint8Array(NE_RAM_END);
  readonly counters: Ne2000Counters = { txFrames: 0, rxFrames: 0, rxFiltered: 0, rxMissed: 0, txErrors: 0, interrupts: 0 };
  /** Frames the guest transmits; `frame` is valid during the call only. */
  onTransmit: ((frame: Uint8Array) => void) | undefined = undefined;
  private readonly irq: InterruptLine;
  private irqLevel = false;

  cr = Cr.Stp | Cr.NoDma;
  isr = Isr.Rst;
  imr = 0;
  dcr = 0;
  rcr = 0;
  tcr = 0;
  rsr = 0;
  tsr = 0;
  pstart = 0;
  pstop = 0;
  bnry = 0;
  tpsr = 0;
  tbcr = 0;
  rsar = 0;
  rbcr = 0;
  curr = 0;
  readonly par = new Uint8Array(6);
  readonly mar = new Uint8Array(8);
  /** CNTR0 frame-alignment errors, CNTR1 CRC errors, CNTR2 missed packets (cleared when read). */
  readonly tally = [0, 0, 0];

  constructor(opts: Ne2000Options) {
    if (opts.mac.length !== 6) throw new RangeError('an NE2000 MAC address is 6 bytes');
    this.name = opts.name ?? 'ne2000';
    this.mac = opts.mac.slice();
    this.irq = opts.irq;
    // Word-wide PROM: station address, zeros, "WW" at bytes 14–15, each byte doubled (Linux ne.c).
    const prom = new Uint8Array(16);
    prom.set(this.mac, 0);
    prom[14] = prom[15] = 0x57;
    for (let i = 0; i < 16; i++) this.memory[2 * i] = this.memory[2 * i + 1] = prom[i]!;
    this.base = opts.base ?? 0;
  }

  get ports(): readonly PortRange[] {
    return this.range;
  }

  /** Moves the window (the PCI BAR); the owner re-registers the device on the bus. */
  set base(base: number) {
    this.range = base ? [{ base, length: NE_IO_EXTENT }] : [];
  }

  get base(): number {
    return this.range[0]?.base ?? 0;
  }

  saveState(): DeviceStateRecord {
    return saveNe2000State(this);
  }

  restoreState(record: DeviceStateRecord): void {
    restoreNe2000State(this, record);
  }

  /** Re-drives the interrupt line from ISR and IMR (after a restore). */
  refreshInterrupt(): void {
    this.irqLevel = !((this.isr & this.imr & 0x7f) !== 0);
    this.updateIrq();
  }

  /** Hardware reset (the reset port, or VM reset): stopped, DMA aborted, ISR.RST, interrupts masked. */
  reset(): void {
    this.cr = Cr.Stp | Cr.NoDma;
    this.isr = Isr.Rst;
    this.imr = 0;
    this.rbcr = 0;
    this.tsr = 0;
    this.rsr = 0;
    this.updateIrq();
  }

  read(port: number, size: AccessSize): number {
    const off = port - this.base;
    if (off === NE_DATAPORT) return this.dataRead(size);
    if (off === NE_RESET) {
      this.reset();
      return 0;
    }
    if (off > 0x0f) return 0xff;
    return this.readRegister(off);
  }

  write(port: number, size: AccessSize, value: number): void {
    const off = port - this.base;
    if (off === NE_DATAPORT) return this.dataWrite(size, value);
    if (off === NE_RESET || off > 0x0f) return; // a write to the reset port ends the pulse
    this.writeRegister(off, value & 0xff);
  }

  /** `rep insb/insw/insl` on the data port: the whole transfer in one exit. */
  readString(port: number, size: AccessSize, dst: Uint8Array, count: number): number {
    if (port - this.base !== NE_DATAPORT) return this.readUnitsSlow(port, size, dst, count);
    for (let i = 0, o = 0; i < count; i++) {
      const v = this.dataRead(size);
      for (let k = 0; k < size; k++) dst[o++] = (v >>> (8 * k)) & 0xff;
    }
    return count;
  }

  writeString(port: number, size: AccessSize, src: Uint8Array, count: number): number {
    if (port - this.base !== NE_DATAPORT) {
      for (let i = 0; i < count; i++) this.write(port, size, src[i * size]!);
      return count;
    }
    for (let i = 0, o = 0; i < count; i++) {
      let v = 0;
      for (let k = 0; k < size; k++) v |= src[o++]! << (8 * k);
      this.dataWrite(size, v >>> 0);
    }
    return count;
  }

  /** What RCR, PAR and MAR let through: the same test the DP8390's address recogniser makes. */
  accepts(frame: Uint8Array): boolean {
    if (frame.length < 6) return false;
    if (this.rcr & Rcr.Pro) return true;
    if (frame[0]! & 1) {
      let bcast = true;
      for (let i = 0; i < 6; i++) if (frame[i] !== 0xff) bcast = false;
      if (bcast) return (this.rcr & Rcr.Ab) !== 0;
      if (!(this.rcr & Rcr.Am)) return false;
      const crc = ethernetCrc32(frame, 0, 6);
      return (this.mar[crc >>> 29]! & (1 << ((crc >>> 26) & 7))) !== 0;
    }
    for (let i = 0; i < 6; i++) if (frame[i] !== this.par[i]) return false;
    return true;
  }

  /**
   * A frame from the wire. Returns false when it was not stored (receiver stopped, filtered,
   * monitor mode, ring full or bad length), so the switch can count the drop.
   */
  receive(frame: Uint8Array): boolean {
    if (frame.length < 14 || frame.length > NE2000_MAX_FRAME) return false;
    if (this.cr & Cr.Stp || !(this.cr & Cr.Sta) || (this.tcr & Tcr.LoopbackMask) !== 0) {
      this.counters.rxMissed++;
      return false;
    }
    if (!this.accepts(frame)) {
      this.counters.rxFiltered++;
      return false;
    }
    if (this.rcr & Rcr.Mon) return false; // monitor mode: checked, counted, not stored
    return this.store(frame);
  }

  private store(frame: Uint8Array): boolean {
    const start = this.pstart,
      stop = this.pstop;
    const ringPages = stop - start;
    if (ringPages <= 0 || start * PAGE_BYTES < NE_RAM_START || stop * PAGE_BYTES > NE_RAM_END || this.curr < start || this.curr >= stop) {
      this.missed();
      return false;
    }
    const len = Math.max(frame.length, ETH_MIN_FRAME);
    // Pages for header + frame + the 4-byte CRC the chip reserves but does not store (QEMU).
    const need = Math.ceil((len + RX_HEADER_BYTES + 4) / PAGE_BYTES);
    // Free pages from CURR up to BNRY; BNRY == CURR counts as an empty ring (as QEMU does).
    const free = this.bnry === this.curr ? ringPages : (this.bnry - this.curr + ringPages) % ringPages;
    if (need >= free) {
      this.missed();
      return false;
    }
    let next = this.curr + need;
    if (next >= stop) next -= ringPages;
    const group = (frame[0]! & 1) !== 0;
    this.rsr = Rsr.Prx | (group ? Rsr.Phy : 0);
    let addr = this.curr * PAGE_BYTES;
    const count = len + RX_HEADER_BYTES;
    const header = [this.rsr, next, count & 0xff, count >> 8];
    const put = (b: number) => {
      this.memory[addr++] = b;
      if (addr >= stop * PAGE_BYTES) addr = start * PAGE_BYTES;
    };
    for (const b of header) put(b);
    for (let i = 0; i < len; i++) put(i < frame.length ? frame[i]! : 0);
    this.curr = next;
    this.counters.rxFrames++;
    this.isr |= Isr.Prx;
    this.updateIrq();
    return true;
  }

  private missed(): void {
    this.counters.rxMissed++;
    this.rsr = Rsr.Mpa;
    this.tally[2] = Math.min(this.tally[2]! + 1, 0xff);
  }

  private readRegister(off: number): number {
    if (off === R.Cr) return this.cr;
    const page = this.cr & Cr.PageMask;
    if (page === 0x40) {
      if (off >= R.Par0 && off < R.Par0 + 6) return this.par[off - R.Par0]!;
      if (off === R.Curr) return this.curr;
      return this.mar[off - R.Mar0]!;
    }
    if (page === 0x80) {
      switch (off) {
        case R.Pstart:
          return this.pstart;
        case R.Pstop:
          return this.pstop;
        case R.Tpsr:
          return this.tpsr;
        case R.Rcr:
          return this.rcr | 0xc0;
        case R.Tcr:
          return this.tcr | 0xe0;
        case R.Dcr:
          return this.dcr | 0x80;
        case R.Imr:
          return this.imr | 0x80;
        default:
          return 0;
      }
    }
    if (page === 0xc0) return off === 0x05 || off === 0x06 ? 0x40 : 0; // RTL8029 CONFIG2/CONFIG3 (QEMU)
    switch (off) {
      case R.Bnry:
        return this.bnry;
      case R.Tpsr:
        return this.tsr;
      case R.Isr:
        return this.isr;
      case R.Rsar0:
        return this.rsar & 0xff;
      case R.Rsar1:
        return this.rsar >> 8;
      case R.Rbcr0:
        return RTL8029_ID[0];
      case R.Rbcr1:
        return RTL8029_ID[1];
      case R.Rcr:
        return this.rsr;
      case R.Tcr:
      case R.Dcr:
      case R.Imr: {
        const i = off - R.Tcr;
        const v = this.tally[i]!;
        this.tally[i] = 0;
        return v;
      }
      default:
        return 0; // CLDA, NCR, FIFO: no local DMA state worth showing
    }
  }

  private writeRegister(off: number, v: number): void {
    if (off === R.Cr) return this.writeCommand(v);
    const page = this.cr & Cr.PageMask;
    if (page === 0x40) {
      if (off >= R.Par0 && off < R.Par0 + 6) this.par[off - R.Par0] = v;
      else if (off === R.Curr) this.curr = v;
      else this.mar[off - R.Mar0] = v;
      return;
    }
    if (page !== 0) return; // page 2 writes (CLDA, next-packet pointers) and page 3 are not modelled
    switch (off) {
      case R.Pstart:
        this.pstart = v;
        break;
      case R.Pstop:
        this.pstop = v;
        break;
      case R.Bnry:
        this.bnry = v;
        break;
      case R.Tpsr:
        this.tpsr = v;
        break;
      case R.Tbcr0:
        this.tbcr = (this.tbcr & 0xff00) | v;
        break;
      case R.Tbcr1:
        this.tbcr = (this.tbcr & 0xff) | (v << 8);
        break;
      case R.Isr:
        this.isr &= ~(v & 0x7f);
        this.updateIrq();
        break; // write 1 to clear; RST is read-only
      case R.Rsar0:
        this.rsar = (this.rsar & 0xff00) | v;
        break;
      case R.Rsar1:
        this.rsar = (this.rsar & 0xff) | (v << 8);
        break;
      case R.Rbcr0:
        this.rbcr = (this.rbcr & 0xff00) | v;
        break;
      case R.Rbcr1:
        this.rbcr = (this.rbcr & 0xff) | (v << 8);
        break;
      case R.Rcr:
        this.rcr = v & 0x3f;
        break;
      case R.Tcr:
        this.tcr = v & 0x1f;
        break;
      case R.Dcr:
        this.dcr = v & 0x7f;
        break;
      case R.Imr:
        this.imr = v & 0x7f;
        this.updateIrq();
        break;
    }
  }

  private writeCommand(v: number): void {
    // TXP is set only by software and cleared only by the chip: writing 0 there does not abort.
    this.cr = (v & ~Cr.Txp) | (this.cr & Cr.Txp);
    if (v & Cr.Stp) {
      this.isr |= Isr.Rst;
    } else if (v & Cr.Sta) {
      this.isr &= ~Isr.Rst;
    }
    const dma = v & Cr.DmaMask;
    if ((dma === Cr.RemoteRead || dma === Cr.RemoteWrite) && this.rbcr === 0) this.isr |= Isr.Rdc;
    if (v & Cr.Txp && v & Cr.Sta && !(v & Cr.Stp)) this.transmit();
    this.updateIrq();
  }

  private transmit(): void {
    const start = this.tpsr * PAGE_BYTES;
    const len = this.tbcr;
    this.cr &= ~Cr.Txp;
    if (len < 14 || len > NE2000_MAX_FRAME || start < NE_RAM_START || start + len > NE_RAM_END) {
      // A buffer outside card RAM or an impossible length: aborted, as the chip's transmit would
      // underrun. The guest sees TXE and TSR.ABT instead of a frame of bus noise on the wire.
      this.counters.txErrors++;
      this.tsr = Tsr.Abt;
      this.isr |= Isr.Txe;
      return;
    }
    const frame = this.memory.subarray(start, start + len);
    this.counters.txFrames++;
    if (this.tcr & Tcr.LoopbackMask) this.loopback(frame);
    else this.onTransmit?.(frame);
    this.tsr = Tsr.Ptx;
    this.isr |= Isr.Ptx;
  }

  /** Loopback modes return the frame to the receiver instead of the wire (TCR bits 2:1). */
  private loopback(frame: Uint8Array): void {
    if (frame.length > NE2000_MAX_FRAME || !(this.cr & Cr.Sta) || !this.accepts(frame)) return;
    this.store(frame.slice());
  }

  private dataRead(size: AccessSize): number {
    let v = 0;
    for (let k = 0; k < size; k++) (v |= this.memRead(this.rsar) << (8 * k)), this.advance();
    return v >>> 0;
  }

  private dataWrite(size: AccessSize, value: number): void {
    if (this.rbcr === 0) return; // QEMU: a write with no remote count is ignored
    for (let k = 0; k < size && this.rbcr > 0; k++) {
      this.memWrite(this.rsar, (value >>> (8 * k)) & 0xff);
      this.advance();
    }
  }

  /** Remote DMA step: RSAR wraps from PSTOP to PSTART; RBCR reaching 0 sets RDC. */
  private advance(): void {
    this.rsar = (this.rsar + 1) & 0xffff;
    if (this.pstop && this.rsar === this.pstop * PAGE_BYTES) this.rsar = this.pstart * PAGE_BYTES;
    if (this.rbcr > 0) {
      this.rbcr--;
      if (this.rbcr === 0) {
        this.isr |= Isr.Rdc;
        this.updateIrq();
      }
    }
  }

  private memRead(addr: number): number {
    if (addr < NE_PROM_BYTES || (addr >= NE_RAM_START && addr < NE_RAM_END)) return this.memory[addr]!;
    return 0xff;
  }

  private memWrite(addr: number, v: number): void {
    if (addr >= NE_RAM_START && addr < NE_RAM_END) this.memory[addr] = v;
  }

  private readUnitsSlow(port: number, size: AccessSize, dst: Uint8Array, count: number): number {
    for (let i = 0, o = 0; i < count; i++) {
      const v = this.read(port, size);
      for (let k = 0; k < size; k++) dst[o++] = (v >>> (8 * k)) & 0xff;
    }
    return count;
  }

  private updateIrq(): void {
    const level = (this.isr & this.imr & 0x7f) !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (level) this.counters.interrupts++;
    this.irq.set(level);
  }
}
