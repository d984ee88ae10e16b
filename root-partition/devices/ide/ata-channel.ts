import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import type { AccessSize, InterruptLine } from '../port-io.ts';
import type { AtaDrive } from './ata-drive.ts';
import { AtaCommand, AtaControl, AtaError, AtaReg, AtaStatus, MAX_MULTIPLE_SECTORS, SECTOR_SIZE, STATUS_READY } from './ata-protocol.ts';
import { AtaTaskFile } from './ata-task-file.ts';
import type { BusMasterChannel } from './bus-master-ide.ts';
import { executeCommand } from './ata-commands.ts';
import { runDma, type DmaRequest } from './ata-dma.ts';
import { tracer, type Trace } from '../device-trace.ts';

/** A PIO data transfer in progress: one DRQ block at a time. */
export interface PioTransfer {
  readonly dir: 'in' | 'out';
  /** 'disk': blocks come from/go to the backend; 'buffer': a single block already in the buffer (IDENTIFY). */
  readonly source: 'disk' | 'buffer';
  readonly drive: AtaDrive;
  /** LBA of the current block. */
  lba: number;
  /** Sectors still to move, the current block included. */
  remaining: number;
  readonly blockSectors: number;
  /** Bytes in the current DRQ block. */
  blockBytes: number;
  /** Byte position inside the current block. */
  pos: number;
  /** The buffer holds the current block's data (reads load lazily, so a whole-block string read skips it). */
  loaded: boolean;
  /** WRITE MULTIPLE FUA EXT: the data is on the medium before the command completes. */
  readonly fua: boolean;
}

export interface AtaChannelOptions {
  name: string;
  irq: InterruptLine;
  memory: GuestMemory;
  master?: AtaDrive;
  slave?: AtaDrive;
  busMaster?: BusMasterChannel;
}

/**
 * One IDE channel: two drive positions sharing a task file, the status/error of each drive, the
 * device control register, INTRQ, and the PIO/DMA data phases. Commands complete synchronously
 * inside the OUT that issues them, so BSY is never seen by the guest except during SRST.
 */
export class AtaChannel {
  readonly name: string;
  readonly drives: readonly [AtaDrive | undefined, AtaDrive | undefined];
  readonly taskFile = new AtaTaskFile();
  readonly memory: GuestMemory;
  readonly busMaster: BusMasterChannel | undefined;
  /** Per drive position: status and error registers. */
  readonly status: [number, number];
  readonly error: [number, number] = [0x01, 0x01];
  control = 0;
  /** The drive's interrupt is pending (cleared by a Status read, SRST, or a new command). */
  intrq = false;
  /** Sectors moved by PIO and DMA since creation (for the I/O counters). */
  sectorsTransferred = 0;
  interruptsRaised = 0;
  pio: PioTransfer | undefined = undefined;
  dma: DmaRequest | undefined = undefined;
  private readonly irq: InterruptLine;
  private irqLevel = false;
  /** `TSVISOR_TRACE=ide`: one line per command and per error. */
  readonly trace: Trace | undefined = tracer('ide');
  /** One DRQ block: up to MAX_MULTIPLE_SECTORS sectors. */
  readonly buffer = new Uint8Array(MAX_MULTIPLE_SECTORS * SECTOR_SIZE);

  constructor(opts: AtaChannelOptions) {
    this.name = opts.name;
    this.irq = opts.irq;
    this.memory = opts.memory;
    this.drives = [opts.master, opts.slave];
    this.busMaster = opts.busMaster;
    this.status = [opts.master ? STATUS_READY : 0, opts.slave ? STATUS_READY : 0];
    this.taskFile.setSignature();
    if (this.busMaster) this.busMaster.onStart = () => this.tryStartDma();
  }

  get selected(): 0 | 1 {
    return this.taskFile.selected;
  }

  get selectedDrive(): AtaDrive | undefined {
    return this.drives[this.selected];
  }

  /** The IRQ pin: INTRQ of the selected drive unless nIEN (ATA/ATAPI-6, Device Control register: nIEN). */
  private updateIrq(): void {
    const level = this.intrq && !(this.control & AtaControl.Nien);
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (level) {
      this.interruptsRaised++;
      this.busMaster?.noteInterrupt();
    }
    this.irq.set(level);
  }

  /** Drives the IRQ line to the level INTRQ and nIEN call for, whatever it was (after a restore). */
  syncIrq(): void {
    this.irqLevel = this.intrq && !(this.control & AtaControl.Nien);
    this.irq.set(this.irqLevel);
  }

  raiseInterrupt(): void {
    this.intrq = true;
    this.updateIrq();
  }

  private clearInterrupt(): void {
    this.intrq = false;
    this.updateIrq();
  }

  // ---- register access -------------------------------------------------------------------

  readRegister(reg: number): number {
    switch (reg) {
      case AtaReg.ErrorFeatures:
        return this.drives[this.selected] ? this.error[this.selected] : 0;
      case AtaReg.StatusCommand: {
        const v = this.drives[this.selected] ? this.status[this.selected] : 0;
        this.clearInterrupt();
        return v;
      }
      default:
        return this.taskFile.read(reg, (this.control & AtaControl.Hob) !== 0);
    }
  }

  writeRegister(reg: number, value: number): void {
    // Any command block write clears HOB (ATA/ATAPI-6, Device Control register: HOB).
    this.control &= ~AtaControl.Hob;
    if (reg === AtaReg.StatusCommand) {
      this.command(value & 0xff);
      return;
    }
    this.taskFile.write(reg, value);
  }

  readAltStatus(): number {
    return this.drives[this.selected] ? this.status[this.selected] : 0;
  }

  writeControl(value: number): void {
    const wasReset = (this.control & AtaControl.Srst) !== 0;
    this.control = value & (AtaControl.Nien | AtaControl.Srst | AtaControl.Hob);
    const inReset = (this.control & AtaControl.Srst) !== 0;
    if (inReset && !wasReset) this.beginSoftwareReset();
    else if (!inReset && wasReset) this.endSoftwareReset();
    this.updateIrq();
  }

  private beginSoftwareReset(): void {
    this.pio = undefined;
    this.dma = undefined;
    this.intrq = false;
    for (const i of [0, 1] as const) if (this.drives[i]) this.status[i] = AtaStatus.Bsy;
  }

  /** End of SRST: signature, diagnostic code 01h, ready, no interrupt (ATA/ATAPI-6, software reset protocol). */
  private endSoftwareReset(): void {
    this.setDiagnosticResult();
  }

  /** Signature and diagnostic code, as after reset or EXECUTE DEVICE DIAGNOSTIC. */
  setDiagnosticResult(): void {
    this.taskFile.setSignature();
    for (const i of [0, 1] as const) {
      this.error[i] = 0x01;
      this.status[i] = this.drives[i] ? STATUS_READY : 0;
    }
  }

  /** Power-on / PCI reset. */
  reset(): void {
    this.control = 0;
    this.beginSoftwareReset();
    this.setDiagnosticResult();
    for (const d of this.drives) if (d) d.multipleSectors = 0;
    this.updateIrq();
  }

  private command(cmd: number): void {
    const i = this.selected;
    const drive = this.drives[i];
    // A new command ends whatever data phase was in progress and clears INTRQ (ATA/ATAPI-6, Command register).
    this.pio = undefined;
    this.dma = undefined;
    this.intrq = false;
    this.updateIrq();
    if (cmd === AtaCommand.ExecuteDeviceDiagnostic) {
      // Addressed to both drives whatever DEV says; device 0 reports for the pair.
      if (!this.drives[0] && !this.drives[1]) return;
      this.setDiagnosticResult();
      this.raiseInterrupt();
      return;
    }
    if (!drive) return; // no device answers: the command is ignored
    if (this.control & AtaControl.Srst) return;
    this.trace?.(`${this.name}/${i} command 0x${cmd.toString(16)} lba28=${this.taskFile.lba28()} lba48=${this.taskFile.lba48()} count=${this.taskFile.count}`);
    this.error[i] = 0;
    executeCommand(this, drive, cmd);
  }

  // ---- completions used by the command handlers -----------------------------------------

  /** Command finished without data (or after its last data block): ready, interrupt. */
  complete(interrupt = true, index: 0 | 1 = this.selected): void {
    this.status[index] = STATUS_READY;
    if (interrupt) this.raiseInterrupt();
  }

  /** Command ended in error: ERR with `error` bits, interrupt (ATA/ATAPI-6, each command's "Error outputs"). */
  fail(error: number = AtaError.Abrt, i: 0 | 1 = this.selected): void {
    this.trace?.(`${this.name}/${i} error 0x${error.toString(16)}`);
    this.pio = undefined;
    this.dma = undefined;
    this.error[i] = error;
    this.status[i] = STATUS_READY | AtaStatus.Err;
    this.raiseInterrupt();
  }

  /**
   * A write that did not reach the medium (the image's write or flush failed): ERR with DF
   * (device fault) in the status, and the LBA registers holding the first sector not written —
   * ATA/ATAPI-6, FLUSH CACHE: "the Command Block registers contain the sector address of the
   * sector where the first unrecoverable error occurred". Not ABRT, which tells a driver that the
   * command itself was refused (unsupported or invalid), so retrying it unchanged is pointless.
   * Both address forms are loaded: the 28-bit one (with device bits 3:0) and the 48-bit one.
   */
  writeFault(lba: number, i: 0 | 1 = this.selected): void {
    this.trace?.(`${this.name}/${i} write fault at sector ${lba}`);
    this.pio = undefined;
    this.dma = undefined;
    this.taskFile.setErrorLba(lba);
    this.error[i] = 0;
    this.status[i] = STATUS_READY | AtaStatus.Df | AtaStatus.Err;
    this.raiseInterrupt();
  }

  // ---- PIO --------------------------------------------------------------------------------

  /** Starts a PIO data-in command: the first block is ready at once, with an interrupt. */
  startPioIn(drive: AtaDrive, lba: number, sectors: number, blockSectors: number): void {
    this.pio = { dir: 'in', source: 'disk', drive, lba, remaining: sectors, blockSectors, blockBytes: 0, pos: 0, loaded: false, fua: false };
    this.nextBlock(true);
  }

  /** PIO data-out: DRQ for the first block without an interrupt (ATA/ATAPI-6, PIO data-out protocol). */
  startPioOut(drive: AtaDrive, lba: number, sectors: number, blockSectors: number, fua = false): void {
    this.pio = { dir: 'out', source: 'disk', drive, lba, remaining: sectors, blockSectors, blockBytes: 0, pos: 0, loaded: false, fua };
    this.nextBlock(false);
  }

  /** A one-block data-in from the buffer (IDENTIFY DEVICE). */
  startBufferIn(drive: AtaDrive, data: Uint8Array): void {
    this.buffer.set(data);
    this.pio = { dir: 'in', source: 'buffer', drive, lba: 0, remaining: 1, blockSectors: 1, blockBytes: data.length, pos: 0, loaded: true, fua: false };
    this.status[this.selected] = STATUS_READY | AtaStatus.Drq;
    this.raiseInterrupt();
  }

  private nextBlock(interrupt: boolean): void {
    const p = this.pio!;
    const n = Math.min(p.remaining, p.blockSectors);
    p.blockBytes = n * SECTOR_SIZE;
    p.pos = 0;
    p.loaded = false;
    this.status[this.selected] = STATUS_READY | AtaStatus.Drq;
    if (interrupt) this.raiseInterrupt();
  }

  /** The current data-in block is fully read. */
  private blockRead(): void {
    const p = this.pio!;
    const n = p.blockBytes / SECTOR_SIZE;
    if (p.source === 'disk') this.sectorsTransferred += n;
    p.remaining -= n;
    p.lba += n;
    if (p.remaining > 0) {
      this.nextBlock(true);
    } else {
      this.pio = undefined;
      this.complete(false); // no interrupt after the last data-in block
    }
  }

  /** The current data-out block is fully written by the guest: commit it from `src`. */
  private blockWritten(src: Uint8Array): void {
    const p = this.pio!;
    const n = p.blockBytes / SECTOR_SIZE;
    try {
      p.drive.backend.write(p.lba, src);
      // With the write cache disabled, completion means the data is on the medium (ATA/ATAPI-6,
      // SET FEATURES: disable write cache); FUA asks the same of this command (ATA8-ACS, WRITE
      // MULTIPLE FUA EXT), which the last block's flush gives.
      if (!p.drive.writeCache || (p.fua && p.remaining === n)) p.drive.backend.flush();
    } catch (e) {
      this.writeFault(failedSector(e, p.lba));
      return;
    }
    this.sectorsTransferred += n;
    p.remaining -= n;
    p.lba += n;
    if (p.remaining > 0) {
      this.nextBlock(true);
    } else {
      this.pio = undefined;
      this.complete(true);
    }
  }

  /** Loads the current data-in block into the buffer, unless it is there already. */
  private ensureLoaded(p: PioTransfer): boolean {
    if (p.loaded) return true;
    try {
      p.drive.backend.read(p.lba, this.buffer.subarray(0, p.blockBytes));
    } catch {
      this.fail(AtaError.Unc);
      return false;
    }
    p.loaded = true;
    return true;
  }

  /** IN from the data port: one word (or two for a 32-bit access, which the PIIX4 splits). */
  readData(size: AccessSize): number {
    if (size === 1) return 0xff; // the data port is 16 bits wide; 8-bit PIO is not enabled
    const words = size / 2;
    let v = 0;
    for (let w = 0; w < words; w++) {
      const p = this.pio;
      if (p?.dir !== 'in' || !this.ensureLoaded(p)) break;
      v |= (this.buffer[p.pos]! | (this.buffer[p.pos + 1]! << 8)) << (16 * w);
      p.pos += 2;
      if (p.pos >= p.blockBytes) this.blockRead();
    }
    return v >>> 0;
  }

  writeData(size: AccessSize, value: number): void {
    if (size === 1) return;
    const words = size / 2;
    for (let w = 0; w < words; w++) {
      const p = this.pio;
      if (p?.dir !== 'out') return;
      const word = (value >>> (16 * w)) & 0xffff;
      this.buffer[p.pos] = word & 0xff;
      this.buffer[p.pos + 1] = word >> 8;
      p.pos += 2;
      if (p.pos >= p.blockBytes) this.blockWritten(this.buffer.subarray(0, p.blockBytes));
    }
  }

  /**
   * `rep insw/insd` from the data port. A block the call covers whole goes straight from the
   * backend into the guest view; a partial block goes through the buffer. The emulated drive has
   * the next DRQ block ready at once, so one call may continue into it (raising that block's
   * interrupt as usual): a driver that reads one block per interrupt sees exactly the ATA protocol,
   * and a single `rep insw` over several blocks still gets all its data. Returns the units moved;
   * fewer than `count` only when the data phase ended (the rest of the view is left untouched).
   */
  readDataString(size: AccessSize, dst: Uint8Array, count: number): number {
    if (size === 1) return 0;
    const total = count * size;
    let done = 0;
    for (;;) {
      const p = this.pio;
      if (p?.dir !== 'in') break;
      const bytes = wholeUnits(Math.min(total - done, p.blockBytes - p.pos), size);
      if (bytes <= 0) break;
      const out = dst.subarray(done, done + bytes);
      if (!p.loaded && p.pos === 0 && bytes === p.blockBytes) {
        try {
          p.drive.backend.read(p.lba, out);
        } catch {
          this.fail(AtaError.Unc);
          break;
        }
      } else {
        if (!this.ensureLoaded(p)) break;
        out.set(this.buffer.subarray(p.pos, p.pos + bytes));
      }
      done += bytes;
      p.pos += bytes;
      if (p.pos >= p.blockBytes) this.blockRead();
    }
    return done / size;
  }

  /** `rep outsw/outsd` to the data port: whole blocks go from the guest view to the backend directly. */
  writeDataString(size: AccessSize, src: Uint8Array, count: number): number {
    if (size === 1) return 0;
    const total = count * size;
    let done = 0;
    for (;;) {
      const p = this.pio;
      if (p?.dir !== 'out') break;
      const bytes = wholeUnits(Math.min(total - done, p.blockBytes - p.pos), size);
      if (bytes <= 0) break;
      const part = src.subarray(done, done + bytes);
      done += bytes;
      if (p.pos === 0 && bytes === p.blockBytes) {
        p.pos = bytes;
        this.blockWritten(part);
      } else {
        this.buffer.set(part, p.pos);
        p.pos += bytes;
        if (p.pos >= p.blockBytes) this.blockWritten(this.buffer.subarray(0, p.blockBytes));
      }
    }
    return done / size;
  }

  // ---- DMA --------------------------------------------------------------------------------

  /** A DMA command is accepted: DRQ (DMARQ) until the bus master runs it. */
  startDma(req: DmaRequest): void {
    if (!this.busMaster) {
      this.fail(AtaError.Abrt);
      return;
    }
    this.dma = req;
    this.status[this.selected] = STATUS_READY | AtaStatus.Drq;
    this.tryStartDma();
  }

  private tryStartDma(): void {
    const req = this.dma;
    const bm = this.busMaster;
    if (!req || !bm?.canTransfer) return;
    this.dma = undefined;
    runDma(this, bm, req);
  }
}

/** The sector a backend error names (DiskIoError.lba), else the one the failing request started at. */
export function failedSector(e: unknown, fallback: number): number {
  const lba = (e as { lba?: unknown })?.lba;
  return typeof lba === 'number' && Number.isSafeInteger(lba) && lba >= 0 ? lba : fallback;
}

/** `bytes` rounded down to whole `size`-byte units. */
function wholeUnits(bytes: number, size: number): number {
  return bytes - (bytes % size);
}
