import { AtaError, SECTOR_SIZE } from './ata-protocol.ts';
import { failedSector, type AtaChannel } from './ata-channel.ts';
import type { AtaDrive } from './ata-drive.ts';
import type { BusMasterChannel } from './bus-master-ide.ts';
import { SectorStream } from './sector-stream.ts';

/** A DMA command accepted by a drive, waiting for (or running on) the bus master. */
export interface DmaRequest {
  /** Drive position on the channel. */
  readonly index: 0 | 1;
  readonly drive: AtaDrive;
  readonly lba: number;
  readonly count: number;
  /** READ DMA (device → memory). */
  readonly toMemory: boolean;
  /** WRITE DMA FUA EXT: durable before completion. */
  readonly fua: boolean;
}

/**
 * Runs one DMA command through the bus master: the PRD table is walked and validated first, so a
 * bad table moves no data; then sectors stream straight between the backend and guest memory.
 * Work per call is bounded by the command (at most 65536 sectors) and the table (at most 8192 entries).
 *
 * Endings (SFF-8038i "Bus master IDE status" table; ATA/ATAPI-6 DMA protocol):
 * - table covers the transfer exactly: BM Interrupt, Active cleared; drive ready, INTRQ.
 * - table larger than the transfer: BM Interrupt, Active stays set; drive ready, INTRQ.
 * - table smaller, outside guest memory, or without EOT: BM Error and Interrupt, Active cleared;
 *   drive ERR/ABRT with INTRQ, so the guest's driver sees the failure at once instead of a hang.
 * - a direction bit that disagrees with the command: handled like a bad table.
 * - backend I/O error: drive ERR with UNC (read), or a write fault (DF, the failed sector's LBA).
 *   The bus master reports Error either way.
 */
export function runDma(ch: AtaChannel, bm: BusMasterChannel, req: DmaRequest): void {
  const bytes = req.count * SECTOR_SIZE;
  if (bm.toMemory !== req.toMemory) {
    ch.trace?.(`${ch.name} DMA refused: bus master direction disagrees with the command`);
    bm.finish('error');
    ch.fail(AtaError.Abrt, req.index);
    return;
  }
  const scan = bm.scan(bytes);
  if (scan.kind === 'fault' || scan.total < bytes) {
    ch.trace?.(`${ch.name} DMA refused: ${scan.kind === 'fault' ? scan.reason : `PRD table covers ${scan.total} of ${bytes} bytes`}`);
    bm.finish('error');
    ch.fail(AtaError.Abrt, req.index);
    return;
  }
  const stream = new SectorStream(req.drive.backend, req.lba);
  try {
    let left = bytes;
    for (const r of scan.regions) {
      if (left === 0) break;
      const n = Math.min(r.length, left);
      const view = ch.memory.view(r.gpa, n);
      if (req.toMemory) stream.readInto(view);
      else stream.writeFrom(view);
      left -= n;
    }
    if (!req.toMemory && (req.fua || !req.drive.writeCache)) req.drive.backend.flush();
  } catch (e) {
    bm.finish('error');
    if (req.toMemory) ch.fail(AtaError.Unc, req.index);
    else ch.writeFault(failedSector(e, req.lba), req.index);
    return;
  }
  ch.sectorsTransferred += req.count;
  bm.finish(scan.total === bytes && scan.endOfTable ? 'exact' : 'table-larger');
  ch.complete(true, req.index);
}
