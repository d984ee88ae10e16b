import { failedSector, type AtaChannel } from './ata-channel.ts';
import type { AtaDrive } from './ata-drive.ts';
import { AtaCommand, AtaError, MAX_LBA28_SECTORS, MAX_MULTIPLE_SECTORS, SetFeature } from './ata-protocol.ts';

/** An addressed run of sectors, or the error the command must end with. */
type Range = { lba: number; count: number } | { error: number };

/**
 * 28-bit address: LBA when the device register's LBA bit is set, else CHS through the drive's
 * current geometry (ATA/ATAPI-6, CHS to LBA translation: LBA = (C × heads + H) × sectors-per-track + S − 1).
 */
function range28(ch: AtaChannel, drive: AtaDrive, count: number): Range {
  const tf = ch.taskFile;
  let lba: number;
  if (tf.lbaMode) {
    lba = tf.lba28();
  } else {
    const g = drive.geometry;
    const cyl = tf.lbaMid | (tf.lbaHigh << 8);
    const head = tf.device & 0x0f;
    const sec = tf.lbaLow;
    if (sec === 0 || sec > g.sectorsPerTrack || head >= g.heads || cyl >= g.cylinders) return { error: AtaError.Idnf };
    lba = (cyl * g.heads + head) * g.sectorsPerTrack + sec - 1;
  }
  return checked(drive, lba, count);
}

function range48(ch: AtaChannel, drive: AtaDrive): Range {
  return checked(drive, ch.taskFile.lba48(), ch.taskFile.count48());
}

/** Past the end of the medium: IDNF, "a user-accessible address could not be found" (ATA/ATAPI-6, READ SECTORS error outputs). */
function checked(drive: AtaDrive, lba: number, count: number): Range {
  if (lba + count > drive.sectorCount) return { error: AtaError.Idnf };
  return { lba, count };
}

/**
 * Executes command `cmd` on the selected `drive`. Everything here runs synchronously; errors end
 * the command with ERR and ABRT/IDNF/UNC and an interrupt, as each command's error outputs in ATA/ATAPI-6 prescribe.
 */
export function executeCommand(ch: AtaChannel, drive: AtaDrive, cmd: number): void {
  const tf = ch.taskFile;
  switch (cmd) {
    case AtaCommand.ReadSectors:
    case AtaCommand.ReadSectorsNoRetry:
      return pioIn(ch, drive, range28(ch, drive, tf.count28()), 1);
    case AtaCommand.ReadSectorsExt:
      return pioIn(ch, drive, range48(ch, drive), 1);
    case AtaCommand.ReadMultiple:
      return drive.multipleSectors ? pioIn(ch, drive, range28(ch, drive, tf.count28()), drive.multipleSectors) : ch.fail();
    case AtaCommand.ReadMultipleExt:
      return drive.multipleSectors ? pioIn(ch, drive, range48(ch, drive), drive.multipleSectors) : ch.fail();
    case AtaCommand.WriteSectors:
    case AtaCommand.WriteSectorsNoRetry:
      return pioOut(ch, drive, range28(ch, drive, tf.count28()), 1);
    case AtaCommand.WriteSectorsExt:
      return pioOut(ch, drive, range48(ch, drive), 1);
    case AtaCommand.WriteMultiple:
      return drive.multipleSectors ? pioOut(ch, drive, range28(ch, drive, tf.count28()), drive.multipleSectors) : ch.fail();
    case AtaCommand.WriteMultipleExt:
      return drive.multipleSectors ? pioOut(ch, drive, range48(ch, drive), drive.multipleSectors) : ch.fail();
    case AtaCommand.WriteMultipleFuaExt:
      return drive.multipleSectors ? pioOut(ch, drive, range48(ch, drive), drive.multipleSectors, true) : ch.fail();
    case AtaCommand.ReadDma:
    case AtaCommand.ReadDmaNoRetry:
      return dma(ch, drive, range28(ch, drive, tf.count28()), true, false);
    case AtaCommand.ReadDmaExt:
      return dma(ch, drive, range48(ch, drive), true, false);
    case AtaCommand.WriteDma:
    case AtaCommand.WriteDmaNoRetry:
      return dma(ch, drive, range28(ch, drive, tf.count28()), false, false);
    case AtaCommand.WriteDmaExt:
      return dma(ch, drive, range48(ch, drive), false, false);
    case AtaCommand.WriteDmaFuaExt:
      return dma(ch, drive, range48(ch, drive), false, true);
    case AtaCommand.ReadVerifySectors:
    case AtaCommand.ReadVerifySectorsNoRetry:
      return noData(ch, range28(ch, drive, tf.count28()));
    case AtaCommand.ReadVerifySectorsExt:
      return noData(ch, range48(ch, drive));
    case AtaCommand.Seek:
      return noData(ch, range28(ch, drive, 1));
    case AtaCommand.InitializeDeviceParameters: {
      // Sets the CHS translation: heads from DEV/HEAD bits 3:0 + 1, sectors per track from the count.
      const sectorsPerTrack = tf.count;
      const heads = (tf.device & 0x0f) + 1;
      if (sectorsPerTrack === 0) return ch.fail();
      const cylinders = Math.max(1, Math.min(65535, Math.floor(Math.min(drive.sectorCount, MAX_LBA28_SECTORS) / (heads * sectorsPerTrack))));
      drive.geometry = { cylinders, heads, sectorsPerTrack };
      return ch.complete();
    }
    case AtaCommand.SetMultipleMode: {
      // Valid block sizes: powers of two up to IDENTIFY word 47; 0 disables (ATA/ATAPI-6, SET MULTIPLE MODE).
      const n = tf.count;
      if (n > MAX_MULTIPLE_SECTORS || (n & (n - 1)) !== 0) return ch.fail();
      drive.multipleSectors = n;
      return ch.complete();
    }
    case AtaCommand.IdentifyDevice:
      return ch.startBufferIn(drive, drive.identify());
    case AtaCommand.FlushCache:
    case AtaCommand.FlushCacheExt:
      // A failed flush stays failed (the backend repeats it until the image is reopened): the
      // cached writes it stands for are lost, and a later FLUSH CACHE must not report them safe.
      try {
        drive.backend.flush();
      } catch (e) {
        return ch.writeFault(failedSector(e, 0));
      }
      return ch.complete();
    case AtaCommand.SetFeatures:
      return setFeatures(ch, drive);
    case AtaCommand.CheckPowerMode:
      tf.count = 0xff; // active or idle
      return ch.complete();
    case AtaCommand.StandbyImmediate:
    case AtaCommand.IdleImmediate:
    case AtaCommand.Standby:
    case AtaCommand.Idle:
    case AtaCommand.Sleep:
      // Power states have no observable effect on an emulated disk; the command succeeds.
      return ch.complete();
    default:
      // Includes PACKET, IDENTIFY PACKET DEVICE and DEVICE RESET, which a non-packet device aborts.
      return ch.fail(AtaError.Abrt);
  }
}

function pioIn(ch: AtaChannel, drive: AtaDrive, r: Range, block: number): void {
  if ('error' in r) return ch.fail(r.error);
  ch.startPioIn(drive, r.lba, r.count, block);
}

function pioOut(ch: AtaChannel, drive: AtaDrive, r: Range, block: number, fua = false): void {
  if ('error' in r) return ch.fail(r.error);
  if (drive.backend.readOnly) return ch.fail(AtaError.Abrt);
  ch.startPioOut(drive, r.lba, r.count, block, fua);
}

function dma(ch: AtaChannel, drive: AtaDrive, r: Range, toMemory: boolean, fua: boolean): void {
  if ('error' in r) return ch.fail(r.error);
  if (!toMemory && drive.backend.readOnly) return ch.fail(AtaError.Abrt);
  ch.startDma({ index: ch.selected, drive, lba: r.lba, count: r.count, toMemory, fua });
}

function noData(ch: AtaChannel, r: Range): void {
  if ('error' in r) return ch.fail(r.error);
  ch.complete();
}

/** SET FEATURES (ATA/ATAPI-6): transfer mode, cache switches, revert-to-defaults. */
function setFeatures(ch: AtaChannel, drive: AtaDrive): void {
  const tf = ch.taskFile;
  switch (tf.features) {
    case SetFeature.SetTransferMode: {
      const v = tf.count;
      const mode = v & 0x07;
      if (v === 0x00 || v === 0x01)
        drive.transferMode = { kind: 'pio', mode: 0 }; // PIO default mode
      else if ((v & 0xf8) === 0x08 && mode <= 4) drive.transferMode = { kind: 'pio', mode };
      else if ((v & 0xf8) === 0x20 && mode <= 2) drive.transferMode = { kind: 'mwdma', mode };
      else if ((v & 0xf8) === 0x40 && mode <= 5) drive.transferMode = { kind: 'udma', mode };
      else return ch.fail();
      return ch.complete();
    }
    case SetFeature.EnableWriteCache:
      drive.writeCache = true;
      return ch.complete();
    case SetFeature.DisableWriteCache:
      drive.writeCache = false;
      return ch.complete();
    case SetFeature.EnableReadLookAhead:
      drive.readLookAhead = true;
      return ch.complete();
    case SetFeature.DisableReadLookAhead:
      drive.readLookAhead = false;
      return ch.complete();
    case SetFeature.EnableRevertToDefaults:
    case SetFeature.DisableRevertToDefaults:
      return ch.complete();
    default:
      return ch.fail();
  }
}
