// How a storvsc completion ends as a BlockError (child-sdk/drivers/block-device.ts): the SRB
// status, SAM status and fixed-format sense of the vmscsi_request the host sent back
// (Linux drivers/scsi/storvsc_drv.c storvsc_handle_error, SPC-3 4.5.3).
import { BLOCK_BAD_REQUEST, BLOCK_IO_ERROR, BLOCK_NOT_READY, BLOCK_OK, BLOCK_OUT_OF_RANGE } from "./block-device";
import {
  ASC_LBA_OUT_OF_RANGE, SCSI_STATUS_CHECK_CONDITION, SCSI_STATUS_GOOD, SENSE_KEY_ILLEGAL_REQUEST, SENSE_KEY_NOT_READY,
  SENSE_KEY_UNIT_ATTENTION, SRB_STATUS_AUTOSENSE_VALID, SRB_STATUS_INVALID_LUN, SRB_STATUS_INVALID_REQUEST, SRB_STATUS_SUCCESS,
  completionDataTransferLength, completionScsiStatus, completionSenseAsc, completionSenseInfoLength, completionSenseKey,
  completionSrbStatus,
} from "./storvsc-protocol";

/**
 * A completion's outcome as a BlockError. Good status needs the whole transfer; CHECK CONDITION
 * with sense is judged by its sense key (ILLEGAL REQUEST / LBA OUT OF RANGE → out of range,
 * other ILLEGAL REQUEST → bad request, NOT READY and UNIT ATTENTION → not ready, anything else
 * an I/O error); without sense, the SRB status decides (Linux storvsc_handle_error).
 */
export function srbResult(p: usize, expected: u32): i32 {
  const srb = completionSrbStatus(p);
  const scsi = completionScsiStatus(p);
  if ((srb & 0x3f) == SRB_STATUS_SUCCESS && scsi == SCSI_STATUS_GOOD) {
    return completionDataTransferLength(p) == expected ? BLOCK_OK : BLOCK_IO_ERROR;
  }
  if (scsi == SCSI_STATUS_CHECK_CONDITION && (srb & SRB_STATUS_AUTOSENSE_VALID) != 0 && completionSenseInfoLength(p) >= 14) {
    const key = completionSenseKey(p);
    if (key == SENSE_KEY_ILLEGAL_REQUEST) return completionSenseAsc(p) == ASC_LBA_OUT_OF_RANGE ? BLOCK_OUT_OF_RANGE : BLOCK_BAD_REQUEST;
    if (key == SENSE_KEY_NOT_READY || key == SENSE_KEY_UNIT_ATTENTION) return BLOCK_NOT_READY;
    return BLOCK_IO_ERROR;
  }
  if ((srb & 0x3f) == SRB_STATUS_INVALID_REQUEST) return BLOCK_BAD_REQUEST;
  if ((srb & 0x3f) == SRB_STATUS_INVALID_LUN) return BLOCK_NOT_READY;
  return BLOCK_IO_ERROR;
}
