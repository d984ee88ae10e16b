// A storage guest on the emulated IDE path: programs the 8259 pair, finds the PIIX4 IDE function
// on PCI, attaches the ATA driver in the transfer mode its command line names, writes a pattern,
// flushes, reads it back, reads a pattern the host put in the file, measures one 4 KiB read and
// one 4 KiB write, and sends the drive requests it must refuse. Prints key=value lines on COM1
// for test/storage/e2e-emulated*.test.ts. Checksums are FNV-1a over 32-bit words.
//
// Command line:
//   mode=word|string|multiple|dma  transfer method (default string)
//   disk=<0..3>     primary master, primary slave, secondary master, secondary slave (default 0)
//   aeoi            program the PICs for automatic EOI (no EOI exits)
//   lba48           use the 48-bit (EXT) commands for every request
//   wlba=<n> wsectors=<n> seed=<n>   the guest's pattern (default 64, 64, 1)
//   hlba=<n> hsectors=<n>            the host's pattern to read (default 1024, 16)
//   hold            after the flush, wait for ever with interrupts on (the host kills the VM)
//   bench=<n>       at the end, n sequential 4 KiB reads between POST markers 4 and 5 (timing)
//
// Around the measured read and write the guest writes the POST diagnostic port 0x80 (1 before
// the read, 2 after it and before the write, 3 after the write) so the host can read the VP's
// exit counters at exactly those points.
import { cli, halt, sti, outb } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas, cmdlineNumber } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAllocRun } from "../../kernel/pages";
import { picInit } from "../../drivers/pic8259";
import { pciFind, piix4BusMasterBase, INTEL_VENDOR, PIIX4_IDE_DEVICE } from "../../drivers/pci-config";
import { AtaDisk, ATA_PIO_WORD, ATA_PIO_STRING, ATA_PIO_MULTIPLE, ATA_DMA } from "../../drivers/ata-disk";
import { ataPortAccesses, ataInterruptsTaken } from "../../drivers/ata-interrupts";
import { BLOCK_OK } from "../../drivers/block-device";
import { prdHostileLoop, prdHostileOutside } from "./hostile-prd";

const MASTER_VECTOR_BASE: u32 = 0x20;
const SLAVE_VECTOR_BASE: u32 = 0x28;
const POST_PORT: u32 = 0x80;
const BUFFER_PAGES: u32 = 32; // 128 KiB: the largest request this guest makes

function kv(key: string, value: i64): void {
  puts(key);
  puts(value < 0 ? "=-" : "=");
  putDec(<u64>(value < 0 ? -value : value));
  puts("\n");
}


/** The pattern word at 32-bit word index `w` of the disk (murmur3's finaliser of seed ^ w). */
function patternWord(seed: u32, w: u32): u32 {
  let h = seed ^ w;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

function fnvWords(p: usize, bytes: u32): u32 {
  let h: u32 = 2166136261;
  for (let i: u32 = 0; i < bytes; i += 4) h = (h ^ load<u32>(p + i)) * 16777619;
  return h;
}

function modeFromCmdline(): u32 {
  if (cmdlineHas("mode=word")) return ATA_PIO_WORD;
  if (cmdlineHas("mode=multiple")) return ATA_PIO_MULTIPLE;
  if (cmdlineHas("mode=dma")) return ATA_DMA;
  return ATA_PIO_STRING;
}

function finish(code: i32): i32 {
  kv("done", 1);
  cli();
  halt();
  return code;
}

function main(): i32 {
  const mode = modeFromCmdline();
  const diskIndex = <u32>cmdlineNumber("disk", 0) & 3;
  const channel = diskIndex >> 1;
  picInit(MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE, cmdlineHas("aeoi"));
  sti();

  const ide = pciFind(INTEL_VENDOR, PIIX4_IDE_DEVICE);
  kv("pci_ide_found", ide >= 0 ? 1 : 0);
  const bmBase = piix4BusMasterBase(ide);
  kv("bm_base", bmBase);

  const disk = new AtaDisk();
  disk.always48 = cmdlineHas("lba48");
  const irq: u32 = channel == 0 ? 14 : 15;
  const attached = disk.attach(channel, diskIndex & 1, mode, bmBase, SLAVE_VECTOR_BASE + (irq - 8));
  kv("mode", mode);
  kv("attach_status", attached);
  if (attached != BLOCK_OK) {
    kv("attach_error", disk.lastError);
    return finish(2);
  }
  kv("sectors", disk.sectorCount());
  kv("lba48", disk.lba48 ? 1 : 0);
  kv("multiple", disk.multiple);

  const buf = pageAllocRun(BUFFER_PAGES);
  const check = pageAllocRun(BUFFER_PAGES);
  const seed = <u32>cmdlineNumber("seed", 1);
  const wlba = cmdlineNumber("wlba", 64);
  const wsectors = <u32>min<u64>(cmdlineNumber("wsectors", 64), BUFFER_PAGES * 8);
  const wbytes = wsectors * 512;
  for (let i: u32 = 0; i < wbytes; i += 4) store<u32>(buf + i, patternWord(seed, <u32>(wlba * 128) + (i >> 2)));
  kv("pattern_checksum", fnvWords(buf, wbytes));
  kv("write_status", disk.write(wlba, wsectors, buf));
  kv("flush_status", disk.flush());
  kv("flushed", 1);
  if (cmdlineHas("hold")) {
    for (;;) halt(); // interrupts are on: sleeps until the host ends the VM
  }
  kv("read_status", disk.read(wlba, wsectors, check));
  kv("readback_checksum", fnvWords(check, wbytes));
  kv("readback_ok", memory.compare(buf, check, wbytes) == 0 ? 1 : 0);

  const hlba = cmdlineNumber("hlba", 1024);
  const hsectors = <u32>min<u64>(cmdlineNumber("hsectors", 16), BUFFER_PAGES * 8);
  kv("host_read_status", disk.read(hlba, hsectors, check));
  kv("host_checksum", fnvWords(check, hsectors * 512));

  // One 4 KiB read and one 4 KiB write, bracketed by POST-port markers for the host's counters.
  const exits0 = ataPortAccesses();
  const irqs0 = ataInterruptsTaken(channel);
  outb(POST_PORT, 1);
  const r4 = disk.read(hlba, 8, check);
  outb(POST_PORT, 2);
  const exits1 = ataPortAccesses();
  const irqs1 = ataInterruptsTaken(channel);
  const w4 = disk.write(hlba, 8, check); // writes back what it read: the host's pattern stays
  outb(POST_PORT, 3);
  kv("read4k_status", r4);
  kv("read4k_driver_exits", exits1 - exits0);
  kv("read4k_interrupts", irqs1 - irqs0);
  kv("write4k_status", w4);
  kv("write4k_driver_exits", ataPortAccesses() - exits1);
  kv("write4k_interrupts", ataInterruptsTaken(channel) - irqs1);

  // Requests the drive must refuse, each followed by a good read (the device keeps serving).
  const cap = disk.sectorCount();
  kv("past_end_read_status", disk.transfer(false, cap, 8, check, 0));
  kv("past_end_read_error", disk.lastError);
  kv("straddle_read_status", disk.transfer(false, cap - 4, 8, check, 0));
  kv("past_end_write_status", disk.transfer(true, cap, 8, buf, 0));
  kv("past_end_write_error", disk.lastError);
  if (mode == ATA_DMA) {
    kv("prd_loop_status", disk.transfer(false, wlba, 64, check, prdHostileLoop(check)));
    kv("prd_loop_bm_status", disk.lastBmStatus);
    kv("prd_outside_status", disk.transfer(false, wlba, 8, check, prdHostileOutside()));
    kv("prd_outside_bm_status", disk.lastBmStatus);
  }
  memory.fill(check, 0, wbytes);
  kv("after_hostile_status", disk.read(wlba, wsectors, check));
  kv("after_hostile_ok", memory.compare(buf, check, wbytes) == 0 ? 1 : 0);
  const benchReads = <u32>cmdlineNumber("bench", 0);
  if (benchReads > 0) {
    let failures: u32 = 0;
    const span = cap / 8;
    outb(POST_PORT, 4);
    for (let i: u32 = 0; i < benchReads; i++) if (disk.read((<u64>i % span) * 8, 8, check) != BLOCK_OK) failures++;
    outb(POST_PORT, 5);
    kv("bench_reads", benchReads);
    kv("bench_failures", failures);
  }
  kv("interrupts_total", ataInterruptsTaken(channel));
  return finish(0);
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
