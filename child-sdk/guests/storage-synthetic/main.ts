// A storage guest on synthetic SCSI: attaches storvsc, writes a pattern, reads it back, runs a
// queue-depth-32 burst of random 4 KiB reads, flushes, measures a queue-depth-1 run, and prints
// key=value lines on COM1 for test/storage/e2e-synthetic*.test.ts. Checksums are FNV-1a (32-bit)
// so the test can recompute them from the host file. Command-line words:
//   two     — a second disk at LUN 1 gets its own pattern (the disks must stay distinct);
//   multi   — CREATE_SUB_CHANNELS(1), then the pattern read again through the sub-channel;
//   hostile — a bad CDB, an LBA past the end and a buffer outside guest memory, each followed by
//             a good read (the host must answer each with an error and keep serving).
import { cli, halt, sti } from "../../platform/hv";
import { puts, putDec } from "../../kernel/console";
import { cmdlineHas, ramPages } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc, pageAllocRun } from "../../kernel/pages";
import { enableHypercalls } from "../../hv/hypercall";
import { vmbusConnect, vmbusInit, vmbusUnload, vmbusWakeCount } from "../../vmbus/vmbus-driver";
import { vscClose } from "../../vmbus/vsc";
import { BLOCK_OK } from "../../drivers/block-device";
import { StorvscController } from "../../drivers/storvsc";
import { StorvscDisk } from "../../drivers/storvsc-disk";
import { READ_TYPE, UNKNOWN_TYPE, encodeSrb } from "../../drivers/storvsc-protocol";
import { VmbusPacketType } from "../../vmbus/ring-layout";

const VMBUS_VECTOR: u32 = 0x30;
const PATTERN_LBA: u64 = 8;
const PATTERN_SECTORS: u32 = 256; // 128 KiB in one request
const DEPTH: u32 = 32;
const RANDOM_READS: u32 = 1024;
const QD1_READS: u32 = 128;
const RANDOM_SEED: u32 = 12345;
const SCRATCH: usize = memory.data(256, 16); // tags, statuses (32 × i32 each), CDB

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

/** FNV-1a over `length` bytes, continuing from `h`. */
function fnv(h: u32, p: usize, length: u32): u32 {
  for (let i: u32 = 0; i < length; i++) h = (h ^ load<u8>(p + i)) * 16777619;
  return h;
}
const FNV_BASIS: u32 = 2166136261;

/** The pattern byte at byte `o` of disk `d`'s pattern: depends on the sector, so a misplaced sector shows. */
function patternByte(d: u32, o: u32): u8 {
  return <u8>((o >> 9) * 37 + (o & 511) * 11 + d * 101 + 3);
}

function writePattern(disk: StorvscDisk, d: u32, buf: usize, check: usize): void {
  const bytes = PATTERN_SECTORS * 512;
  for (let o: u32 = 0; o < bytes; o++) store<u8>(buf + o, patternByte(d, o));
  const prefix = d == 0 ? "" : "disk1_";
  kv(prefix + "write_status", <u64>(-disk.write(PATTERN_LBA, PATTERN_SECTORS, buf)));
  kv(prefix + "pattern_checksum", fnv(FNV_BASIS, buf, bytes));
  kv(prefix + "read_status", <u64>(-disk.read(PATTERN_LBA, PATTERN_SECTORS, check)));
  kv(prefix + "readback_checksum", fnv(FNV_BASIS, check, bytes));
  kv(prefix + "readback_ok", memory.compare(buf, check, bytes) == 0 ? 1 : 0);
}

/** LCG (Numerical Recipes); the test replays it to know which blocks were read. */
function nextRandom(x: u32): u32 { return x * 1664525 + 1013904223; }

/** Queue-depth-32 random 4 KiB reads: keeps 32 in flight, resubmits as it reaps (one batch per poll). */
function randomBurst(ctl: StorvscController, disk: StorvscDisk, bufs: usize): void {
  const blocks = <u32>(disk.sectorCount() >> 3);
  const tags = SCRATCH, statuses = SCRATCH + 128;
  puts("@qd32_begin\n"); // one exit: the test samples the partition's counters here
  const signals0 = ctl.ch!.signals, halts0 = ctl.ch!.halts, wakes0 = vmbusWakeCount(), batches0 = ctl.batches;
  let x = RANDOM_SEED, sum: u32 = 0, issued: u32 = 0, done: u32 = 0, errors: u32 = 0, maxInFlight: u32 = 0;
  // Tags are request slots, not buffer numbers: remember which buffer each tag reads into.
  const owner = pageAlloc();
  for (let t: u32 = 0; t < DEPTH && issued < RANDOM_READS; t++) {
    x = nextRandom(x);
    const r = disk.submit(false, <u64>((x >> 8) % blocks) << 3, 8, bufs + (<usize>t << 12));
    if (r < 0) errors++;
    else {
      store<u32>(owner + (<usize>r << 2), t);
      issued++;
    }
  }
  while (done < issued) {
    if (disk.inFlight() > maxInFlight) maxInFlight = disk.inFlight();
    const n = disk.poll(tags, statuses, DEPTH, true);
    if (n == 0) break;
    // A reaped tag is free at once and a submit below may return it again: look up every
    // reaped tag's buffer before resubmitting any.
    for (let i: u32 = 0; i < n; i++) {
      const tag = load<i32>(tags + (<usize>i << 2));
      store<u32>(tags + (<usize>i << 2), load<u32>(owner + (<usize>tag << 2)));
    }
    for (let i: u32 = 0; i < n; i++) {
      const index = load<u32>(tags + (<usize>i << 2));
      const buf = bufs + (<usize>index << 12);
      if (load<i32>(statuses + (<usize>i << 2)) != BLOCK_OK) errors++;
      else sum += fnv(FNV_BASIS, buf, 4096);
      done++;
      if (issued < RANDOM_READS) {
        x = nextRandom(x);
        const r = disk.submit(false, <u64>((x >> 8) % blocks) << 3, 8, buf);
        if (r < 0) errors++;
        else {
          store<u32>(owner + (<usize>r << 2), index);
          issued++;
        }
      }
    }
  }
  puts("@qd32_end\n");
  kv("rand_reads", done);
  kv("rand_errors", errors);
  kv("rand_checksum", sum);
  kv("rand_max_in_flight", maxInFlight);
  kv("rand_signals_to_host", ctl.ch!.signals - signals0);
  kv("rand_halts", ctl.ch!.halts - halts0);
  kv("rand_interrupts", vmbusWakeCount() - wakes0);
  kv("rand_batches", ctl.batches - batches0);
}

/**
 * Every slot at once: 128 sequential 4 KiB reads submitted in one batch (one signal), a 129th
 * refused with BLOCK_QUEUE_FULL, then all reaped. Blocks 0..127, so the test knows the bytes.
 */
function deepQueue(ctl: StorvscController, disk: StorvscDisk, bufs: usize): void {
  const depth = disk.queueDepth();
  const tags = SCRATCH, statuses = SCRATCH + 128;
  const signals0 = ctl.ch!.signals;
  let errors: u32 = 0, sum: u32 = 0, done: u32 = 0;
  for (let i: u32 = 0; i < depth; i++) if (disk.submit(false, <u64>i << 3, 8, bufs + (<usize>i << 12)) < 0) errors++;
  kv("deep_in_flight", disk.inFlight());
  kv("deep_overflow", <u64>(-disk.submit(false, 0, 8, bufs)));
  while (disk.inFlight() > 0) {
    const n = disk.poll(tags, statuses, 32, true);
    if (n == 0) break;
    for (let i: u32 = 0; i < n; i++) if (load<i32>(statuses + (<usize>i << 2)) != BLOCK_OK) errors++;
    done += n;
  }
  // Buffer i holds block i whatever order the completions came in.
  for (let i: u32 = 0; i < depth; i++) sum += fnv(FNV_BASIS, bufs + (<usize>i << 12), 4096);
  kv("deep_reads", done);
  kv("deep_errors", errors);
  kv("deep_checksum", sum);
  kv("deep_signals_to_host", ctl.ch!.signals - signals0);
}

/** Synchronous 4 KiB reads one after another: what a single outstanding request costs. */
function qd1Reads(ctl: StorvscController, disk: StorvscDisk, buf: usize): void {
  puts("@qd1_begin\n");
  const signals0 = ctl.ch!.signals, halts0 = ctl.ch!.halts, wakes0 = vmbusWakeCount();
  let errors: u32 = 0;
  for (let i: u32 = 0; i < QD1_READS; i++) if (disk.read(<u64>i << 3, 8, buf) != BLOCK_OK) errors++;
  puts("@qd1_end\n");
  kv("qd1_reads", QD1_READS);
  kv("qd1_errors", errors);
  kv("qd1_signals_to_host", ctl.ch!.signals - signals0);
  kv("qd1_halts", ctl.ch!.halts - halts0);
  kv("qd1_interrupts", vmbusWakeCount() - wakes0);
}

function readCdb16(op: u8, lba: u64, blocks: u32): usize {
  const c = SCRATCH + 256 - 16;
  memory.fill(c, 0, 16);
  store<u8>(c, op);
  for (let i: u32 = 0; i < 8; i++) store<u8>(c + 2 + i, <u8>(lba >> (<u64>(56 - i * 8))));
  for (let i: u32 = 0; i < 4; i++) store<u8>(c + 10 + i, <u8>(blocks >> (24 - i * 8)));
  return c;
}

function reportError(ctl: StorvscController, prefix: string, status: i32): void {
  kv(prefix + "_status", <u64>(-status));
  kv(prefix + "_srb", ctl.lastSrbStatus);
  kv(prefix + "_sense_key", ctl.lastSenseKey);
  kv(prefix + "_asc", ctl.lastAsc);
}

/** Hostile requests through the raw command path; after each, a good read must still work. */
function hostile(ctl: StorvscController, disk: StorvscDisk, buf: usize): void {
  // An opcode no direct-access device implements (vendor-specific 0xC0).
  reportError(ctl, "badcdb", disk.command(readCdb16(0xc0, 0, 0), 16, UNKNOWN_TYPE, 0, 0));
  kv("after_badcdb_read", <u64>(-disk.read(PATTERN_LBA, 8, buf)));
  // READ(16) starting at the first LBA past the end.
  reportError(ctl, "pastend", disk.command(readCdb16(0x88, disk.sectorCount(), 8), 16, READ_TYPE, buf, 4096));
  kv("after_pastend_read", <u64>(-disk.read(PATTERN_LBA, 8, buf)));
  // A buffer above the end of guest memory.
  const outside = <usize>ramPages() << 12;
  reportError(ctl, "badgpa", disk.command(readCdb16(0x88, 0, 8), 16, READ_TYPE, outside, 4096));
  kv("after_badgpa_read", <u64>(-disk.read(PATTERN_LBA, 8, buf)));
  kv("after_hostile_checksum", fnv(FNV_BASIS, buf, 4096));
  // Packets storvsp must not act on: an SRB without COMPLETION_REQUESTED (it could never be
  // answered) and a completion the host never asked for. Neither may stop the channel.
  const pkt = SCRATCH + 128;
  encodeSrb(pkt, 0, 0, 0, 0, 16, READ_TYPE, 0);
  ctl.ch!.send(VmbusPacketType.DataInband, 0, 900, 0, 0, 0, pkt, 64);
  ctl.ch!.send(VmbusPacketType.Completion, 0, 901, 0, 0, 0, pkt, 64);
  kv("after_stray_read", <u64>(-disk.read(PATTERN_LBA, 8, buf)));
  // Refused by the driver itself, before anything reaches the host.
  kv("local_pastend", <u64>(-disk.submit(false, disk.sectorCount() - 4, 8, buf)));
  kv("local_zero", <u64>(-disk.submit(false, 0, 0, buf)));
}

/** A second queue: sub-channel 1, its own rings and slots, the same LUN. */
function subChannel(ctl: StorvscController, buf: usize): void {
  kv("sub_create", ctl.createSubChannels(1) ? 1 : 0);
  const sub = new StorvscController();
  const ok = sub.openSubChannel(ctl, 1);
  kv("sub_open", ok ? 1 : 0);
  if (!ok) return;
  kv("sub_relid", sub.ch!.relid);
  const disk = new StorvscDisk(sub, 0, 0, 0, 0);
  kv("sub_attach", <u64>(-disk.attach()));
  memory.fill(buf, 0, PATTERN_SECTORS * 512);
  kv("sub_read_status", <u64>(-disk.read(PATTERN_LBA, PATTERN_SECTORS, buf)));
  kv("sub_read_checksum", fnv(FNV_BASIS, buf, PATTERN_SECTORS * 512));
  kv("sub_completed", sub.completed);
  kv("sub_signals_to_host", sub.ch!.signals);
  vscClose(sub.ch!);
}

function main(): i32 {
  kv("hypercalls", enableHypercalls(pageAlloc()) ? 1 : 0);
  kv("vmbus_init", vmbusInit(VMBUS_VECTOR) ? 1 : 0);
  sti();
  kv("connected", vmbusConnect() ? 1 : 0);
  const ctl = new StorvscController();
  const opened = ctl.open();
  kv("storvsc_open", opened ? 1 : 0);
  if (!opened) {
    kv("storvsc_error", ctl.error);
    puts("done\n");
    cli();
    halt();
    return 1;
  }
  kv("protocol", ctl.protocol);
  kv("max_transfer_bytes", ctl.maxTransferBytes);
  kv("max_sub_channels", ctl.maxSubChannels);
  const disk = new StorvscDisk(ctl, 0, 0, 0, 0);
  kv("attach", <u64>(-disk.attach()));
  kv("sectors", disk.sectorCount());
  kv("max_sectors", disk.maxSectorsPerRequest());
  kv("queue_depth", disk.queueDepth());
  const absent = new StorvscDisk(ctl, 2, 0, 0, 5);
  kv("lun5_attach", <u64>(-absent.attach()));
  kv("lun5_peripheral", absent.peripheral);
  const buf = pageAllocRun(PATTERN_SECTORS / 8);
  const check = pageAllocRun(PATTERN_SECTORS / 8);
  writePattern(disk, 0, buf, check);
  if (cmdlineHas("two")) {
    const disk1 = new StorvscDisk(ctl, 1, 0, 0, 1);
    kv("disk1_attach", <u64>(-disk1.attach()));
    kv("disk1_sectors", disk1.sectorCount());
    writePattern(disk1, 1, buf, check);
    // Disk 0's pattern is still disk 0's.
    kv("disk0_reread_status", <u64>(-disk.read(PATTERN_LBA, PATTERN_SECTORS, check)));
    kv("disk0_reread_checksum", fnv(FNV_BASIS, check, PATTERN_SECTORS * 512));
  }
  if (cmdlineHas("multi")) subChannel(ctl, check);
  randomBurst(ctl, disk, pageAllocRun(DEPTH));
  deepQueue(ctl, disk, pageAllocRun(disk.queueDepth()));
  kv("flush_status", <u64>(-disk.flush()));
  qd1Reads(ctl, disk, buf);
  if (cmdlineHas("hostile")) hostile(ctl, disk, buf);
  kv("submitted", ctl.submitted);
  kv("completed", ctl.completed);
  kv("unmatched", ctl.unmatched);
  kv("signals_to_host", ctl.ch!.signals);
  kv("packets_sent", ctl.ch!.packetsSent);
  kv("packets_received", ctl.ch!.packetsReceived);
  vscClose(ctl.ch!);
  kv("unloaded", vmbusUnload() ? 1 : 0);
  puts("done\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
