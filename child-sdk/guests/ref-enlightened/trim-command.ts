// The shell's `trim <disk> <lba> <count>`: SCSI UNMAP of a range of a storvsc disk, as a guest's
// TRIM/discard sends it (StorvscDisk.unmap). A thin disk on the host (a dynamic or differencing
// VHDX) releases the whole blocks inside the range; a disk that takes no UNMAP says so.
import { puts, putDec } from "../../kernel/console";
import { numberBad, tokenIs, tokenNext, tokenNumber } from "../../kernel/shell-line";
import { BLOCK_OK, BLOCK_OUT_OF_RANGE } from "../../drivers/block-device";
import { StorvscDisk } from "../../drivers/storvsc-disk";

const USAGE = "error: usage: trim <disk> <lba> <count>\n";

/** Runs `trim` when it is the command typed (true), else leaves the line to others (false). */
export function trimCommand(disks: StaticArray<StorvscDisk | null>, count: u32): bool {
  if (!tokenIs("trim")) return false;
  if (!tokenNext()) { puts(USAGE); return true; }
  const d = tokenNumber();
  if (numberBad() || d >= <u64>count) { puts("error: no such disk (see devices)\n"); return true; }
  if (!tokenNext()) { puts(USAGE); return true; }
  const lba = tokenNumber();
  if (numberBad()) { puts(USAGE); return true; }
  if (!tokenNext()) { puts(USAGE); return true; }
  const sectors = tokenNumber();
  if (numberBad() || tokenNext()) { puts(USAGE); return true; }
  const disk = disks[<i32>d]!;
  if (disk.maxUnmapSectors == 0) {
    puts("error: disk ");
    putDec(<u32>d);
    puts(" takes no UNMAP (it is not thin-provisioned)\n");
    return true;
  }
  const status = disk.unmap(lba, sectors);
  if (status != BLOCK_OK) {
    puts(status == BLOCK_OUT_OF_RANGE ? "error: trim failed: out of range\n" : "error: trim failed\n");
    return true;
  }
  puts("disk ");
  putDec(<u32>d);
  puts(" lba ");
  putDec(lba);
  puts(": unmapped ");
  putDec(sectors);
  puts(" sectors\n");
  return true;
}
