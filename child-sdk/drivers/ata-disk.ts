// An ATA hard disk on a PIIX4 IDE channel, as a BlockDevice. Three ways to move data, chosen at
// attach: PIO one 16-bit IN/OUT per word (what a minimal driver does), PIO by string I/O (one
// `rep insw/outsw` per DRQ block, with READ/WRITE MULTIPLE to make a block up to IDENTIFY word 47
// sectors), and bus-master DMA through a PRD table. Every wait is for IRQ 14/15 (ATA/ATAPI-6
// PIO and DMA protocols: the host reads Status once per interrupt), never a status polling loop.
import { inw, outw, insw, outsw, outl } from "../platform/hv";
import { pageAlloc } from "../kernel/pages";
import { BlockDevice, BLOCK_OK, BLOCK_IO_ERROR, BLOCK_OUT_OF_RANGE, BLOCK_BAD_REQUEST, BLOCK_QUEUE_FULL, BLOCK_NOT_READY, SECTOR_SIZE } from "./block-device";
import * as R from "./ata-registers";
import { ataIn8, ataOut8, ataCountAccesses, ataChannelInit, ataExpectInterrupt, ataWaitInterrupt, ataLastBmStatus, ataInterruptPending } from "./ata-interrupts";
import { prdBuild } from "./ata-prd";
import { identifyValid, identifyCapacity, identifyWord } from "./ata-identify";

/** AtaDisk.attach modes: PIO one IN/OUT per word, PIO by string I/O per sector, PIO READ/WRITE MULTIPLE, bus-master DMA. */
export const ATA_PIO_WORD: u32 = 0;
export const ATA_PIO_STRING: u32 = 1;
export const ATA_PIO_MULTIPLE: u32 = 2;
export const ATA_DMA: u32 = 3;

/** Requests are split to this many sectors (the largest LBA28 count, 128 KiB). */
const MAX_SECTORS: u32 = 256;
/** PRD entries in the driver's one-page table. */
const PRD_ENTRIES: u32 = 512;

/** An ATA disk on a PIIX4 IDE channel (attach first); one command in flight, every wait an IRQ 14/15 halt. */
export class AtaDisk extends BlockDevice {
  channel: u32 = 0;
  drive: u32 = 0;
  mode: u32 = ATA_PIO_STRING;
  /** Capacity from IDENTIFY words 100–103 (48-bit) or 60–61. */
  capacity: u64 = 0;
  /** The drive supports the 48-bit feature set (IDENTIFY word 83 bit 10). */
  lba48: bool = false;
  /** Use the EXT commands for every request, not only for those beyond LBA 0FFFFFFFh. */
  always48: bool = false;
  /** Sectors per DRQ block set by SET MULTIPLE MODE (PIO multiple mode only). */
  multiple: u32 = 0;
  /** Status and Error of the last failed command, and the BM status of the last DMA. */
  lastStatus: u32 = 0;
  lastError: u32 = 0;
  lastBmStatus: u32 = 0;
  private commandBase: u32 = 0;
  private controlPort: u32 = 0;
  private bmBase: u32 = 0;
  private prdTable: usize = 0;
  private identifyPage: usize = 0;
  private nextTag: i32 = 0;
  private doneTag: i32 = -1;
  private doneStatus: i32 = 0;

  /**
   * Finds and configures drive `drive` (0 master, 1 slave) on `channel` (0 primary, 1 secondary):
   * installs the IRQ handler at `vector`, IDENTIFY DEVICE, then SET MULTIPLE MODE or the DMA
   * transfer mode as `mode` needs. `bmBase` is the PIIX4 BAR4 base (0 without bus mastering).
   */
  attach(channel: u32, drive: u32, mode: u32, bmBase: u32, vector: u32): i32 {
    this.channel = channel;
    this.drive = drive;
    this.mode = mode;
    this.commandBase = channel == 0 ? R.ATA_PRIMARY_COMMAND : R.ATA_SECONDARY_COMMAND;
    this.controlPort = channel == 0 ? R.ATA_PRIMARY_CONTROL : R.ATA_SECONDARY_CONTROL;
    this.bmBase = bmBase == 0 ? 0 : bmBase + channel * 8;
    ataChannelInit(channel, this.commandBase, this.bmBase, channel == 0 ? R.ATA_PRIMARY_IRQ : R.ATA_SECONDARY_IRQ, vector);
    ataOut8(this.controlPort, 0); // nIEN clear: the drive may interrupt
    ataOut8(this.commandBase + R.REG_DEVICE, this.deviceBits());
    // An absent device 1 reads Status 00h (device 0 answers for it in a device-0-only
    // configuration, ATA/ATAPI-6); a channel with no device at all floats to FFh.
    const present = ataIn8(this.controlPort);
    if (present == 0 || present == 0xff) return BLOCK_NOT_READY;

    if (this.identifyPage == 0) this.identifyPage = pageAlloc();
    const page = this.identifyPage;
    ataExpectInterrupt(channel, 0);
    ataOut8(this.commandBase + R.REG_STATUS_COMMAND, R.CMD_IDENTIFY_DEVICE);
    const st = ataWaitInterrupt(channel);
    if ((st & R.STATUS_ERR) != 0) return this.fail(st);
    if ((st & R.STATUS_DRQ) == 0) return BLOCK_IO_ERROR;
    this.readBlock(page, 256);
    if (!identifyValid(page)) return BLOCK_IO_ERROR;
    if ((identifyWord(page, R.ID_CAPABILITIES) & (1 << 9)) == 0) return BLOCK_NOT_READY; // CHS-only drives are not supported
    this.lba48 = (identifyWord(page, R.ID_COMMAND_SET_2) & (1 << 10)) != 0;
    this.capacity = identifyCapacity(page, this.lba48);

    if (mode == ATA_PIO_MULTIPLE) {
      // SET MULTIPLE MODE takes a power of two up to word 47 bits 7:0 (ATA/ATAPI-6, SET MULTIPLE MODE).
      const max = identifyWord(page, R.ID_MAX_MULTIPLE) & 0xff;
      if (max == 0) return BLOCK_NOT_READY;
      const block: u32 = 1 << (31 - clz<u32>(max));
      const r = this.noDataCommand(R.CMD_SET_MULTIPLE_MODE, 0, block);
      if (r != BLOCK_OK) return r;
      this.multiple = block;
    } else if (mode == ATA_DMA) {
      if (this.bmBase == 0 || (identifyWord(page, R.ID_CAPABILITIES) & (1 << 8)) == 0) return BLOCK_NOT_READY;
      const r = this.noDataCommand(R.CMD_SET_FEATURES, R.FEATURE_SET_TRANSFER_MODE, R.TRANSFER_MODE_MWDMA2);
      if (r != BLOCK_OK) return r;
      if (this.prdTable == 0) this.prdTable = pageAlloc();
      if (this.prdTable == 0) return BLOCK_NOT_READY;
    }
    return BLOCK_OK;
  }

  /** Capacity in sectors from IDENTIFY (0 before attach). */
  sectorCount(): u64 { return this.capacity; }
  /** Always 1: ATA runs one command per channel. */
  queueDepth(): u32 { return 1; }
  /** MAX_SECTORS (256); longer read/write calls are split into several commands. */
  maxSectorsPerRequest(): u32 { return MAX_SECTORS; }

  /** Reads via split(): commands of up to 256 sectors in the attached mode. BLOCK_OUT_OF_RANGE past the capacity. */
  read(lba: u64, sectors: u32, buffer: usize): i32 {
    return this.split(false, lba, sectors, buffer);
  }

  /** Writes via split(): commands of up to 256 sectors in the attached mode. BLOCK_OUT_OF_RANGE past the capacity. */
  write(lba: u64, sectors: u32, buffer: usize): i32 {
    return this.split(true, lba, sectors, buffer);
  }

  /** FLUSH CACHE (EXT on 48-bit drives): done means the data is on the medium (ATA/ATAPI-6, FLUSH CACHE and FLUSH CACHE EXT). */
  flush(): i32 {
    return this.noDataCommand(this.lba48 ? R.CMD_FLUSH_CACHE_EXT : R.CMD_FLUSH_CACHE, 0, 0);
  }

  /** ATA keeps one command per channel in flight: a submit runs to completion before it returns. */
  submit(write: bool, lba: u64, sectors: u32, buffer: usize): i32 {
    if (this.doneTag >= 0) return BLOCK_QUEUE_FULL;
    const status = this.split(write, lba, sectors, buffer);
    const tag = this.nextTag;
    this.nextTag = (this.nextTag + 1) & 0x7fff_ffff;
    this.doneTag = tag;
    this.doneStatus = status;
    return tag;
  }

  /** Returns the one completed submit (its tag and status) if there is one; never waits, since submit already completed it. */
  poll(tags: usize, statuses: usize, max: u32, wait: bool): u32 {
    if (this.doneTag < 0 || max == 0) return 0;
    store<i32>(tags, this.doneTag);
    store<i32>(statuses, this.doneStatus);
    this.doneTag = -1;
    return 1;
  }

  /** 1 while a submitted request has not been reaped by poll, else 0. */
  inFlight(): u32 { return this.doneTag >= 0 ? 1 : 0; }

  private split(write: bool, lba: u64, sectors: u32, buffer: usize): i32 {
    if (sectors == 0) return BLOCK_BAD_REQUEST;
    if (lba + <u64>sectors > this.capacity || lba + <u64>sectors < lba) return BLOCK_OUT_OF_RANGE;
    while (sectors > 0) {
      const n = sectors < MAX_SECTORS ? sectors : MAX_SECTORS;
      const r = this.transfer(write, lba, n, buffer, 0);
      if (r != BLOCK_OK) return r;
      lba += n;
      buffer += <usize>n * SECTOR_SIZE;
      sectors -= n;
    }
    return BLOCK_OK;
  }

  /**
   * One command of 1–256 sectors, without the capacity check: the drive itself answers a range
   * past its end (IDNF). For DMA, `prdTable` other than 0 uses that table as the guest built it
   * instead of describing `buffer` (for exercising the controller's checks).
   */
  transfer(write: bool, lba: u64, sectors: u32, buffer: usize, prdTable: usize): i32 {
    if (sectors == 0 || sectors > MAX_SECTORS) return BLOCK_BAD_REQUEST;
    const beyond28 = lba + <u64>sectors > R.LBA28_LIMIT + 1;
    if (beyond28 && !this.lba48) return BLOCK_OUT_OF_RANGE;
    const ext = beyond28 || (this.always48 && this.lba48);
    if (this.mode == ATA_DMA) return this.dmaTransfer(write, lba, sectors, buffer, ext, prdTable);
    return write ? this.pioOut(lba, sectors, buffer, ext) : this.pioIn(lba, sectors, buffer, ext);
  }

  // ---- PIO ----------------------------------------------------------------------------------

  private blockSectors(): u32 {
    return this.mode == ATA_PIO_MULTIPLE ? this.multiple : 1;
  }

  /** PIO data-in (ATA/ATAPI-6, PIO data-in command protocol): per DRQ block, an interrupt, Status, then the data. */
  private pioIn(lba: u64, sectors: u32, buffer: usize, ext: bool): i32 {
    const multiple = this.mode == ATA_PIO_MULTIPLE;
    const cmd = multiple ? (ext ? R.CMD_READ_MULTIPLE_EXT : R.CMD_READ_MULTIPLE) : (ext ? R.CMD_READ_SECTORS_EXT : R.CMD_READ_SECTORS);
    const block = this.blockSectors();
    ataExpectInterrupt(this.channel, 0);
    this.loadTaskFile(lba, sectors, ext);
    ataOut8(this.commandBase + R.REG_STATUS_COMMAND, cmd);
    let left = sectors;
    let at = buffer;
    while (left > 0) {
      const st = ataWaitInterrupt(this.channel);
      if ((st & (R.STATUS_ERR | R.STATUS_DF)) != 0) return this.fail(st);
      if ((st & R.STATUS_DRQ) == 0) return BLOCK_IO_ERROR;
      const n = left < block ? left : block;
      this.readBlock(at, n * 256);
      at += <usize>n * SECTOR_SIZE;
      left -= n;
    }
    return BLOCK_OK;
  }

  /**
   * PIO data-out (ATA/ATAPI-6, PIO data-out command protocol): the first block is asked for by DRQ without an interrupt
   * (read from Alternate Status, which leaves INTRQ alone); every block after it, and the end of
   * the command, by an interrupt.
   */
  private pioOut(lba: u64, sectors: u32, buffer: usize, ext: bool): i32 {
    const multiple = this.mode == ATA_PIO_MULTIPLE;
    const cmd = multiple ? (ext ? R.CMD_WRITE_MULTIPLE_EXT : R.CMD_WRITE_MULTIPLE) : (ext ? R.CMD_WRITE_SECTORS_EXT : R.CMD_WRITE_SECTORS);
    const block = this.blockSectors();
    ataExpectInterrupt(this.channel, 0);
    this.loadTaskFile(lba, sectors, ext);
    ataOut8(this.commandBase + R.REG_STATUS_COMMAND, cmd);
    let st = ataIn8(this.controlPort);
    let left = sectors;
    let at = buffer;
    while (left > 0) {
      if ((st & (R.STATUS_ERR | R.STATUS_DF)) != 0) return this.fail(st);
      if ((st & R.STATUS_DRQ) == 0) return BLOCK_IO_ERROR;
      const n = left < block ? left : block;
      this.writeBlock(at, n * 256);
      at += <usize>n * SECTOR_SIZE;
      left -= n;
      st = ataWaitInterrupt(this.channel);
    }
    if ((st & (R.STATUS_ERR | R.STATUS_DF)) != 0) return this.fail(st);
    return BLOCK_OK;
  }

  private readBlock(at: usize, words: u32): void {
    const port = this.commandBase + R.REG_DATA;
    if (this.mode == ATA_PIO_WORD) {
      for (let i: u32 = 0; i < words; i++) store<u16>(at + (<usize>i << 1), <u16>inw(port));
      ataCountAccesses(words);
    } else {
      insw(port, at, words);
      ataCountAccesses(1);
    }
  }

  private writeBlock(at: usize, words: u32): void {
    const port = this.commandBase + R.REG_DATA;
    if (this.mode == ATA_PIO_WORD) {
      for (let i: u32 = 0; i < words; i++) outw(port, load<u16>(at + (<usize>i << 1)));
      ataCountAccesses(words);
    } else {
      outsw(port, at, words);
      ataCountAccesses(1);
    }
  }

  // ---- DMA ----------------------------------------------------------------------------------

  /**
   * Bus-master DMA (SFF-8038i "Standard Programming Sequence"; ATA/ATAPI-6, DMA command protocol): PRD table
   * pointer, clear BM Interrupt/Error, direction, the command, then Start. The transfer ends with
   * one interrupt; the handler stops the engine and reads both statuses.
   */
  private dmaTransfer(write: bool, lba: u64, sectors: u32, buffer: usize, ext: bool, table: usize): i32 {
    if (table == 0) {
      if (prdBuild(this.prdTable, PRD_ENTRIES, buffer, <usize>sectors * SECTOR_SIZE) == 0) return BLOCK_BAD_REQUEST;
      table = this.prdTable;
    }
    const bm = this.bmBase;
    const dir = write ? 0 : R.BM_CMD_TO_MEMORY;
    const capable = this.drive == 0 ? R.BM_ST_DRIVE0_CAPABLE : R.BM_ST_DRIVE1_CAPABLE;
    outl(bm + R.BM_PRD_TABLE, <u32>table);
    ataCountAccesses(1);
    ataOut8(bm + R.BM_STATUS, R.BM_ST_INTERRUPT | R.BM_ST_ERROR | capable);
    ataOut8(bm + R.BM_COMMAND, dir);
    ataExpectInterrupt(this.channel, dir | R.BM_CMD_START);
    this.loadTaskFile(lba, sectors, ext);
    ataOut8(this.commandBase + R.REG_STATUS_COMMAND, write ? (ext ? R.CMD_WRITE_DMA_EXT : R.CMD_WRITE_DMA) : (ext ? R.CMD_READ_DMA_EXT : R.CMD_READ_DMA));
    // A command the drive refuses at once (IDNF, ABRT) has already interrupted: do not start the engine.
    if (!ataInterruptPending(this.channel)) ataOut8(bm + R.BM_COMMAND, dir | R.BM_CMD_START);
    const st = ataWaitInterrupt(this.channel);
    const bmStatus = ataLastBmStatus(this.channel);
    this.lastBmStatus = bmStatus;
    if ((bmStatus & R.BM_ST_ERROR) != 0) {
      // A PRD table the controller could not use, or a bus fault: the drive aborted too.
      if ((st & R.STATUS_ERR) != 0) this.fail(st);
      return BLOCK_IO_ERROR;
    }
    if ((st & (R.STATUS_ERR | R.STATUS_DF)) != 0) return this.fail(st);
    if ((bmStatus & R.BM_ST_INTERRUPT) == 0) return BLOCK_IO_ERROR;
    return BLOCK_OK;
  }

  // ---- commands -------------------------------------------------------------------------------

  private deviceBits(): u32 {
    return R.DEVICE_OBSOLETE | R.DEVICE_LBA | (this.drive != 0 ? R.DEVICE_DEV : 0);
  }

  /**
   * The task file of a read or write. 28-bit: device (LBA 27:24), features, count, LBA 7:0,
   * 15:8, 23:16 (ATA/ATAPI-6 command block registers). 48-bit: each register written twice, previous (HOB) byte first
   * (ATA/ATAPI-6, 48-bit Address feature set).
   */
  private loadTaskFile(lba: u64, sectors: u32, ext: bool): void {
    const c = this.commandBase;
    if (ext) {
      ataOut8(c + R.REG_DEVICE, this.deviceBits());
      ataOut8(c + R.REG_ERROR_FEATURES, 0);
      ataOut8(c + R.REG_ERROR_FEATURES, 0);
      ataOut8(c + R.REG_SECTOR_COUNT, (sectors >> 8) & 0xff);
      ataOut8(c + R.REG_SECTOR_COUNT, sectors & 0xff);
      ataOut8(c + R.REG_LBA_LOW, <u32>(lba >> 24) & 0xff);
      ataOut8(c + R.REG_LBA_LOW, <u32>lba & 0xff);
      ataOut8(c + R.REG_LBA_MID, <u32>(lba >> 32) & 0xff);
      ataOut8(c + R.REG_LBA_MID, <u32>(lba >> 8) & 0xff);
      ataOut8(c + R.REG_LBA_HIGH, <u32>(lba >> 40) & 0xff);
      ataOut8(c + R.REG_LBA_HIGH, <u32>(lba >> 16) & 0xff);
    } else {
      ataOut8(c + R.REG_DEVICE, this.deviceBits() | (<u32>(lba >> 24) & 0x0f));
      ataOut8(c + R.REG_ERROR_FEATURES, 0);
      ataOut8(c + R.REG_SECTOR_COUNT, sectors & 0xff); // 0 means 256
      ataOut8(c + R.REG_LBA_LOW, <u32>lba & 0xff);
      ataOut8(c + R.REG_LBA_MID, <u32>(lba >> 8) & 0xff);
      ataOut8(c + R.REG_LBA_HIGH, <u32>(lba >> 16) & 0xff);
    }
  }

  /** A non-data command (ATA/ATAPI-6, non-data command protocol): device, features and count if used, command, interrupt. */
  private noDataCommand(cmd: u32, features: u32, count: u32): i32 {
    const c = this.commandBase;
    ataExpectInterrupt(this.channel, 0);
    ataOut8(c + R.REG_DEVICE, this.deviceBits());
    if (features != 0) ataOut8(c + R.REG_ERROR_FEATURES, features);
    if (count != 0) ataOut8(c + R.REG_SECTOR_COUNT, count);
    ataOut8(c + R.REG_STATUS_COMMAND, cmd);
    const st = ataWaitInterrupt(this.channel);
    if ((st & (R.STATUS_ERR | R.STATUS_DF)) != 0) return this.fail(st);
    return BLOCK_OK;
  }

  /**
   * Decodes a failed command from the Error register (ATA/ATAPI-6, each command's error outputs):
   * IDNF — the address is not on the medium; ABRT — the drive refused the command or its
   * parameters; anything else (UNC, DF) — the medium or the device failed.
   */
  private fail(status: u32): i32 {
    this.lastStatus = status;
    this.lastError = ataIn8(this.commandBase + R.REG_ERROR_FEATURES);
    if ((status & R.STATUS_DF) != 0) return BLOCK_IO_ERROR;
    if ((this.lastError & R.ERROR_IDNF) != 0) return BLOCK_OUT_OF_RANGE;
    if ((this.lastError & R.ERROR_ABRT) != 0) return BLOCK_BAD_REQUEST;
    return BLOCK_IO_ERROR;
  }
}
