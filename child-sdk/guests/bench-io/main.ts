// The I/O benchmark guest (tsvisor bench io): one VM with an emulated IDE disk (primary master)
// and a synthetic SCSI disk (storvsc, LUN 0) on equal backends runs the same workloads through
// ATA PIO per word, ATA PIO string (READ/WRITE SECTORS), ATA PIO MULTIPLE, ATA DMA and storvsc.
//
// Command line: `plan=` then six numbers per phase, comma-separated, phases in order:
//   path (0 PIO word, 1 PIO string, 2 PIO multiple, 3 DMA, 4 storvsc, 5 storvsc on two queues
//   from two VPs: queues.ts), write (0/1), random (0/1), sectors per I/O, I/O count, queue depth.
// Every phase is bracketed by POST-port writes (0x1000 + phase, 0x2000 + phase) so the host
// samples the VP's counters exactly at its boundaries. Results stay in guest memory (one
// 64-byte record per phase, one u32 latency in 100 ns units per I/O) at the addresses printed on
// COM1; the host reads them after the VP halts.
import { cli, halt, sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineGpa, cmdlineLength } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc, pageAllocRun } from "../../kernel/pages";
import { picInit } from "../../drivers/pic8259";
import { pciFind, piix4BusMasterBase, INTEL_VENDOR, PIIX4_IDE_DEVICE } from "../../drivers/pci-config";
import { AtaDisk, ATA_PIO_WORD, ATA_PIO_STRING, ATA_PIO_MULTIPLE, ATA_DMA } from "../../drivers/ata-disk";
import { BlockDevice, BLOCK_OK } from "../../drivers/block-device";
import { enableHypercalls } from "../../hv/hypercall";
import { vmbusConnect, vmbusInit, vmbusUnload } from "../../vmbus/vmbus-driver";
import { vscClose } from "../../vmbus/vsc";
import { StorvscController } from "../../drivers/storvsc";
import { StorvscDisk } from "../../drivers/storvsc-disk";
import { Phase, RECORD_BYTES, fillTemplate, runPhase } from "./workload";
import { queuesStart, queuesStop, runPhaseOnQueues } from "./queues";
import { vpCount } from "../../kernel/boot-info";

const MASTER_VECTOR_BASE: u32 = 0x20;
const SLAVE_VECTOR_BASE: u32 = 0x28;
const IDE_PRIMARY_IRQ: u32 = 14;
const VMBUS_VECTOR: u32 = 0x30;
const PATH_STORVSC: u32 = 4;
const PATH_QUEUES: u32 = 5;
const MAX_PHASES: u32 = 320; // the plan pages hold 2048 numbers
const BUFFER_BYTES: u32 = 1 << 20; // the largest I/O, and room for 32 × 4 KiB queued buffers

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

/** The numbers after `plan=`, into `out` (u32 each); returns how many. */
function readPlan(out: usize, max: u32): u32 {
  const base = cmdlineGpa();
  const n = <i32>cmdlineLength();
  let i = 0;
  for (; i + 5 <= n; i++) {
    if (load<u8>(base + i) == 0x70 && load<u8>(base + i + 1) == 0x6c && load<u8>(base + i + 2) == 0x61 && load<u8>(base + i + 3) == 0x6e && load<u8>(base + i + 4) == 0x3d) break;
  }
  if (i + 5 > n) return 0;
  let count: u32 = 0, v: u32 = 0, digits = false;
  for (let j = i + 5; j <= n && count < max; j++) {
    const c: u32 = j < n ? load<u8>(base + j) : 0x20;
    if (c >= 0x30 && c <= 0x39) { v = v * 10 + (c - 0x30); digits = true; continue; }
    if (digits) { store<u32>(out + (<usize>count << 2), v); count++; }
    v = 0;
    digits = false;
    if (c == 0x20) break;
  }
  return count;
}

function ataMode(path: u32): u32 {
  if (path == 0) return ATA_PIO_WORD;
  if (path == 1) return ATA_PIO_STRING;
  if (path == 2) return ATA_PIO_MULTIPLE;
  return ATA_DMA;
}

function finish(code: i32): i32 {
  puts("done\n");
  cli();
  halt();
  return code;
}

function main(): i32 {
  const plan = pageAllocRun(2);
  const numbers = readPlan(plan, MAX_PHASES * 6);
  const phases = numbers / 6;
  kv("phases", phases);
  let totalIos: u32 = 0, usesAta = false, usesStorvsc = false, usesQueues = false;
  for (let p: u32 = 0; p < phases; p++) {
    totalIos += load<u32>(plan + (<usize>(p * 6 + 4) << 2));
    const path = load<u32>(plan + (<usize>(p * 6) << 2));
    if (path == PATH_STORVSC || path == PATH_QUEUES) usesStorvsc = true;
    else usesAta = true;
    if (path == PATH_QUEUES) usesQueues = true;
  }

  // Emulated IDE: PIC pair (8259 EOI, as an unenlightened OS programs it), PIIX4 found on PCI.
  picInit(MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE, false);
  sti();
  const ata = new AtaDisk();
  if (usesAta) {
    const bmBase = piix4BusMasterBase(pciFind(INTEL_VENDOR, PIIX4_IDE_DEVICE));
    const vector = SLAVE_VECTOR_BASE + (IDE_PRIMARY_IRQ - 8);
    // MULTIPLE first (SET MULTIPLE MODE), then DMA (SET FEATURES MWDMA2, PRD page): the drive
    // keeps both settings, and the PIO modes need none, so one driver serves every ATA phase.
    const a1 = ata.attach(0, 0, ATA_PIO_MULTIPLE, bmBase, vector);
    const a2 = a1 == BLOCK_OK ? ata.attach(0, 0, ATA_DMA, bmBase, vector) : a1;
    kv("ata_attach", <u64>(-a2));
    kv("ata_sectors", ata.sectorCount());
    kv("ata_multiple", ata.multiple);
    kv("ata_lba48", ata.lba48 ? 1 : 0);
    if (a2 != BLOCK_OK) return finish(2);
  }

  // Synthetic SCSI: hypercalls, SynIC and VMBus, then storvsc on LUN 0.
  const ctl = new StorvscController();
  const scsi = new StorvscDisk(ctl, 0, 0, 0, 0);
  if (usesStorvsc) {
    const ok = enableHypercalls(pageAlloc()) && vmbusInit(VMBUS_VECTOR) && vmbusConnect() && ctl.open();
    kv("storvsc_open", ok ? 1 : 0);
    if (!ok) return finish(3);
    kv("storvsc_attach", <u64>(-scsi.attach()));
    kv("storvsc_sectors", scsi.sectorCount());
    kv("storvsc_max_sectors", scsi.maxSectorsPerRequest());
  }

  const records = pageAllocRun((phases * <u32>RECORD_BYTES + 4095) >> 12);
  const latencies = pageAllocRun((totalIos * 4 + 4095) >> 12);
  const bufs = pageAllocRun(BUFFER_BYTES >> 12);
  const scratch = pageAllocRun(1);
  kv("records_gpa", records);
  kv("latencies_gpa", latencies);
  if (records == 0 || latencies == 0 || bufs == 0 || scratch == 0) return finish(4);
  if (usesQueues) {
    // VP 1 drives sub-channel 1 in the upper half of the buffers.
    const q = vpCount() >= 2 ? queuesStart(ctl, VMBUS_VECTOR, bufs + (BUFFER_BYTES >> 1)) : 5;
    kv("queues_start", q);
    if (q != 0) return finish(5);
  }

  let latIndex: u32 = 0;
  for (let p: u32 = 0; p < phases; p++) {
    const f = plan + (<usize>(p * 6) << 2);
    const path = load<u32>(f);
    let disk: BlockDevice = ata;
    if (path == PATH_STORVSC || path == PATH_QUEUES) disk = scsi;
    const ph = new Phase(disk);
    if (disk == ata) ata.mode = ataMode(path);
    ph.write = load<u32>(f, 4) != 0;
    ph.random = load<u32>(f, 8) != 0;
    ph.sectors = load<u32>(f, 12);
    ph.count = load<u32>(f, 16);
    ph.depth = load<u32>(f, 20);
    // Written data is the template plus each sector's LBA (stamped per I/O); reads left disk data here.
    if (ph.write) fillTemplate(bufs, BUFFER_BYTES >> 9);
    if (path == PATH_QUEUES) runPhaseOnQueues(p, ph, records + <usize>p * RECORD_BYTES, latencies, latIndex, bufs, scratch);
    else runPhase(p, ph, records + <usize>p * RECORD_BYTES, latencies, latIndex, bufs, scratch);
    latIndex += ph.count;
  }
  if (usesQueues) queuesStop();
  kv("phases_done", phases);
  if (usesStorvsc) {
    kv("storvsc_signals_to_host", ctl.ch!.signals);
    kv("storvsc_poll_hits", ctl.pollHits);
    kv("storvsc_poll_misses", ctl.pollMisses);
    kv("storvsc_poll_spins", <u64>ctl.pollSpins);
    vscClose(ctl.ch!);
    kv("unloaded", vmbusUnload() ? 1 : 0);
  }
  return finish(0);
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt, vp_start } from "../../kernel/boot";
