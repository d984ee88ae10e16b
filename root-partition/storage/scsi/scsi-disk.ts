import type { BlockBackend } from '../block-backend.ts';
import { DiskIoError } from '../disk-io-error.ts';
import type { ScsiDataBuffer } from './scsi-data-buffer.ts';
import { Asc, ScsiOp, ScsiStatus, SenseKey, SAI_READ_CAPACITY_16, cdbSizeForOpcode, fixedSense } from './scsi-defs.ts';
import {
  cachingModePage,
  modeSense10,
  modeSense6,
  readCapacity10,
  readCapacity16,
  standardInquiry,
  vpdBlockLimits,
  vpdDeviceIdentification,
  vpdLogicalBlockProvisioning,
  vpdSupportedPages,
  vpdUnitSerialNumber,
  type UnmapLimits,
} from './scsi-disk-data.ts';
import { unmapCommand } from './scsi-unmap.ts';

/** Direction of the data phase as the initiator declared it. */
export type ScsiDataDirection = 'in' | 'out' | 'none';

/**
 * The outcome of one command, in the transport's terms: `transport` is 'ok' when the command ran
 * (its SCSI status tells how it ended) and 'invalid-request' when the transport-level request did
 * not fit the command (declared data direction or buffer size), which storvsp reports as
 * SRB_STATUS_INVALID_REQUEST without sense.
 */
export interface ScsiResult {
  transport: 'ok' | 'invalid-request';
  status: number;
  /** Bytes actually moved through the data buffer. */
  transferred: number;
  /** Fixed-format sense data for CHECK CONDITION, else undefined. */
  sense?: Uint8Array;
}

const good = (transferred: number): ScsiResult => ({ transport: 'ok', status: ScsiStatus.Good, transferred });
export const checkCondition = (key: number, asc: number): ScsiResult => ({
  transport: 'ok',
  status: ScsiStatus.CheckCondition,
  transferred: 0,
  sense: fixedSense(key, asc),
});
const illegal = (asc: number = Asc.InvalidFieldInCdb): ScsiResult => checkCondition(SenseKey.IllegalRequest, asc);

/**
 * A backend failure as the guest sees it: a full host file system is a space-allocation failure
 * (DATA PROTECT, SBC-3 4.7.3.6 — what QEMU reports for ENOSPC, so a guest may pause rather than
 * mark the medium bad); anything else a MEDIUM ERROR, WRITE ERROR or UNRECOVERED READ ERROR. The
 * failing LBA goes into INFORMATION when the backend names it.
 */
export function ioFailure(e: unknown, kind: 'read' | 'write', fallbackLba: number): ScsiResult {
  const io = e instanceof DiskIoError ? e : undefined;
  const lba = io ? io.lba : fallbackLba;
  const sense = io?.outOfSpace
    ? fixedSense(SenseKey.DataProtect, Asc.SpaceAllocationFailedWriteProtect, lba)
    : fixedSense(SenseKey.MediumError, kind === 'read' ? Asc.UnrecoveredReadError : Asc.WriteError, lba);
  return { transport: 'ok', status: ScsiStatus.CheckCondition, transferred: 0, sense };
}
const invalidRequest: ScsiResult = { transport: 'invalid-request', status: ScsiStatus.Good, transferred: 0 };

/** A block I/O command decoded from its CDB (SBC-3 5.x). */
interface BlockCommand {
  lba: bigint;
  blocks: number;
  fua: boolean;
}

function be(cdb: Uint8Array, at: number, bytes: number): number {
  let v = 0;
  for (let i = 0; i < bytes; i++) v = v * 256 + cdb[at + i]!;
  return v;
}

function decodeBlockCommand(cdb: Uint8Array): BlockCommand {
  switch (cdb[0]) {
    case ScsiOp.Read6:
    case ScsiOp.Write6: {
      // SBC-3 5.7: 21-bit LBA; TRANSFER LENGTH 0 means 256 blocks.
      const n = cdb[4]!;
      return { lba: BigInt(be(cdb, 1, 3) & 0x1fffff), blocks: n === 0 ? 256 : n, fua: false };
    }
    case ScsiOp.Read10:
    case ScsiOp.Write10:
    case ScsiOp.Verify10:
      return { lba: BigInt(be(cdb, 2, 4)), blocks: be(cdb, 7, 2), fua: (cdb[1]! & 0x08) !== 0 };
    case ScsiOp.Read12:
    case ScsiOp.Write12:
      return { lba: BigInt(be(cdb, 2, 4)), blocks: be(cdb, 6, 4), fua: (cdb[1]! & 0x08) !== 0 };
    default: // READ(16), WRITE(16), VERIFY(16)
      return { lba: (BigInt(be(cdb, 2, 4)) << 32n) | BigInt(be(cdb, 6, 4)), blocks: be(cdb, 10, 4), fua: (cdb[1]! & 0x08) !== 0 };
  }
}

/**
 * Sectors one UNMAP may release in all (4 GiB) and descriptors it may carry: they bound the BAT
 * work one guest command makes the host do (at most 4096 entries of 1 MiB blocks, in one log
 * transaction) and the parameter data copied (8 + 16 × 64 bytes).
 */
export const MAX_UNMAP_LBA_COUNT = 8 * 1024 * 1024;
export const MAX_UNMAP_DESCRIPTORS = 64;

export interface ScsiDiskOptions {
  /** A stable id for the disk (16 bytes, e.g. its GUID): the source of VPD serial number and WWN. */
  diskId: Uint8Array;
}

/**
 * A SCSI direct-access block device (SBC-3) over a BlockBackend. `execute` never throws for
 * anything a guest controls: every malformed CDB ends as CHECK CONDITION with fixed-format sense,
 * and backend I/O errors as MEDIUM ERROR (DATA PROTECT when the host is out of space).
 */
export class ScsiDisk {
  private readonly diskId: Uint8Array;

  constructor(
    readonly backend: BlockBackend,
    options: ScsiDiskOptions,
  ) {
    if (options.diskId.length !== 16) throw new RangeError('diskId must be 16 bytes');
    this.diskId = options.diskId.slice();
  }

  /** The disk's id (a copy): another ScsiDisk over the same image answers the same VPD pages with it. */
  get id(): Uint8Array {
    return this.diskId.slice();
  }

  /** `cdb` holds exactly cdb_length bytes; `data` is the initiator's buffer. */
  execute(cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection): ScsiResult {
    if (cdb.length === 0) return illegal(Asc.InvalidCommandOperationCode);
    const op = cdb[0]!;
    const size = cdbSizeForOpcode(op);
    if (size === 0) return illegal(Asc.InvalidCommandOperationCode);
    // A CDB shorter than its group's size has no CONTROL byte or truncated fields.
    if (cdb.length < size) return illegal();
    // NACA (CONTROL bit 2) needs ACA support, which this target lacks (SAM-4 5.9.1.1).
    if ((cdb[size - 1]! & 0x04) !== 0) return illegal();
    switch (op) {
      case ScsiOp.TestUnitReady:
        return good(0);
      case ScsiOp.StartStopUnit:
        return good(0);
      case ScsiOp.RequestSense:
        return this.dataIn(data, direction, fixedSense(SenseKey.NoSense, Asc.NoAdditionalSense), cdb[4]!);
      case ScsiOp.Inquiry:
        return this.inquiry(cdb, data, direction);
      case ScsiOp.ReadCapacity10: {
        // PMI = 0 requires LOGICAL BLOCK ADDRESS = 0 (SBC-3 5.12).
        if ((cdb[8]! & 0x01) === 0 && be(cdb, 2, 4) !== 0) return illegal();
        return this.dataIn(data, direction, readCapacity10(this.backend.sectorCount, this.backend.sectorSize), 8);
      }
      case ScsiOp.ServiceActionIn16:
        if ((cdb[1]! & 0x1f) !== SAI_READ_CAPACITY_16) return illegal();
        return this.dataIn(data, direction, readCapacity16(this.backend.sectorCount, this.backend.sectorSize, this.unmapLimits() !== null), be(cdb, 10, 4));
      case ScsiOp.Unmap: {
        const limits = this.unmapLimits();
        return limits ? unmapCommand(this.backend, limits, cdb, data, direction) : illegal(Asc.InvalidCommandOperationCode);
      }
      case ScsiOp.ModeSense6:
        return this.modeSense(cdb, data, direction, false);
      case ScsiOp.ModeSense10:
        return this.modeSense(cdb, data, direction, true);
      case ScsiOp.Read6:
      case ScsiOp.Read10:
      case ScsiOp.Read12:
      case ScsiOp.Read16:
        return this.readWrite(decodeBlockCommand(cdb), data, direction, 'read');
      case ScsiOp.Write6:
      case ScsiOp.Write10:
      case ScsiOp.Write12:
      case ScsiOp.Write16:
        return this.readWrite(decodeBlockCommand(cdb), data, direction, 'write');
      case ScsiOp.Verify10:
      case ScsiOp.Verify16: {
        // BYTCHK = 1 would compare data from the initiator; only the medium check is supported.
        if ((cdb[1]! & 0x02) !== 0) return illegal();
        const c = decodeBlockCommand(cdb);
        return this.inRange(c.lba, c.blocks) ? good(0) : illegal(Asc.LbaOutOfRange);
      }
      case ScsiOp.SynchronizeCache10:
      case ScsiOp.SynchronizeCache16: {
        const { lba, blocks } = syncCacheRange(op, cdb);
        if (!this.inRange(lba, blocks)) return illegal(Asc.LbaOutOfRange);
        // A failed flush keeps failing until the image is reopened (RawDisk): lost writes are
        // never reported safe by a later SYNCHRONIZE CACHE.
        try {
          this.backend.flush();
        } catch (e) {
          return ioFailure(e, 'write', Number(lba));
        }
        return good(0);
      }
      default:
        return illegal(Asc.InvalidCommandOperationCode);
    }
  }

  /**
   * As `execute`, but on a backend that can queue, a READ or WRITE of at least `minQueuedBytes`
   * into one contiguous view, and every SYNCHRONIZE CACHE, run in the backend's queue: the result
   * is then null and `done` gets it later (never inside this call). Everything else, and every
   * command that fails its checks, completes here as `execute` would complete it.
   */
  start(cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection, minQueuedBytes: number, done: (r: ScsiResult) => void): ScsiResult | null {
    const backend = this.backend;
    const op = cdb[0];
    const size = op === undefined ? 0 : cdbSizeForOpcode(op);
    if (backend.canQueue !== true || size === 0 || cdb.length < size || (cdb[size - 1]! & 0x04) !== 0) return this.execute(cdb, data, direction);
    switch (op) {
      case ScsiOp.Read6:
      case ScsiOp.Read10:
      case ScsiOp.Read12:
      case ScsiOp.Read16:
      case ScsiOp.Write6:
      case ScsiOp.Write10:
      case ScsiOp.Write12:
      case ScsiOp.Write16: {
        const kind = op === ScsiOp.Read6 || op === ScsiOp.Read10 || op === ScsiOp.Read12 || op === ScsiOp.Read16 ? 'read' : 'write';
        const c = decodeBlockCommand(cdb);
        const bytes = c.blocks * backend.sectorSize;
        const first = data.segments[0];
        const queueable =
          this.inRange(c.lba, c.blocks) &&
          c.blocks > 0 &&
          bytes >= minQueuedBytes &&
          !(kind === 'write' && backend.readOnly) &&
          direction === (kind === 'read' ? 'in' : 'out') &&
          first !== undefined &&
          first.length >= bytes;
        if (!queueable) return this.execute(cdb, data, direction);
        const view = first.subarray(0, bytes);
        const lba = Number(c.lba);
        try {
          if (kind === 'read') backend.readAsync!(lba, view, (err) => done(err === null ? good(bytes) : ioFailure(err, 'read', lba)));
          else {
            // FUA: on the medium before GOOD (SBC-3 5.29).
            backend.writeAsync!(lba, view, (err) => done(err === null ? good(bytes) : ioFailure(err, 'write', lba)), c.fua);
          }
        } catch (e) {
          return ioFailure(e, kind, lba);
        }
        return null;
      }
      case ScsiOp.SynchronizeCache10:
      case ScsiOp.SynchronizeCache16: {
        const { lba, blocks } = syncCacheRange(op, cdb);
        if (!this.inRange(lba, blocks)) return illegal(Asc.LbaOutOfRange);
        // Completes after every write started before it (queued or not) is on the medium.
        try {
          backend.flushAsync!((e) => done(e === null ? good(0) : ioFailure(e, 'write', Number(lba))));
        } catch (e) {
          return ioFailure(e, 'write', Number(lba));
        }
        return null;
      }
      default:
        return this.execute(cdb, data, direction);
    }
  }

  /** What UNMAP may do on the image open now (a drive can move between images), or null. */
  private unmapLimits(): UnmapLimits | null {
    const g = this.backend.unmapGranularity;
    if (!this.backend.unmap || g === undefined || g <= 0) return null;
    return { maxLbaCount: MAX_UNMAP_LBA_COUNT, maxDescriptors: MAX_UNMAP_DESCRIPTORS, granularity: g };
  }

  private inRange(lba: bigint, blocks: number): boolean {
    return lba + BigInt(blocks) <= BigInt(this.backend.sectorCount);
  }

  /** Returns up to `allocation` bytes of `bytes`, as far as the buffer allows (SPC-3 4.3.4.6). */
  private dataIn(data: ScsiDataBuffer, direction: ScsiDataDirection, bytes: Uint8Array, allocation: number): ScsiResult {
    const n = Math.min(bytes.length, allocation, data.length);
    if (n > 0 && direction !== 'in') return invalidRequest;
    return good(data.copyFrom(bytes.subarray(0, n)));
  }

  private inquiry(cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection): ScsiResult {
    const evpd = (cdb[1]! & 0x01) !== 0;
    const page = cdb[2]!;
    const allocation = be(cdb, 3, 2);
    if (!evpd) {
      // PAGE CODE must be 0 when EVPD is 0 (SPC-3 6.4.1).
      return page !== 0 ? illegal() : this.dataIn(data, direction, standardInquiry(), allocation);
    }
    switch (page) {
      case 0x00:
        return this.dataIn(data, direction, vpdSupportedPages(), allocation);
      case 0x80:
        return this.dataIn(data, direction, vpdUnitSerialNumber(this.diskId), allocation);
      case 0x83:
        return this.dataIn(data, direction, vpdDeviceIdentification(this.diskId), allocation);
      case 0xb0:
        return this.dataIn(data, direction, vpdBlockLimits(this.unmapLimits()), allocation);
      case 0xb2:
        return this.dataIn(data, direction, vpdLogicalBlockProvisioning(this.unmapLimits() !== null), allocation);
      default:
        return illegal();
    }
  }

  private modeSense(cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection, ten: boolean): ScsiResult {
    const pc = cdb[2]! >> 6;
    const page = cdb[2]! & 0x3f;
    const subpage = cdb[3]!;
    // Saved values are not supported (SPC-3 6.9: SAVING PARAMETERS NOT SUPPORTED).
    if (pc === 3) return illegal(Asc.SavingParametersNotSupported);
    if (page !== 0x08 && page !== 0x3f) return illegal();
    if (subpage !== 0 && !(page === 0x3f && subpage === 0xff)) return illegal();
    const pages = cachingModePage(pc);
    const wp = this.backend.readOnly;
    return ten ? this.dataIn(data, direction, modeSense10(pages, wp), be(cdb, 7, 2)) : this.dataIn(data, direction, modeSense6(pages, wp), cdb[4]!);
  }

  private readWrite(c: BlockCommand, data: ScsiDataBuffer, direction: ScsiDataDirection, kind: 'read' | 'write'): ScsiResult {
    const backend = this.backend;
    if (!this.inRange(c.lba, c.blocks)) return illegal(Asc.LbaOutOfRange);
    if (c.blocks === 0) return good(0);
    if (kind === 'write' && backend.readOnly) return checkCondition(SenseKey.DataProtect, Asc.WriteProtected);
    const bytes = c.blocks * backend.sectorSize;
    // The initiator's buffer must hold the whole transfer, in the direction the command moves data.
    if (bytes > data.length || direction !== (kind === 'read' ? 'in' : 'out')) return invalidRequest;
    const lba = Number(c.lba);
    try {
      if (kind === 'read') {
        data.transfer(lba, bytes, backend.sectorSize, 'read', (l, v) => backend.read(l, v));
      } else {
        data.transfer(lba, bytes, backend.sectorSize, 'write', (l, v) => backend.write(l, v));
        // FUA: the write must be on the medium before GOOD (SBC-3 5.29).
        if (c.fua) backend.flush();
      }
    } catch (e) {
      return ioFailure(e, kind, lba);
    }
    return good(bytes);
  }
}

/** SYNCHRONIZE CACHE (10) or (16)'s LBA and number of blocks (SBC-3 5.22, 5.23). */
function syncCacheRange(op: number, cdb: Uint8Array): { lba: bigint; blocks: number } {
  return op === ScsiOp.SynchronizeCache10
    ? { lba: BigInt(be(cdb, 2, 4)), blocks: be(cdb, 7, 2) }
    : { lba: (BigInt(be(cdb, 2, 4)) << 32n) | BigInt(be(cdb, 6, 4)), blocks: be(cdb, 10, 4) };
}
