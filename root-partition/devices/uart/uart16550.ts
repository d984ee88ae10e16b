import type { AccessSize, InterruptLine, PortIoDevice, PortRange } from '../port-io.ts';
import { encodeState, openState, stateError, type DeviceStateRecord, type SavableDevice } from '../device-state.ts';
import { BAUD_BASE, FIFO_SIZE, Fcr, Ier, Iir, Lcr, Lsr, Mcr, Msr, RX_TRIGGER_LEVELS, UartReg } from './uart16550-registers.ts';

/** Receives what the guest transmits. `bytes` may alias guest memory: copy what you keep. */
export type UartSink = (bytes: Uint8Array) => void;

export interface Uart16550Options {
  name?: string;
  /** First of the 8 ports (0x3F8 for COM1). */
  base: number;
  /** The ISA IRQ line (IRQ 4 for COM1), gated by MCR.OUT2 as on PC boards. */
  irq: InterruptLine;
  /** Console output. Absent: transmitted bytes are dropped. */
  sink?: UartSink;
  /** Bytes of host input held back while the RX FIFO is full (host-side flow control). */
  maxPendingInput?: number;
}

/** Modem inputs of a connected host terminal: CTS, DSR and DCD asserted, RI idle. */
const HOST_MODEM_INPUTS = Msr.Cts | Msr.Dsr | Msr.Dcd;

/**
 * A 16550A UART. Transmission is instantaneous (the character goes to the sink during the OUT),
 * so THR and the transmitter are always empty afterwards and the THRE interrupt re-arms at once,
 * which is how a driver sees an infinitely fast line. Host input waits in a queue and enters the
 * RX FIFO as the guest drains it, so console input never overruns; the overrun path is reachable
 * through loopback, as on hardware.
 */
const STATE_VERSION = 1;

export class Uart16550 implements PortIoDevice, SavableDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];
  readonly base: number;
  private readonly irq: InterruptLine;
  private readonly maxPendingInput: number;
  sink: UartSink | undefined;

  ier = 0;
  lcr = 0;
  mcr = 0;
  scr = 0;
  divisor = 0x000c;
  fifoEnabled = false;
  rxTrigger = 1;
  /** Line-status error bits (OE, PE, FE, BI) latched until LSR is read. */
  private lsrErrors = 0;
  /** MSR delta bits latched until MSR is read. */
  private msrDeltas = 0;
  private modemInputs = HOST_MODEM_INPUTS;
  /** The THRE interrupt condition (cleared by an IIR read reporting it, or a THR write). */
  private thrInterrupt = false;
  private readonly rx: number[] = [];
  private readonly hostInput: number[] = [];
  private hostHead = 0;
  private irqLevel = false;

  constructor(opts: Uart16550Options) {
    this.base = opts.base;
    this.name = opts.name ?? `uart16550@0x${opts.base.toString(16)}`;
    this.ports = [{ base: opts.base, length: 8 }];
    this.irq = opts.irq;
    this.sink = opts.sink;
    this.maxPendingInput = opts.maxPendingInput ?? 1 << 20;
  }

  get baudRate(): number {
    return this.divisor === 0 ? 0 : BAUD_BASE / this.divisor;
  }

  /** Host input (keyboard of the console). Returns the bytes accepted. */
  receive(bytes: Uint8Array): number {
    const room = Math.max(0, this.maxPendingInput - this.pendingInput);
    const n = Math.min(room, bytes.length);
    for (let i = 0; i < n; i++) this.hostInput.push(bytes[i]!);
    this.refillRx();
    this.updateIrq();
    return n;
  }

  /** Bytes of host input not yet in the RX FIFO. */
  get pendingInput(): number {
    return this.hostInput.length - this.hostHead;
  }

  read(port: number, size: AccessSize): number {
    // Wider accesses read consecutive registers, as two/four byte cycles on the ISA bus would.
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readReg((port - this.base + i) & 0xff) << (8 * i);
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.writeReg((port - this.base + i) & 0xff, (value >>> (8 * i)) & 0xff);
  }

  /** `rep outsb` to THR: the whole buffer reaches the sink in one call. */
  writeString(port: number, size: AccessSize, src: Uint8Array, count: number): number {
    if (size !== 1 || port !== this.base + UartReg.RbrThrDll || this.lcr & Lcr.Dlab || this.mcr & Mcr.Loop) {
      for (let i = 0; i < count; i++) this.write(port, size, readUnit(src, i, size));
      return count;
    }
    if (count > 0) {
      this.sink?.(src.subarray(0, count));
      this.transmitted();
    }
    return count;
  }

  /** `rep insb` from RBR: drains the FIFO; units beyond it read as an empty RBR (0). */
  readString(port: number, size: AccessSize, dst: Uint8Array, count: number): number {
    if (size !== 1 || port !== this.base + UartReg.RbrThrDll || this.lcr & Lcr.Dlab) {
      for (let i = 0; i < count; i++) writeUnit(dst, i, size, this.read(port, size));
      return count;
    }
    for (let i = 0; i < count; i++) dst[i] = this.readRbr();
    this.updateIrq();
    return count;
  }

  reset(): void {
    this.ier = this.lcr = this.mcr = this.scr = 0;
    this.fifoEnabled = false;
    this.rxTrigger = 1;
    this.lsrErrors = this.msrDeltas = 0;
    this.modemInputs = HOST_MODEM_INPUTS;
    this.thrInterrupt = false;
    this.rx.length = 0;
    // Host input held back by loopback reaches the receiver now, as when the guest clears MCR.LOOP.
    this.refillRx();
    this.updateIrq();
  }

  /** Registers, FIFO contents and pending host input; the record is named after the device. */
  saveState(): DeviceStateRecord {
    return {
      name: this.name,
      version: STATE_VERSION,
      state: encodeState({
        ier: this.ier,
        lcr: this.lcr,
        mcr: this.mcr,
        scr: this.scr,
        divisor: this.divisor,
        fifoEnabled: this.fifoEnabled,
        rxTrigger: this.rxTrigger,
        lsrErrors: this.lsrErrors,
        msrDeltas: this.msrDeltas,
        modemInputs: this.modemInputs,
        thrInterrupt: this.thrInterrupt,
        rx: Uint8Array.from(this.rx),
        hostInput: Uint8Array.from(this.hostInput.slice(this.hostHead)),
      }),
    };
  }

  /** Restores and re-drives the IRQ line to match. A bad record changes nothing. */
  restoreState(record: DeviceStateRecord): void {
    const r = openState(record, this.name, STATE_VERSION);
    const v = {
      ier: r.int('ier', 0, 0x0f),
      lcr: r.int('lcr', 0, 0xff),
      mcr: r.int('mcr', 0, 0x1f),
      scr: r.int('scr', 0, 0xff),
      divisor: r.int('divisor', 0, 0xffff),
      fifoEnabled: r.bool('fifoEnabled'),
      rxTrigger: r.int('rxTrigger', 1, 14),
      lsrErrors: r.int('lsrErrors', 0, 0x1e),
      msrDeltas: r.int('msrDeltas', 0, 0x0f),
      modemInputs: r.int('modemInputs', 0, 0xf0) & 0xf0,
      thrInterrupt: r.bool('thrInterrupt'),
    };
    if (!(RX_TRIGGER_LEVELS as readonly number[]).includes(v.rxTrigger)) throw stateError(`${this.name}.rxTrigger ${v.rxTrigger} is not a 16550 trigger level`);
    const rx = r.bytes('rx', 0, FIFO_SIZE);
    const hostInput = r.bytes('hostInput', 0, this.maxPendingInput);
    Object.assign(this, v);
    this.rx.length = 0;
    this.rx.push(...rx);
    this.hostInput.length = 0;
    this.hostHead = 0;
    for (const b of hostInput) this.hostInput.push(b);
    // Drive the line to the restored level whatever it was before.
    this.irqLevel = this.irqPinLevel();
    this.irq.set(this.irqLevel);
  }

  /** IIR as the guest would read it now (without the read side effect). */
  interruptIdentification(): number {
    return this.currentSource() | (this.fifoEnabled ? Iir.FifoEnabled : 0);
  }

  get lsr(): number {
    let v = this.lsrErrors | Lsr.Thre | Lsr.Temt;
    if (this.rx.length > 0) v |= Lsr.Dr;
    return v;
  }

  get msr(): number {
    return this.modemStatus() | this.msrDeltas;
  }

  private readReg(reg: number): number {
    const dlab = (this.lcr & Lcr.Dlab) !== 0;
    switch (reg) {
      case UartReg.RbrThrDll: {
        if (dlab) return this.divisor & 0xff;
        const v = this.readRbr();
        this.updateIrq();
        return v;
      }
      case UartReg.IerDlm:
        return dlab ? (this.divisor >> 8) & 0xff : this.ier;
      case UartReg.IirFcr: {
        const src = this.currentSource();
        // Reading IIR while it reports THRE clears that interrupt (16550 datasheet, table 5).
        if (src === Iir.Thre) {
          this.thrInterrupt = false;
          this.updateIrq();
        }
        return src | (this.fifoEnabled ? Iir.FifoEnabled : 0);
      }
      case UartReg.Lcr:
        return this.lcr;
      case UartReg.Mcr:
        return this.mcr;
      case UartReg.Lsr: {
        const v = this.lsr;
        this.lsrErrors = 0;
        this.updateIrq();
        return v;
      }
      case UartReg.Msr: {
        const v = this.msr;
        this.msrDeltas = 0;
        this.updateIrq();
        return v;
      }
      case UartReg.Scr:
        return this.scr;
      default:
        return 0xff;
    }
  }

  private writeReg(reg: number, value: number): void {
    const dlab = (this.lcr & Lcr.Dlab) !== 0;
    switch (reg) {
      case UartReg.RbrThrDll:
        if (dlab) this.divisor = (this.divisor & 0xff00) | value;
        else this.transmit(value);
        break;
      case UartReg.IerDlm:
        if (dlab) {
          this.divisor = (this.divisor & 0x00ff) | (value << 8);
        } else {
          const was = this.ier;
          this.ier = value & 0x0f;
          // Enabling ETBEI while THR is empty raises THRE at once (the transmitter is always empty here).
          if (this.ier & Ier.Thre && !(was & Ier.Thre)) this.thrInterrupt = true;
        }
        break;
      case UartReg.IirFcr:
        this.writeFcr(value);
        break;
      case UartReg.Lcr:
        this.lcr = value;
        break;
      case UartReg.Mcr:
        this.writeMcr(value & 0x1f);
        break;
      case UartReg.Scr:
        this.scr = value;
        break;
      default:
        return; // LSR and MSR are read-only
    }
    this.updateIrq();
  }

  private writeFcr(value: number): void {
    const enable = (value & Fcr.Enable) !== 0;
    // Changing the FIFO enable bit clears both FIFOs (16550 datasheet, FCR bit 0).
    if (enable !== this.fifoEnabled || value & Fcr.ClearRx) {
      this.rx.length = 0;
      this.lsrErrors &= ~Lsr.Oe;
    }
    this.fifoEnabled = enable;
    this.rxTrigger = RX_TRIGGER_LEVELS[(value >> 6) & 3]!;
    this.refillRx();
  }

  private writeMcr(value: number): void {
    const before = this.modemStatus();
    this.mcr = value;
    this.noteModemChange(before, this.modemStatus());
    this.refillRx();
  }

  private transmit(byte: number): void {
    if (this.mcr & Mcr.Loop) {
      this.pushRx(byte);
    } else {
      this.sink?.(Uint8Array.of(byte));
    }
    this.transmitted();
  }

  /** THR written and sent: the THRE interrupt is cleared by the write and raised by the emptying. */
  private transmitted(): void {
    this.thrInterrupt = (this.ier & Ier.Thre) !== 0;
    this.updateIrq();
  }

  private rxCapacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  /** A character arriving at the receiver shift register (loopback path). */
  private pushRx(byte: number): void {
    if (this.rx.length >= this.rxCapacity()) {
      // 16450 mode overwrites RBR; in FIFO mode the shift register's character is lost.
      if (!this.fifoEnabled) this.rx[0] = byte;
      this.lsrErrors |= Lsr.Oe;
      return;
    }
    this.rx.push(byte);
  }

  private refillRx(): void {
    const cap = this.rxCapacity();
    // Loopback disconnects the serial input (SIN) from the receiver.
    if (this.mcr & Mcr.Loop) return;
    while (this.rx.length < cap && this.hostHead < this.hostInput.length) this.rx.push(this.hostInput[this.hostHead++]!);
    if (this.hostHead === this.hostInput.length) {
      this.hostInput.length = 0;
      this.hostHead = 0;
    } else if (this.hostHead >= 4096) {
      this.hostInput.splice(0, this.hostHead);
      this.hostHead = 0;
    }
  }

  private readRbr(): number {
    const v = this.rx.length > 0 ? this.rx.shift()! : 0;
    this.refillRx();
    return v;
  }

  /** MSR bits 7:4: in loopback DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD (16550 datasheet, MCR bit 4). */
  private modemStatus(): number {
    if (!(this.mcr & Mcr.Loop)) return this.modemInputs;
    let v = 0;
    if (this.mcr & Mcr.Rts) v |= Msr.Cts;
    if (this.mcr & Mcr.Dtr) v |= Msr.Dsr;
    if (this.mcr & Mcr.Out1) v |= Msr.Ri;
    if (this.mcr & Mcr.Out2) v |= Msr.Dcd;
    return v;
  }

  private noteModemChange(before: number, after: number): void {
    const changed = before ^ after;
    if (changed & Msr.Cts) this.msrDeltas |= Msr.Dcts;
    if (changed & Msr.Dsr) this.msrDeltas |= Msr.Ddsr;
    if (changed & Msr.Dcd) this.msrDeltas |= Msr.Ddcd;
    if (before & Msr.Ri && !(after & Msr.Ri)) this.msrDeltas |= Msr.Teri; // trailing edge only
  }

  /** The highest-priority enabled source (16550 datasheet, table "Interrupt control functions"). */
  private currentSource(): number {
    if (this.ier & Ier.Rls && this.lsrErrors & (Lsr.Oe | Lsr.Pe | Lsr.Fe | Lsr.Bi)) return Iir.Rls;
    if (this.ier & Ier.Rda && this.rx.length > 0) {
      if (!this.fifoEnabled || this.rx.length >= this.rxTrigger) return Iir.Rda;
      // Below the trigger level the character timeout fires once four character times pass with
      // no FIFO activity; with an instantaneous line that time has always passed.
      return Iir.CharTimeout;
    }
    if (this.ier & Ier.Thre && this.thrInterrupt) return Iir.Thre;
    if (this.ier & Ier.Ms && this.msrDeltas) return Iir.ModemStatus;
    return Iir.NoInterrupt;
  }

  /**
   * The IRQ pin: on PC boards the INTR output reaches the PIC only through a buffer enabled by
   * OUT2; loopback forces the OUT pins inactive, so it also disconnects the IRQ.
   */
  private irqPinLevel(): boolean {
    return this.currentSource() !== Iir.NoInterrupt && (this.mcr & (Mcr.Out2 | Mcr.Loop)) === Mcr.Out2;
  }

  private updateIrq(): void {
    const level = this.irqPinLevel();
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.set(level);
    }
  }
}

function readUnit(src: Uint8Array, i: number, size: number): number {
  let v = 0;
  for (let b = 0; b < size; b++) v |= src[i * size + b]! << (8 * b);
  return v >>> 0;
}

function writeUnit(dst: Uint8Array, i: number, size: number, v: number): void {
  for (let b = 0; b < size; b++) dst[i * size + b] = (v >>> (8 * b)) & 0xff;
}
