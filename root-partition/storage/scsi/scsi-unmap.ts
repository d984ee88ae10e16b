/**
 * UNMAP (SBC-3 5.28): the guest's TRIM/discard on the synthetic SCSI path. The parameter list is
 * copied out of the guest's buffer first, then checked whole — header lengths, descriptor count,
 * every range inside the disk, the total under MAXIMUM UNMAP LBA COUNT — and only then applied,
 * so a bad list releases nothing. The answers follow the Linux SCSI target (drivers/target/
 * target_core_sbc.c, sbc_execute_unmap): PARAMETER LIST LENGTH ERROR for a list shorter than its
 * header, INVALID FIELD IN PARAMETER LIST for inconsistent lengths or limits exceeded, LBA OUT OF
 * RANGE for a range past the end. Ranges smaller than the image's granule are left mapped (SBC-3
 * lets a device server keep LBAs mapped; the guest sees LBPRZ = 0).
 */
import type { BlockBackend } from '../block-backend.ts';
import type { ScsiDataBuffer } from './scsi-data-buffer.ts';
import { Asc, fixedSense, ScsiStatus, SenseKey } from './scsi-defs.ts';
import type { UnmapLimits } from './scsi-disk-data.ts';
import { ioFailure, type ScsiDataDirection, type ScsiResult } from './scsi-disk.ts';

const UNMAP_HEADER = 8;
const UNMAP_DESCRIPTOR = 16;

const refuse = (key: number, asc: number, information?: number): ScsiResult => ({
  transport: 'ok',
  status: ScsiStatus.CheckCondition,
  transferred: 0,
  sense: fixedSense(key, asc, information),
});

export function unmapCommand(backend: BlockBackend, limits: UnmapLimits, cdb: Uint8Array, data: ScsiDataBuffer, direction: ScsiDataDirection): ScsiResult {
  // ANCHOR (byte 1 bit 0) asks for anchored LBAs, which this target does not offer (ANC_SUP 0).
  if ((cdb[1]! & 0x01) !== 0) return refuse(SenseKey.IllegalRequest, Asc.InvalidFieldInCdb);
  if (backend.readOnly) return refuse(SenseKey.DataProtect, Asc.WriteProtected);
  const length = (cdb[7]! << 8) | cdb[8]!;
  if (length === 0) return { transport: 'ok', status: ScsiStatus.Good, transferred: 0 };
  if (length > data.length || direction !== 'out') return { transport: 'invalid-request', status: ScsiStatus.Good, transferred: 0 };
  if (length < UNMAP_HEADER) return refuse(SenseKey.IllegalRequest, Asc.ParameterListLengthError);
  // Copied before it is read: the guest may change its buffer meanwhile. Anything past the most
  // descriptors this target takes is not needed to refuse the list.
  const list = new Uint8Array(Math.min(length, UNMAP_HEADER + UNMAP_DESCRIPTOR * (limits.maxDescriptors + 1)));
  data.copyTo(list);
  const dv = new DataView(list.buffer);
  const dataLength = dv.getUint16(0, false);
  const descriptorLength = dv.getUint16(2, false);
  if (dataLength > length - 2 || descriptorLength > length - UNMAP_HEADER) return refuse(SenseKey.IllegalRequest, Asc.InvalidFieldInParameterList);
  // An incomplete last descriptor is ignored (SBC-3 5.28.2).
  const count = Math.floor(descriptorLength / UNMAP_DESCRIPTOR);
  if (count > limits.maxDescriptors) return refuse(SenseKey.IllegalRequest, Asc.InvalidFieldInParameterList);
  const ranges: [number, number][] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = UNMAP_HEADER + i * UNMAP_DESCRIPTOR;
    const lba = dv.getBigUint64(at, false);
    const sectors = dv.getUint32(at + 8, false);
    total += sectors;
    if (sectors > limits.maxLbaCount || total > limits.maxLbaCount) return refuse(SenseKey.IllegalRequest, Asc.InvalidFieldInParameterList);
    if (lba + BigInt(sectors) > BigInt(backend.sectorCount)) return refuse(SenseKey.IllegalRequest, Asc.LbaOutOfRange);
    if (sectors > 0) ranges.push([Number(lba), sectors]);
  }
  for (const [lba, sectors] of ranges) {
    try {
      backend.unmap!(lba, sectors);
    } catch (e) {
      return ioFailure(e, 'write', lba);
    }
  }
  return { transport: 'ok', status: ScsiStatus.Good, transferred: length };
}
