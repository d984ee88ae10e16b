// Cross-path integrity: one raw image attached twice, as the IDE primary master (ATA DMA) and as
// SCSI LUN 0 (storvsc). The guest writes a pattern through one path, flushes, reads it back
// through the other, and the other way round; the host then checks the file.
//   ata→scsi: LBA 64, 128 sectors;  scsi→ata: LBA 512, 128 sectors.
import { sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc, pageAllocRun } from "../../kernel/pages";
import { picInit } from "../../drivers/pic8259";
import { pciFind, piix4BusMasterBase, INTEL_VENDOR, PIIX4_IDE_DEVICE } from "../../drivers/pci-config";
import { AtaDisk, ATA_DMA } from "../../drivers/ata-disk";
import { BlockDevice, BLOCK_OK } from "../../drivers/block-device";
import { enableHypercalls } from "../../hv/hypercall";
import { vmbusConnect, vmbusInit, vmbusUnload } from "../../vmbus/vmbus-driver";
import { vscClose } from "../../vmbus/vsc";
import { StorvscController } from "../../drivers/storvsc";
import { StorvscDisk } from "../../drivers/storvsc-disk";

const SECTORS: u32 = 128;
const BYTES: u32 = SECTORS * 512;

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

function fnv(buf: usize, bytes: u32): u32 {
  let h: u32 = 2166136261;
  for (let i: u32 = 0; i < bytes; i++) h = (h ^ load<u8>(buf + i)) * 16777619;
  return h;
}

function fill(buf: usize, seed: u32): void {
  for (let i: u32 = 0; i < BYTES; i++) store<u8>(buf + i, <u8>((i >> 9) * 31 + (i & 511) * 7 + seed));
}

/** Writes through `from`, flushes, reads through `to`; prints the statuses and both checksums. */
function cross(name: string, from: BlockDevice, to: BlockDevice, lba: u64, seed: u32, out: usize, back: usize): void {
  fill(out, seed);
  memory.fill(back, 0, BYTES);
  puts(name);
  kv("_write", <u64>(-from.write(lba, SECTORS, out)));
  puts(name);
  kv("_flush", <u64>(-from.flush()));
  puts(name);
  kv("_read", <u64>(-to.read(lba, SECTORS, back)));
  puts(name);
  kv("_written", fnv(out, BYTES));
  puts(name);
  kv("_read_back", fnv(back, BYTES));
}

function main(): i32 {
  picInit(0x20, 0x28, false);
  sti();
  const ata = new AtaDisk();
  const bm = piix4BusMasterBase(pciFind(INTEL_VENDOR, PIIX4_IDE_DEVICE));
  kv("ata_attach", <u64>(-ata.attach(0, 0, ATA_DMA, bm, 0x28 + 6)));
  const ctl = new StorvscController();
  const scsi = new StorvscDisk(ctl, 0, 0, 0, 0);
  const ok = enableHypercalls(pageAlloc()) && vmbusInit(0x30) && vmbusConnect() && ctl.open();
  kv("storvsc_open", ok ? 1 : 0);
  kv("storvsc_attach", ok ? <u64>(-scsi.attach()) : 99);
  kv("same_capacity", ata.sectorCount() == scsi.sectorCount() ? 1 : 0);
  const out = pageAllocRun(BYTES >> 12);
  const back = pageAllocRun(BYTES >> 12);
  if (ok && out != 0 && back != 0) {
    cross("ata_to_scsi", ata, scsi, 64, 11, out, back);
    cross("scsi_to_ata", scsi, ata, 512, 97, out, back);
    vscClose(ctl.ch!);
    kv("unloaded", vmbusUnload() ? 1 : 0);
  }
  puts("done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
