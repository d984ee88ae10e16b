/**
 * SCSI constants (SPC-3/SBC-3 numbers; operation codes as listed in OpenVMM
 * vm/devices/storage/scsi_defs and Linux include/scsi/scsi_proto.h) and fixed-format sense data.
 */

export const ScsiOp = {
  TestUnitReady: 0x00,
  RequestSense: 0x03,
  Read6: 0x08,
  Write6: 0x0a,
  Inquiry: 0x12,
  ModeSense6: 0x1a,
  StartStopUnit: 0x1b,
  ReadCapacity10: 0x25,
  Read10: 0x28,
  Write10: 0x2a,
  Verify10: 0x2f,
  SynchronizeCache10: 0x35,
  Unmap: 0x42,
  ModeSense10: 0x5a,
  Read16: 0x88,
  Write16: 0x8a,
  Verify16: 0x8f,
  SynchronizeCache16: 0x91,
  ServiceActionIn16: 0x9e,
  ReportLuns: 0xa0,
  Read12: 0xa8,
  Write12: 0xaa,
} as const;

/** SERVICE ACTION IN(16) service action READ CAPACITY(16) (SBC-3 5.16). */
export const SAI_READ_CAPACITY_16 = 0x10;

/** SAM-4 status codes. */
export const ScsiStatus = { Good: 0x00, CheckCondition: 0x02, Busy: 0x08, TaskSetFull: 0x28 } as const;

/** SPC-3 table 27: sense keys. */
export const SenseKey = {
  NoSense: 0x0,
  NotReady: 0x2,
  MediumError: 0x3,
  HardwareError: 0x4,
  IllegalRequest: 0x5,
  UnitAttention: 0x6,
  DataProtect: 0x7,
  AbortedCommand: 0xb,
} as const;

/** SPC-3 Annex D: (ASC << 8) | ASCQ. */
export const Asc = {
  NoAdditionalSense: 0x0000,
  WriteError: 0x0c00,
  UnrecoveredReadError: 0x1100,
  InvalidCommandOperationCode: 0x2000,
  /** SPC-3: PARAMETER LIST LENGTH ERROR. */
  ParameterListLengthError: 0x1a00,
  LbaOutOfRange: 0x2100,
  InvalidFieldInCdb: 0x2400,
  /** SPC-3: INVALID FIELD IN PARAMETER LIST. */
  InvalidFieldInParameterList: 0x2600,
  WriteProtected: 0x2700,
  /** SBC-3: a thin-provisioned device could not allocate space for a write (what a full host file system is to the guest). */
  SpaceAllocationFailedWriteProtect: 0x2707,
  SavingParametersNotSupported: 0x3900,
  InternalTargetFailure: 0x4400,
} as const;

/** Fixed-format sense data is 18 bytes: 8-byte header + ADDITIONAL SENSE LENGTH 10 (SPC-3 4.5.3). */
export const FIXED_SENSE_LENGTH = 18;

/**
 * Fixed-format sense data, current error (response code 0x70). With `information` (a failed
 * command's first bad LBA, SBC-3 4.14) VALID is set and INFORMATION holds it, when it fits 32 bits.
 */
export function fixedSense(key: number, ascAscq: number, information?: number): Uint8Array {
  const s = new Uint8Array(FIXED_SENSE_LENGTH);
  s[0] = 0x70;
  if (information !== undefined && Number.isInteger(information) && information >= 0 && information <= 0xffffffff) {
    s[0] |= 0x80;
    new DataView(s.buffer).setUint32(3, information, false);
  }
  s[2] = key & 0x0f;
  s[7] = FIXED_SENSE_LENGTH - 8;
  s[12] = (ascAscq >> 8) & 0xff;
  s[13] = ascAscq & 0xff;
  return s;
}

/** CDB size from the operation code's group (SPC-3 4.3.4.1): 6, 10, 16 or 12; 0 = reserved/vendor. */
export function cdbSizeForOpcode(op: number): number {
  switch (op >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}
