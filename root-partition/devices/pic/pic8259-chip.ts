import type { StateReader } from '../device-state.ts';

/**
 * One Intel 8259A programmable interrupt controller (8259A datasheet, Intel 231468).
 * Pure state: no ports, no timers. The pair (`Pic8259`) wires two of these in cascade.
 *
 * Triggering follows the PIIX4: the ICW1 LTIM bit is ignored and the ELCR selects edge (0) or
 * level (1) per input (PIIX4 datasheet, ELCR1/ELCR2 at 0x4D0/0x4D1).
 */
export class Pic8259Chip {
  /** Interrupt request register. */
  irr = 0;
  /** In-service register. */
  isr = 0;
  /** Interrupt mask register (OCW1). */
  imr = 0;
  /** Level-triggered inputs (ELCR bits); the rest are edge-triggered. */
  elcr = 0;
  /** ICW2: vector of IR0 (bits 7:3; bits 2:0 come from the IR number in x86 mode). */
  vectorBase = 0;
  /** ICW3 as written (master: which IRs have slaves; slave: its cascade id). */
  icw3 = 0;
  /** ICW4 bits. */
  autoEoi = false;
  specialFullyNested = false;
  x86Mode = false;
  /** OCW2 "rotate in automatic EOI mode". */
  rotateOnAutoEoi = false;
  /** OCW3 special mask mode. */
  specialMask = false;
  /** OCW3 RR/RIS: what a read of the command port returns. */
  readIsr = false;
  /** OCW3 P: the next command-port read is a poll. */
  poll = false;
  /** Lowest-priority IR is (priorityBase + 7) & 7; IR priorityBase has the highest priority. */
  priorityBase = 0;
  /** 0 = operational; 2/3/4 = expecting ICW2/ICW3/ICW4. */
  initStep = 0;
  private expectIcw4 = false;
  private single = false;
  /** Input pin levels, for edge detection and level re-evaluation. */
  private pins = 0;

  /** Drives input `irq` (0–7). */
  setInput(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (this.elcr & bit) {
      // Level: the request follows the pin.
      if (level) this.irr |= bit;
      else this.irr &= ~bit;
    } else if (level && !(this.pins & bit)) {
      this.irr |= bit; // rising edge latched
    }
    if (level) this.pins |= bit;
    else this.pins &= ~bit;
  }

  setElcr(mask: number): void {
    this.elcr = mask & 0xff;
    // A level input's request follows its pin from now on.
    this.irr = (this.irr & ~this.elcr) | (this.pins & this.elcr);
  }

  /** IR with the highest priority among `bits`, or -1. */
  private highest(bits: number): number {
    if (bits === 0) return -1;
    for (let i = 0; i < 8; i++) {
      const irq = (this.priorityBase + i) & 7;
      if (bits & (1 << irq)) return irq;
    }
    return -1;
  }

  private priorityOf(irq: number): number {
    return (irq - this.priorityBase) & 7;
  }

  /**
   * The IR this chip would present to the CPU now, or -1. An in-service IR of higher or equal
   * priority blocks it (fully nested mode); special mask mode lets lower IRs through (datasheet,
   * OCW3 ESMM/SMM). In special fully nested mode the master lets the cascade IR re-interrupt itself.
   */
  pending(cascadeIrs = 0): number {
    const req = this.irr & ~this.imr;
    const irq = this.highest(req);
    if (irq < 0) return -1;
    let inService = this.specialMask ? this.isr & ~this.imr : this.isr;
    if (this.specialFullyNested) inService &= ~cascadeIrs;
    const cur = this.highest(inService);
    if (cur >= 0 && this.priorityOf(cur) <= this.priorityOf(irq)) return -1;
    return irq;
  }

  /** INTA for `irq` (which `pending` returned): IRR→ISR, or only the EOI effect in AEOI mode. */
  acknowledge(irq: number): void {
    const bit = 1 << irq;
    if (!(this.elcr & bit)) this.irr &= ~bit;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityBase = (irq + 1) & 7;
    } else {
      this.isr |= bit;
    }
  }

  vector(irq: number): number {
    return (this.vectorBase + irq) & 0xff;
  }

  /** Port A0 = 0 (0x20 / 0xA0). */
  writeCommand(value: number): void {
    if (value & 0x10) {
      this.icw1(value);
    } else if (value & 0x08) {
      this.ocw3(value);
    } else {
      this.ocw2(value);
    }
  }

  /** Port A0 = 1 (0x21 / 0xA1). */
  writeData(value: number): void {
    switch (this.initStep) {
      case 2:
        this.vectorBase = value & 0xf8;
        this.initStep = this.single ? (this.expectIcw4 ? 4 : 0) : 3;
        return;
      case 3:
        this.icw3 = value;
        this.initStep = this.expectIcw4 ? 4 : 0;
        return;
      case 4:
        this.x86Mode = (value & 0x01) !== 0;
        this.autoEoi = (value & 0x02) !== 0;
        this.specialFullyNested = (value & 0x10) !== 0;
        this.initStep = 0;
        return;
      default:
        this.imr = value; // OCW1
    }
  }

  /** A read of the command port: IRR or ISR per OCW3, or the poll word. */
  readCommand(): number {
    return this.readIsr ? this.isr : this.irr;
  }

  readData(): number {
    return this.imr;
  }

  private icw1(value: number): void {
    // Datasheet "Initialization command words": the edge-sense latch and IMR are cleared, IR7 gets
    // the lowest priority, special mask mode is cleared and status read is set to IRR.
    this.expectIcw4 = (value & 0x01) !== 0;
    this.single = (value & 0x02) !== 0;
    this.imr = 0;
    this.isr = 0;
    this.irr = this.pins & this.elcr;
    this.pins &= this.elcr;
    this.priorityBase = 0;
    this.specialMask = false;
    this.readIsr = false;
    this.poll = false;
    this.rotateOnAutoEoi = false;
    this.autoEoi = false;
    this.specialFullyNested = false;
    this.x86Mode = false;
    this.initStep = 2;
  }

  private ocw2(value: number): void {
    const level = value & 7;
    switch (value >> 5) {
      case 0b001: // non-specific EOI
      case 0b101: {
        // rotate on non-specific EOI
        const irq = this.highest(this.isr);
        if (irq >= 0) {
          this.isr &= ~(1 << irq);
          if (value & 0x80) this.priorityBase = (irq + 1) & 7;
        }
        return;
      }
      case 0b011: // specific EOI
        this.isr &= ~(1 << level);
        return;
      case 0b111: // rotate on specific EOI
        this.isr &= ~(1 << level);
        this.priorityBase = (level + 1) & 7;
        return;
      case 0b110: // set priority: `level` becomes the lowest
        this.priorityBase = (level + 1) & 7;
        return;
      case 0b100:
        this.rotateOnAutoEoi = true;
        return;
      case 0b000:
        this.rotateOnAutoEoi = false;
        return;
      default: // 0b010: no operation
        return;
    }
  }

  private ocw3(value: number): void {
    if (value & 0x04) this.poll = true;
    if (value & 0x02) this.readIsr = (value & 0x01) !== 0;
    if (value & 0x40) this.specialMask = (value & 0x20) !== 0;
  }

  /** Every register and latch, for the saved state. */
  saveFields(): Record<string, unknown> {
    return {
      irr: this.irr,
      isr: this.isr,
      imr: this.imr,
      elcr: this.elcr,
      vectorBase: this.vectorBase,
      icw3: this.icw3,
      autoEoi: this.autoEoi,
      specialFullyNested: this.specialFullyNested,
      x86Mode: this.x86Mode,
      rotateOnAutoEoi: this.rotateOnAutoEoi,
      specialMask: this.specialMask,
      readIsr: this.readIsr,
      poll: this.poll,
      priorityBase: this.priorityBase,
      initStep: this.initStep,
      expectIcw4: this.expectIcw4,
      single: this.single,
      pins: this.pins,
    };
  }

  /** Reads and checks every field first, then applies them all (a bad record changes nothing). */
  restoreFields(r: StateReader): void {
    const byte = (k: string) => r.int(k, 0, 0xff);
    const v = {
      irr: byte('irr'),
      isr: byte('isr'),
      imr: byte('imr'),
      elcr: byte('elcr'),
      vectorBase: r.int('vectorBase', 0, 0xf8) & 0xf8,
      icw3: byte('icw3'),
      autoEoi: r.bool('autoEoi'),
      specialFullyNested: r.bool('specialFullyNested'),
      x86Mode: r.bool('x86Mode'),
      rotateOnAutoEoi: r.bool('rotateOnAutoEoi'),
      specialMask: r.bool('specialMask'),
      readIsr: r.bool('readIsr'),
      poll: r.bool('poll'),
      priorityBase: r.int('priorityBase', 0, 7),
      initStep: r.int('initStep', 0, 4),
      expectIcw4: r.bool('expectIcw4'),
      single: r.bool('single'),
      pins: byte('pins'),
    };
    if (v.initStep === 1) throw new RangeError('8259A initStep 1 does not exist');
    Object.assign(this, v);
  }

  reset(): void {
    this.irr = this.isr = this.imr = this.pins = 0;
    this.elcr = 0;
    this.vectorBase = this.icw3 = 0;
    this.autoEoi = this.specialFullyNested = this.x86Mode = this.rotateOnAutoEoi = false;
    this.specialMask = this.readIsr = this.poll = false;
    this.priorityBase = 0;
    this.initStep = 0;
    this.expectIcw4 = this.single = false;
  }
}
