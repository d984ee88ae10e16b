// One disk (path, target, LUN) on a storvsc controller as a BlockDevice. Attach checks the unit
// the way the SCSI midlayer does before it adds a disk (INQUIRY: a connected direct-access
// device; READ CAPACITY(16): 512-byte blocks, the capacity). I/O is READ(16)/WRITE(16) with the
// data moved by the host straight into or out of the caller's pages (GPA direct); flush is
// SYNCHRONIZE CACHE(16). Queued submits join one batch that poll() publishes: a burst of
// submissions costs at most one signal. Errors arrive as CHECK CONDITION with sense and leave as
// BLOCK_* codes (storvsc.ts srbResult); the controller keeps the last sense for diagnostics.
// A thin disk (READ CAPACITY(16) LBPME, as Linux sd checks) also takes unmap(): SCSI UNMAP within
// the MAXIMUM UNMAP LBA COUNT of its Block Limits page (VPD 0xB0), a guest's TRIM.
import { pageAlloc } from "../kernel/pages";
import { VSC_MAX_GPA_DIRECT_PAGES } from "../vmbus/vsc";
import { BlockDevice, BLOCK_BAD_REQUEST, BLOCK_NOT_READY, BLOCK_OK, BLOCK_OUT_OF_RANGE, BLOCK_QUEUE_FULL, SECTOR_SIZE } from "./block-device";
import { STORVSC_QUEUE_DEPTH, StorvscController, StorvscError } from "./storvsc";
import {
  READ_TYPE, SRB_CDB, UNKNOWN_TYPE, UNMAP_LIST_ONE, VPD_BLOCK_LIMITS, WRITE_TYPE, cdbInquiry, cdbReadCapacity16, cdbRw16, cdbSynchronizeCache16, cdbUnmap,
  encodeSrb, encodeUnmapList,
} from "./storvsc-protocol";

const INQUIRY_LENGTH: u32 = 36;
const READ_CAPACITY_16_LENGTH: u32 = 32;
const BLOCK_LIMITS_LENGTH: u32 = 64;

function loadBe32(p: usize): u32 {
  return (<u32>load<u8>(p) << 24) | (<u32>load<u8>(p, 1) << 16) | (<u32>load<u8>(p, 2) << 8) | <u32>load<u8>(p, 3);
}

/** A SCSI disk (path, target, LUN) on a StorvscController as a BlockDevice; call attach() before any I/O. */
export class StorvscDisk extends BlockDevice {
  sectors: u64 = 0;
  /** INQUIRY byte 0: peripheral qualifier and device type (0 = connected direct-access block device). */
  peripheral: u32 = 0xff;
  /** READ CAPACITY(16) LBPME: the disk is thin-provisioned (logical block provisioning management on). */
  thin: bool = false;
  /** Sectors one UNMAP may release (VPD 0xB0 MAXIMUM UNMAP LBA COUNT; 0: the disk takes no UNMAP). */
  maxUnmapSectors: u32 = 0;
  private queued: u32 = 0;
  private data: usize = 0;

  /** `index` is the disk's number on the controller (< STORVSC_MAX_DISKS): it owns the completions of its queued tags. */
  constructor(readonly ctl: StorvscController, readonly index: u32, readonly pathId: u8, readonly targetId: u8, readonly lun: u8) {
    super();
  }

  /** INQUIRY then READ CAPACITY(16). BLOCK_OK, or the error that made the unit unusable. */
  attach(): i32 {
    if (this.data == 0) this.data = pageAlloc();
    if (this.data == 0) return BLOCK_NOT_READY;
    let slot = this.begin();
    if (slot < 0) return slot;
    let p = this.ctl.slotPacket(<u32>slot);
    encodeSrb(p, 0, this.pathId, this.targetId, this.lun, 6, READ_TYPE, INQUIRY_LENGTH);
    cdbInquiry(p, false, 0, <u16>INQUIRY_LENGTH);
    let r = this.finish(<u32>slot, this.data, INQUIRY_LENGTH);
    if (r != BLOCK_OK) return r;
    this.peripheral = load<u8>(this.data);
    if (this.peripheral != 0) return BLOCK_NOT_READY;
    slot = this.begin();
    if (slot < 0) return slot;
    p = this.ctl.slotPacket(<u32>slot);
    encodeSrb(p, 0, this.pathId, this.targetId, this.lun, 16, READ_TYPE, READ_CAPACITY_16_LENGTH);
    cdbReadCapacity16(p, READ_CAPACITY_16_LENGTH);
    r = this.finish(<u32>slot, this.data, READ_CAPACITY_16_LENGTH);
    if (r != BLOCK_OK) return r;
    // SBC-3 5.16: RETURNED LOGICAL BLOCK ADDRESS (the last LBA) @0, LOGICAL BLOCK LENGTH @8, big-endian.
    const last = (<u64>loadBe32(this.data) << 32) | <u64>loadBe32(this.data + 4);
    if (loadBe32(this.data + 8) != SECTOR_SIZE) return BLOCK_BAD_REQUEST;
    this.sectors = last + 1;
    // LBPME (byte 14 bit 7): UNMAP is worth asking about. Its limits failing to read only means no UNMAP.
    this.thin = (load<u8>(this.data + 14) & 0x80) != 0;
    if (this.thin) this.readUnmapLimits();
    return BLOCK_OK;
  }

  /**
   * UNMAP of `sectors` sectors from `lba` (SBC-3 5.28), waited for: what a guest's TRIM sends.
   * The range goes in commands of at most maxUnmapSectors, one block descriptor each, the
   * parameter list in the disk's own page (GPA direct, data out). BLOCK_BAD_REQUEST for a disk
   * that takes no UNMAP or a zero count, BLOCK_OUT_OF_RANGE past the end. The host may keep parts
   * of its blocks mapped (LBPRZ 0): only what it releases is promised to read zero.
   */
  unmap(lba: u64, sectors: u64): i32 {
    if (sectors == 0 || this.maxUnmapSectors == 0) return BLOCK_BAD_REQUEST;
    if (lba >= this.sectors || sectors > this.sectors - lba) return BLOCK_OUT_OF_RANGE;
    let at = lba;
    let left = sectors;
    while (left > 0) {
      const n: u32 = left > <u64>this.maxUnmapSectors ? this.maxUnmapSectors : <u32>left;
      const slot = this.begin();
      if (slot < 0) return slot;
      const p = this.ctl.slotPacket(<u32>slot);
      encodeSrb(p, 0, this.pathId, this.targetId, this.lun, 10, WRITE_TYPE, UNMAP_LIST_ONE);
      cdbUnmap(p, <u16>UNMAP_LIST_ONE);
      encodeUnmapList(this.data, <u32>at, <u32>(at >> 32), n);
      const r = this.finish(<u32>slot, this.data, UNMAP_LIST_ONE);
      if (r != BLOCK_OK) return r;
      at += <u64>n;
      left -= <u64>n;
    }
    return BLOCK_OK;
  }

  /** Capacity in 512-byte sectors from READ CAPACITY(16) (0 before attach). */
  sectorCount(): u64 { return this.sectors; }
  /** STORVSC_QUEUE_DEPTH, shared with every disk on the controller. */
  queueDepth(): u32 { return STORVSC_QUEUE_DEPTH; }
  /** Queued submits of this disk not yet reaped by poll. */
  inFlight(): u32 { return this.queued; }

  /** The smaller of the host's max_transfer_bytes and what one GPA-direct range can name, in sectors. */
  maxSectorsPerRequest(): u32 {
    // The host's max_transfer_bytes, and what one GPA-direct header can name (one page for an unaligned start).
    const gpaBytes = (VSC_MAX_GPA_DIRECT_PAGES - 1) << 12;
    const bytes = this.ctl.maxTransferBytes < gpaBytes ? this.ctl.maxTransferBytes : gpaBytes;
    return bytes / SECTOR_SIZE;
  }

  /** READ(16) into `buffer`, GPA direct, waited for. BLOCK_BAD_REQUEST above maxSectorsPerRequest, BLOCK_OUT_OF_RANGE past the end. */
  read(lba: u64, sectors: u32, buffer: usize): i32 { return this.rw(false, lba, sectors, buffer); }
  /** WRITE(16) from `buffer`, GPA direct, waited for. BLOCK_BAD_REQUEST above maxSectorsPerRequest, BLOCK_OUT_OF_RANGE past the end. */
  write(lba: u64, sectors: u32, buffer: usize): i32 { return this.rw(true, lba, sectors, buffer); }

  /** SYNCHRONIZE CACHE(16) over the whole disk, in-band (no data), waited for. */
  flush(): i32 {
    const slot = this.begin();
    if (slot < 0) return slot;
    const p = this.ctl.slotPacket(<u32>slot);
    encodeSrb(p, 0, this.pathId, this.targetId, this.lun, 16, UNKNOWN_TYPE, 0);
    cdbSynchronizeCache16(p);
    return this.finish(<u32>slot, 0, 0);
  }

  /** Queues a READ(16)/WRITE(16) into the controller's open batch (published by poll or the next synchronous call); the tag is its slot. */
  submit(write: bool, lba: u64, sectors: u32, buffer: usize): i32 {
    const check = this.checkRange(lba, sectors);
    if (check != BLOCK_OK) return check;
    const slot = this.ctl.allocSlot(this.index, false);
    if (slot < 0) return slot;
    this.encodeRw(<u32>slot, write, lba, sectors);
    const r = this.ctl.sendSlot(<u32>slot, buffer, sectors * SECTOR_SIZE);
    if (r != BLOCK_OK) return r;
    this.queued++;
    return slot;
  }

  /** Publishes pending submits and reaps. A reaped tag is free at once: the next submit may return it. */
  poll(tags: usize, statuses: usize, max: u32, wait: bool): u32 {
    let k: u32 = 0;
    for (;;) {
      this.ctl.reap();
      k += this.ctl.takeDone(this.index, tags + (<usize>k << 2), statuses + (<usize>k << 2), max - k);
      if (k > 0 || !wait || this.queued == 0 || !this.usable()) break;
      this.ctl.idle();
    }
    this.queued -= k;
    return k;
  }

  /**
   * Any CDB (up to 16 bytes at `cdb`) with `length` bytes of data at `buffer`, synchronously: for
   * diagnostics and for tests that must reach the host with what the block path refuses locally.
   */
  command(cdb: usize, cdbLength: u32, dataIn: u8, buffer: usize, length: u32): i32 {
    if (cdbLength > 16) return BLOCK_BAD_REQUEST;
    const slot = this.begin();
    if (slot < 0) return slot;
    const p = this.ctl.slotPacket(<u32>slot);
    encodeSrb(p, 0, this.pathId, this.targetId, this.lun, <u8>cdbLength, dataIn, length);
    memory.copy(p + SRB_CDB, cdb, cdbLength);
    return this.finish(<u32>slot, buffer, length);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** INQUIRY VPD 0xB0: MAXIMUM UNMAP LBA COUNT @20 and MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT @24 (SBC-3 6.5.3). */
  private readUnmapLimits(): void {
    const slot = this.begin();
    if (slot < 0) return;
    const p = this.ctl.slotPacket(<u32>slot);
    encodeSrb(p, 0, this.pathId, this.targetId, this.lun, 6, READ_TYPE, BLOCK_LIMITS_LENGTH);
    cdbInquiry(p, true, VPD_BLOCK_LIMITS, <u16>BLOCK_LIMITS_LENGTH);
    if (this.finish(<u32>slot, this.data, BLOCK_LIMITS_LENGTH) != BLOCK_OK) return;
    if (load<u8>(this.data + 1) != VPD_BLOCK_LIMITS || loadBe32(this.data + 24) == 0) return;
    this.maxUnmapSectors = loadBe32(this.data + 20);
  }

  private usable(): bool {
    const ch = this.ctl.ch;
    return ch != null && ch.isOpen() && this.ctl.error == StorvscError.None;
  }

  private checkRange(lba: u64, sectors: u32): i32 {
    if (sectors == 0 || sectors > this.maxSectorsPerRequest()) return BLOCK_BAD_REQUEST;
    if (lba >= this.sectors || <u64>sectors > this.sectors - lba) return BLOCK_OUT_OF_RANGE;
    return BLOCK_OK;
  }

  private encodeRw(slot: u32, write: bool, lba: u64, sectors: u32): void {
    const p = this.ctl.slotPacket(slot);
    encodeSrb(p, 0, this.pathId, this.targetId, this.lun, 16, write ? WRITE_TYPE : READ_TYPE, sectors * SECTOR_SIZE);
    cdbRw16(p, write, <u32>lba, <u32>(lba >> 32), sectors);
  }

  private rw(write: bool, lba: u64, sectors: u32, buffer: usize): i32 {
    const check = this.checkRange(lba, sectors);
    if (check != BLOCK_OK) return check;
    const slot = this.begin();
    if (slot < 0) return slot;
    this.encodeRw(<u32>slot, write, lba, sectors);
    return this.finish(<u32>slot, buffer, sectors * SECTOR_SIZE);
  }

  /** A slot for a synchronous request, waiting for one to free up if every slot is in flight. */
  private begin(): i32 {
    for (;;) {
      if (!this.usable()) return BLOCK_NOT_READY;
      const slot = this.ctl.allocSlot(this.index, true);
      if (slot != BLOCK_QUEUE_FULL) return slot;
      if (this.ctl.reap() == 0) this.ctl.idle();
    }
    return BLOCK_NOT_READY; // not reached
  }

  /** Sends the slot's SRB at once and waits for its completion; other completions are queued for their owners meanwhile. */
  private finish(slot: u32, buffer: usize, length: u32): i32 {
    const ctl = this.ctl;
    const r = ctl.sendSlot(slot, buffer, length);
    if (r != BLOCK_OK) return r;
    ctl.kick();
    while (!ctl.slotDone(slot)) {
      if (ctl.reap() == 0) {
        // The channel went away with the request in flight: its slot is never reused.
        if (!this.usable()) return BLOCK_NOT_READY;
        ctl.idle();
      }
    }
    const result = ctl.slotResult(slot);
    ctl.freeSlot(slot);
    return result;
  }
}
