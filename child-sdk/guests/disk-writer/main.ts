// A guest that keeps rewriting its disk, for storage-move tests (live migration with the disks
// copied while the VM runs). Over a region of 4 KiB blocks at the start of the IDE primary master
// it writes generation after generation, each block wholly (every word a function of block,
// generation and word), in a scattered order (a stride through the region), so writes land both
// behind and ahead of a copy that walks the disk. After each generation it reads the region back:
// a block the host lost or tore shows as MISMATCH. At the end it prints the FNV-1a of the region
// as it wrote it, which a test compares with the disk file.
//
// Command line: `blocks=<n>` region in 4 KiB blocks (default 256: 1 MiB; a power of two),
// `gens=<n>` generations (default 20), `mode=dma` bus-master DMA (default PIO by string I/O).
// Prints `dgen=<g> ok` per generation, then `disk-writer: done gens=<g> fnv=<n>` (decimal).
import "../../runtime/panic";
import { cli, halt, sti, VP_INDEX } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { bootInfoValid, cmdlineHas, cmdlineNumber } from "../../kernel/boot-info";
import { dispatchInterrupt } from "../../kernel/interrupts";
import { pageAllocRun } from "../../kernel/pages";
import { picInit } from "../../drivers/pic8259";
import { pciFind, piix4BusMasterBase, INTEL_VENDOR, PIIX4_IDE_DEVICE } from "../../drivers/pci-config";
import { AtaDisk, ATA_PIO_STRING, ATA_DMA } from "../../drivers/ata-disk";
import { BLOCK_OK } from "../../drivers/block-device";

const MASTER_VECTOR_BASE: u32 = 0x20;
const SLAVE_VECTOR_BASE: u32 = 0x28;
const BLOCK: u32 = 4096;
/** Odd: a permutation of any power-of-two region. */
const STRIDE: u32 = 97;

@inline function word(block: u32, gen: u32, i: u32): u32 {
  return (gen * 0x9e3779b1) ^ (block * 0x85ebca77) ^ (i * 0xc2b2ae3d) ^ 0x27d4eb2f;
}

function fill(buf: usize, block: u32, gen: u32): void {
  for (let i: u32 = 0; i < BLOCK / 4; i++) store<u32>(buf + (<usize>i << 2), word(block, gen, i));
}

function stop(code: i32): i32 {
  cli();
  halt();
  return code;
}

export function boot(): i32 {
  if (!bootInfoValid()) return 1;
  const blocks = <u32>cmdlineNumber("blocks", 256);
  const gens = <u32>cmdlineNumber("gens", 20);
  picInit(MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE, false);
  sti();
  const ide = pciFind(INTEL_VENDOR, PIIX4_IDE_DEVICE);
  const disk = new AtaDisk();
  const mode = cmdlineHas("mode=dma") ? ATA_DMA : ATA_PIO_STRING;
  if (disk.attach(0, 0, mode, piix4BusMasterBase(ide), SLAVE_VECTOR_BASE + (14 - 8)) != BLOCK_OK) {
    puts("disk-writer: no disk\n");
    return stop(2);
  }
  if (<u64>blocks * 8 > disk.sectorCount()) {
    puts("disk-writer: the disk is smaller than the region\n");
    return stop(2);
  }
  const buf = pageAllocRun(1);
  const check = pageAllocRun(1);
  puts("disk-writer: ");
  putDec(blocks);
  puts(" blocks\n");
  for (let gen: u32 = 1; gen <= gens; gen++) {
    for (let n: u32 = 0; n < blocks; n++) {
      const b = (n * STRIDE) & (blocks - 1);
      fill(buf, b, gen);
      if (disk.write(<u64>b * 8, 8, buf) != BLOCK_OK) {
        puts("disk-writer: write failed\n");
        return stop(3);
      }
    }
    for (let b: u32 = 0; b < blocks; b++) {
      if (disk.read(<u64>b * 8, 8, check) != BLOCK_OK) {
        puts("disk-writer: read failed\n");
        return stop(3);
      }
      fill(buf, b, gen);
      if (memory.compare(buf, check, BLOCK) != 0) {
        puts("MISMATCH gen=");
        putDec(gen);
        puts(" block=");
        putDec(b);
        puts("\n");
        return stop(3);
      }
    }
    puts("dgen=");
    putDec(gen);
    puts(" ok\n");
  }
  disk.flush();
  // FNV-1a over the bytes of the region as the last generation wrote it, in disk order.
  let h: u32 = 2166136261;
  for (let b: u32 = 0; b < blocks; b++) {
    fill(buf, b, gens);
    for (let i: u32 = 0; i < BLOCK; i++) h = (h ^ load<u8>(buf + i)) * 16777619;
  }
  puts("disk-writer: done gens=");
  putDec(gens);
  puts(" fnv=");
  putDec(h);
  puts("\n");
  return stop(0);
}

export function interrupt(vector: u32): void {
  dispatchInterrupt(vector, VP_INDEX);
}
