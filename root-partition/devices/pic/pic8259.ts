import type { AccessSize, InterruptLine, PortIoDevice, PortRange } from '../port-io.ts';
import { Pic8259Chip } from './pic8259-chip.ts';
import { encodeState, openState, stateError, type DeviceStateRecord, type SavableDevice } from '../device-state.ts';

const STATE_NAME = 'pic8259';
const STATE_VERSION = 1;

/** Ports of the PC/AT interrupt controllers (8259A datasheet; PIIX4 datasheet ELCR). */
export const PicPort = {
  MasterCommand: 0x20,
  MasterData: 0x21,
  SlaveCommand: 0xa0,
  SlaveData: 0xa1,
  Elcr1: 0x4d0,
  Elcr2: 0x4d1,
} as const;

/** The master IR the slave's INT output is wired to. */
export const CASCADE_IRQ = 2;
/**
 * ELCR bits that are read-only zero on the PIIX4: IRQ 0, 1, 2 (timer, keyboard, cascade) and
 * IRQ 8, 13 (RTC, FPU error) are always edge-triggered.
 */
const ELCR1_WRITABLE = 0xf8;
const ELCR2_WRITABLE = 0xde;

/** What the VP side needs from a legacy interrupt controller. */
export interface ExtIntController {
  /** True while an interrupt is deliverable (the INTR pin is high). */
  hasInterrupt(): boolean;
  /** The INTA cycle: returns the vector and updates the controller. */
  acknowledge(): number;
  /** Set by the hypervisor glue: called when INTR rises, to wake a halted VP. */
  onInterruptRequest: (() => void) | undefined;
}

/**
 * The cascaded 8259A pair of a PC (master IRQ 0–7, slave IRQ 8–15 on master IR2) with the PIIX4
 * edge/level control registers. Devices drive lines through `setIrq`/`line()`; the VP side asks
 * `hasInterrupt()` at its delivery points and runs the INTA cycle with `acknowledge()`.
 */
export class Pic8259 implements PortIoDevice, ExtIntController, SavableDevice {
  readonly name = 'pic8259';
  readonly ports: readonly PortRange[] = [
    { base: PicPort.MasterCommand, length: 2 },
    { base: PicPort.SlaveCommand, length: 2 },
    { base: PicPort.Elcr1, length: 2 },
  ];
  readonly master = new Pic8259Chip();
  readonly slave = new Pic8259Chip();
  /**
   * Called when the INT output to the CPU rises (an interrupt became deliverable), so the
   * hypervisor can wake a halted VP. Called synchronously inside the device access that caused it.
   */
  onInterruptRequest: (() => void) | undefined = undefined;
  private output = false;

  /**
   * Drives ISA IRQ `irq` (0–15). IRQ 2 is the cascade input; as on the PC/AT bus, a device wired
   * to "IRQ 2" actually reaches IRQ 9. An edge-triggered request is latched on the rising edge and
   * stays in IRR until INTA even if the line drops first (so a device may pulse its line); a
   * level-triggered request (ELCR) goes away with its line.
   */
  setIrq(irq: number, level: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`ISA IRQ ${irq} out of range 0..15`);
    if (irq === CASCADE_IRQ) irq = 9;
    if (irq < 8) this.master.setInput(irq, level);
    else this.slave.setInput(irq - 8, level);
    this.update();
  }

  /** An InterruptLine for a device wired to ISA IRQ `irq`. */
  line(irq: number): InterruptLine {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`ISA IRQ ${irq} out of range 0..15`);
    return { set: (level: boolean) => this.setIrq(irq, level) };
  }

  /** True while the INT output to the CPU is asserted. */
  hasInterrupt(): boolean {
    return this.master.pending(this.cascadeMask()) >= 0;
  }

  /**
   * The INTA cycle: returns the vector and moves the request in service. With no request left
   * (the line dropped before INTA), the 8259A answers IR7 without setting ISR: a spurious IRQ 7,
   * or a spurious IRQ 15 from the slave (the master then has IR2 in service and needs its EOI).
   */
  acknowledge(): number {
    const irq = this.master.pending(this.cascadeMask());
    let vector: number;
    if (irq < 0) {
      vector = this.master.vector(7);
    } else {
      this.master.acknowledge(irq);
      if (irq === CASCADE_IRQ) {
        const s = this.slave.pending();
        if (s < 0) {
          vector = this.slave.vector(7);
        } else {
          this.slave.acknowledge(s);
          vector = this.slave.vector(s);
        }
      } else {
        vector = this.master.vector(irq);
      }
    }
    this.update();
    return vector;
  }

  read(port: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(port + i) << (8 * i);
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.writeByte(port + i, (value >>> (8 * i)) & 0xff);
  }

  reset(): void {
    this.master.reset();
    this.slave.reset();
    this.output = false;
  }

  saveState(): DeviceStateRecord {
    return {
      name: STATE_NAME,
      version: STATE_VERSION,
      state: encodeState({ master: this.master.saveFields(), slave: this.slave.saveFields(), output: this.output }),
    };
  }

  /** Restores both chips; does not call onInterruptRequest (the VP side re-checks hasInterrupt after a restore). */
  restoreState(record: DeviceStateRecord): void {
    const r = openState(record, STATE_NAME, STATE_VERSION);
    const master = new Pic8259Chip();
    const slave = new Pic8259Chip();
    try {
      master.restoreFields(r.child('master'));
      slave.restoreFields(r.child('slave'));
    } catch (err) {
      throw err instanceof RangeError ? stateError(err.message) : err;
    }
    const output = r.bool('output');
    Object.assign(this.master, master);
    Object.assign(this.slave, slave);
    this.output = output;
  }

  private cascadeMask(): number {
    return 1 << CASCADE_IRQ;
  }

  private readByte(port: number): number {
    switch (port) {
      case PicPort.MasterCommand:
        return this.readCommand(this.master);
      case PicPort.MasterData:
        return this.master.readData();
      case PicPort.SlaveCommand:
        return this.readCommand(this.slave);
      case PicPort.SlaveData:
        return this.slave.readData();
      case PicPort.Elcr1:
        return this.master.elcr;
      case PicPort.Elcr2:
        return this.slave.elcr;
      default:
        return 0xff;
    }
  }

  /** Poll mode (OCW3 P): the read acts as INTA and returns 0x80 | IR, or 0 with nothing pending. */
  private readCommand(chip: Pic8259Chip): number {
    if (!chip.poll) return chip.readCommand();
    chip.poll = false;
    const irq = chip === this.master ? chip.pending(this.cascadeMask()) : chip.pending();
    if (irq < 0) return 0;
    chip.acknowledge(irq);
    this.update();
    return 0x80 | irq;
  }

  private writeByte(port: number, value: number): void {
    switch (port) {
      case PicPort.MasterCommand:
        this.master.writeCommand(value);
        break;
      case PicPort.MasterData:
        this.master.writeData(value);
        break;
      case PicPort.SlaveCommand:
        this.slave.writeCommand(value);
        break;
      case PicPort.SlaveData:
        this.slave.writeData(value);
        break;
      case PicPort.Elcr1:
        this.master.setElcr(value & ELCR1_WRITABLE);
        break;
      case PicPort.Elcr2:
        this.slave.setElcr(value & ELCR2_WRITABLE);
        break;
      default:
        return;
    }
    this.update();
  }

  /** Propagates the slave's INT into master IR2 and reports a rising CPU INT. */
  private update(): void {
    this.master.setInput(CASCADE_IRQ, this.slave.pending() >= 0);
    const out = this.hasInterrupt();
    const rose = out && !this.output;
    this.output = out;
    if (rose) this.onInterruptRequest?.();
  }
}
