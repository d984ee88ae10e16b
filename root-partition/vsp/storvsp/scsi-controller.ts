import type { ScsiDataBuffer } from '../../storage/scsi/scsi-data-buffer.ts';
import { Asc, ScsiOp, ScsiStatus, SenseKey } from '../../storage/scsi/scsi-defs.ts';
import { notPresentInquiry, reportLuns } from '../../storage/scsi/scsi-disk-data.ts';
import { checkCondition, type ScsiDataDirection, type ScsiDisk, type ScsiResult } from '../../storage/scsi/scsi-disk.ts';
import { SrbStatus } from './storvsp-protocol.ts';

/**
 * Where a disk sits on the synthetic SCSI controller. Hyper-V puts controller location N at
 * path 0, target 0, LUN N (what Linux shows as host:0:0:N); Linux storvsc addresses up to
 * 8 paths (channels), 2 targets and 255 LUNs (STORVSC_MAX_*).
 */
export interface ScsiLunConfig {
  pathId: number;
  targetId: number;
  lun: number;
  disk: ScsiDisk;
}

/** Disks at controller locations 0, 1, … the way Hyper-V numbers them. */
export function lunsAtLocations(disks: readonly ScsiDisk[]): ScsiLunConfig[] {
  return disks.map((disk, location) => ({ pathId: 0, targetId: 0, lun: location, disk }));
}

export interface SrbResult {
  srbStatus: number;
  scsiStatus: number;
  transferred: number;
  sense?: Uint8Array;
}

const key = (path: number, target: number, lun: number): number => (path << 16) | (target << 8) | lun;

/**
 * The controller's view of its logical units: routes a command by (path, target, LUN), answers
 * for addresses with no disk as OpenVMM's storvsp does (REPORT LUNS for any address, a
 * "not present" INQUIRY, SRB_STATUS_INVALID_LUN otherwise), and maps SCSI outcomes to SRB status.
 */
export class ScsiController {
  private readonly disks = new Map<number, ScsiDisk>();

  constructor(luns: readonly ScsiLunConfig[]) {
    for (const l of luns) {
      for (const v of [l.pathId, l.targetId, l.lun]) {
        if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`bad SCSI address ${l.pathId}:${l.targetId}:${l.lun}`);
      }
      const k = key(l.pathId, l.targetId, l.lun);
      if (this.disks.has(k)) throw new RangeError(`two disks at ${l.pathId}:${l.targetId}:${l.lun}`);
      this.disks.set(k, l.disk);
    }
  }

  execute(addr: { pathId: number; targetId: number; lun: number }, cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection): SrbResult {
    const op = cdb[0]!;
    if (op === ScsiOp.ReportLuns) return toSrb(this.reportLuns(addr, cdb, data, direction));
    const disk = this.disks.get(key(addr.pathId, addr.targetId, addr.lun));
    if (disk) return toSrb(disk.execute(cdb, data, direction));
    if (op === ScsiOp.Inquiry && cdb.length >= 6) {
      const evpd = (cdb[1]! & 1) !== 0;
      if (evpd || cdb[2] !== 0) return toSrb(illegal());
      const bytes = notPresentInquiry(addr.lun);
      const n = Math.min(bytes.length, (cdb[3]! << 8) | cdb[4]!, data.length);
      if (n > 0 && direction !== 'in') return { srbStatus: SrbStatus.InvalidRequest, scsiStatus: ScsiStatus.Good, transferred: 0 };
      return toSrb({ transport: 'ok', status: ScsiStatus.Good, transferred: data.copyFrom(bytes.subarray(0, n)) });
    }
    return { srbStatus: SrbStatus.InvalidLun, scsiStatus: ScsiStatus.CheckCondition, transferred: 0 };
  }

  /**
   * As `execute`, but a disk that can queue the command (ScsiDisk.start) returns null and calls
   * `done` with the outcome later.
   */
  start(
    addr: { pathId: number; targetId: number; lun: number },
    cdb: Uint8Array,
    data: ScsiDataBuffer,
    direction: ScsiDataDirection,
    minQueuedBytes: number,
    done: (r: SrbResult) => void,
  ): SrbResult | null {
    const disk = cdb[0] === ScsiOp.ReportLuns ? undefined : this.disks.get(key(addr.pathId, addr.targetId, addr.lun));
    if (!disk) return this.execute(addr, cdb, data, direction);
    const r = disk.start(cdb, data, direction, minQueuedBytes, (later) => done(toSrb(later)));
    return r === null ? null : toSrb(r);
  }

  private reportLuns(addr: { pathId: number; targetId: number }, cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection): ScsiResult {
    if (cdb.length < 12) return illegal();
    // SELECT REPORT 0, 1, 2 (SPC-3 6.21); ALLOCATION LENGTH must be at least 16.
    const select = cdb[2]!;
    const allocation = ((cdb[6]! << 24) >>> 0) + ((cdb[7]! << 16) | (cdb[8]! << 8) | cdb[9]!);
    if (select > 2 || allocation < 16) return illegal();
    const luns: number[] = [];
    for (const k of this.disks.keys()) {
      if (k >> 16 === addr.pathId && ((k >> 8) & 0xff) === addr.targetId) luns.push(k & 0xff);
    }
    const bytes = reportLuns(select === 1 ? [] : luns);
    const n = Math.min(bytes.length, allocation, data.length);
    if (n > 0 && direction !== 'in') return { transport: 'invalid-request', status: ScsiStatus.Good, transferred: 0 };
    return { transport: 'ok', status: ScsiStatus.Good, transferred: data.copyFrom(bytes.subarray(0, n)) };
  }
}

const illegal = (): ScsiResult => checkCondition(SenseKey.IllegalRequest, Asc.InvalidFieldInCdb);

/**
 * SRB status for a SCSI outcome (OpenVMM scsidisk): ILLEGAL REQUEST → SRB_STATUS_INVALID_REQUEST,
 * other CHECK CONDITIONs → SRB_STATUS_ERROR (the channel adds AUTOSENSE_VALID with the sense).
 * Linux storvsc leaves both with sense to the SCSI midlayer.
 */
function toSrb(r: ScsiResult): SrbResult {
  if (r.transport === 'invalid-request') return { srbStatus: SrbStatus.InvalidRequest, scsiStatus: ScsiStatus.Good, transferred: 0 };
  if (r.status === ScsiStatus.Good) return { srbStatus: SrbStatus.Success, scsiStatus: r.status, transferred: r.transferred };
  const illegalRequest = r.sense !== undefined && (r.sense[2]! & 0x0f) === SenseKey.IllegalRequest;
  return {
    srbStatus: illegalRequest ? SrbStatus.InvalidRequest : SrbStatus.Error,
    scsiStatus: r.status,
    transferred: 0,
    sense: r.sense,
  };
}
