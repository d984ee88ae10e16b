// The benchmark's workloads: one phase runs `count` I/Os of `sectors` sectors on one block
// device, sequential or random, read or write, at queue depth 1 or deeper, and times every I/O
// with the reference-time MSR (100 ns). The host replays the same LBA sequence to check the data,
// so the sequence rules here are part of the report's contract (bench/io/plan.ts mirrors them).
import { outl, rdmsr } from "../../platform/hv";
import { HV_X64_MSR_TIME_REF_COUNT } from "../../../abi/hv-msr";
import { BlockDevice, BLOCK_OK, SECTOR_SIZE } from "../../drivers/block-device";

/** POST diagnostic port: the host samples the VP's counters while the VP sits in this exit. */
export const POST_PORT: u32 = 0x80;
export const POST_PHASE_BEGIN: u32 = 0x1000;
export const POST_PHASE_END: u32 = 0x2000;

/** Phase record in guest memory, u64 fields (the host reads them after the run). */
export const R_T0: usize = 0; // reference time after the begin marker
export const R_T1: usize = 8; // reference time before the end marker
export const R_DONE: usize = 16; // I/Os completed
export const R_ERRORS: usize = 24; // I/Os that failed
export const R_CHECKSUM: usize = 32; // sum over I/Os of the sampled FNV of the data moved
export const R_LAT_INDEX: usize = 40; // first latency slot of this phase
export const R_MAX_IN_FLIGHT: usize = 48;
export const RECORD_BYTES: usize = 64;

/** Random LBAs: an LCG (Numerical Recipes) seeded the same for every path, so each path reads the same blocks. */
export const RANDOM_SEED: u32 = 12345;
export function nextRandom(x: u32): u32 { return x * 1664525 + 1013904223; }

/** Written sectors carry their LBA in the first 8 bytes and a fixed template after it. */
export function templateByte(offsetInSector: u32): u8 { return <u8>(offsetInSector * 131 + 7); }

// @ts-ignore: decorator
@inline export function now(): u64 { return rdmsr(HV_X64_MSR_TIME_REF_COUNT); }

/**
 * FNV-1a over two sampled words of every sector (bytes 0–7 and 256–263): a misplaced, stale or
 * missing sector changes it, and it costs nanoseconds, so checking the data does not distort the
 * timing. Byte-for-byte identity of both paths is what test/storage checks.
 */
export function sampledChecksum(p: usize, sectors: u32): u32 {
  let h: u32 = 2166136261;
  for (let s: u32 = 0; s < sectors; s++) {
    const q = p + (<usize>s << 9);
    h = (h ^ load<u32>(q)) * 16777619;
    h = (h ^ load<u32>(q, 4)) * 16777619;
    h = (h ^ load<u32>(q, 256)) * 16777619;
    h = (h ^ load<u32>(q, 260)) * 16777619;
  }
  return h;
}

export function fillTemplate(p: usize, sectors: u32): void {
  for (let s: u32 = 0; s < sectors; s++) {
    const q = p + (<usize>s << 9);
    for (let o: u32 = 8; o < SECTOR_SIZE; o++) store<u8>(q + o, templateByte(o));
  }
}

function stamp(p: usize, lba: u64, sectors: u32): void {
  for (let s: u32 = 0; s < sectors; s++) store<u64>(p + (<usize>s << 9), lba + s);
}

export class Phase {
  disk: BlockDevice;
  write: bool = false;
  random: bool = false;
  sectors: u32 = 8;
  count: u32 = 0;
  depth: u32 = 1;
  /** Of the phase's LBA sequence, this queue takes I/O number `first`, then every `stride`-th (several queues share one phase). */
  first: u32 = 0;
  stride: u32 = 1;
  constructor(disk: BlockDevice) { this.disk = disk; }
}

/** Where the I/Os of one phase go: sequential from LBA 0 (wrapping), or LCG-random, aligned to the I/O size. */
class LbaSequence {
  private x: u32 = RANDOM_SEED;
  private n: u64 = 0;
  constructor(private readonly random: bool, private readonly sectors: u32, private readonly blocks: u64, first: u32 = 0, private readonly stride: u32 = 1) {
    for (let i: u32 = 0; i < first; i++) this.step();
  }
  private step(): u64 {
    if (this.random) {
      this.x = nextRandom(this.x);
      return (<u64>(this.x >> 8) % this.blocks) * this.sectors;
    }
    const lba = (this.n % this.blocks) * this.sectors;
    this.n++;
    return lba;
  }
  /** This queue's next LBA: the sequence's next one, the others' in between skipped. */
  next(): u64 {
    const lba = this.step();
    for (let i: u32 = 1; i < this.stride; i++) this.step();
    return lba;
  }
}

/**
 * One I/O of any size to completion: a path whose requests are smaller than the I/O (storvsc
 * carries 256 KiB per request) submits every piece in one batch and reaps them all; ATA splits
 * inside its driver.
 */
function ioToCompletion(disk: BlockDevice, write: bool, lba: u64, sectors: u32, buf: usize, scratch: usize): i32 {
  const max = disk.maxSectorsPerRequest();
  if (sectors <= max || disk.queueDepth() == 1) return write ? disk.write(lba, sectors, buf) : disk.read(lba, sectors, buf);
  let status = BLOCK_OK, off: u32 = 0;
  while (off < sectors) {
    const n = sectors - off < max ? sectors - off : max;
    const t = disk.submit(write, lba + off, n, buf + (<usize>off << 9));
    if (t < 0) return t;
    off += n;
  }
  while (disk.inFlight() > 0) {
    const k = disk.poll(scratch, scratch + 512, 128, true);
    if (k == 0) return BLOCK_OK - 1;
    for (let i: u32 = 0; i < k; i++) if (load<i32>(scratch + 512 + (<usize>i << 2)) != BLOCK_OK) status = load<i32>(scratch + 512 + (<usize>i << 2));
  }
  return status;
}

/** Queue depth 1: time each I/O from its start to its completion. */
function runSerial(ph: Phase, rec: usize, lat: usize, buf: usize, scratch: usize): void {
  const seq = new LbaSequence(ph.random, ph.sectors, ph.disk.sectorCount() / ph.sectors, ph.first, ph.stride);
  let sum: u32 = 0, errors: u64 = 0;
  for (let i: u32 = 0; i < ph.count; i++) {
    const lba = seq.next();
    if (ph.write) stamp(buf, lba, ph.sectors);
    const t = now();
    const r = ioToCompletion(ph.disk, ph.write, lba, ph.sectors, buf, scratch);
    store<u32>(lat + (<usize>i << 2), <u32>(now() - t));
    if (r != BLOCK_OK) errors++;
    else sum += sampledChecksum(buf, ph.sectors);
  }
  store<u64>(rec + R_DONE, ph.count);
  store<u64>(rec + R_ERRORS, errors);
  store<u64>(rec + R_CHECKSUM, sum);
  store<u64>(rec + R_MAX_IN_FLIGHT, 1);
}

/**
 * Queue depth > 1: keep `depth` I/Os in flight, resubmitting as completions are reaped. Submits
 * between two polls form one ring batch; every I/O of a batch shares its submit time, and every
 * I/O reaped by one poll shares its completion time, so timing costs one clock read per batch.
 * Scratch layout: tags, statuses, buffer index per tag, submit time per tag.
 */
export function runQueued(ph: Phase, rec: usize, lat: usize, bufs: usize, scratch: usize): void {
  const disk = ph.disk;
  const bytes = <usize>ph.sectors << 9;
  const seq = new LbaSequence(ph.random, ph.sectors, disk.sectorCount() / ph.sectors, ph.first, ph.stride);
  const tags = scratch, statuses = scratch + 512, owner = scratch + 1024, started = scratch + 2048;
  let issued: u32 = 0, done: u32 = 0, errors: u64 = 0, sum: u32 = 0, maxInFlight: u32 = 0;
  let batchTime = now();
  for (let b: u32 = 0; b < ph.depth && issued < ph.count; b++) {
    const buf = bufs + <usize>b * bytes;
    const lba = seq.next();
    if (ph.write) stamp(buf, lba, ph.sectors);
    const t = disk.submit(ph.write, lba, ph.sectors, buf);
    if (t < 0) { errors++; issued++; done++; continue; }
    store<u32>(owner + (<usize>t << 2), b);
    store<u64>(started + (<usize>t << 3), batchTime);
    issued++;
  }
  while (done < issued) {
    if (disk.inFlight() > maxInFlight) maxInFlight = disk.inFlight();
    const n = disk.poll(tags, statuses, 128, true);
    if (n == 0) break;
    const reaped = now();
    // A reaped tag is free at once and a submit below may return it: resolve every reaped tag first.
    for (let i: u32 = 0; i < n; i++) {
      const tag = load<i32>(tags + (<usize>i << 2));
      store<u32>(lat + (<usize>done + i << 2), <u32>(reaped - load<u64>(started + (<usize>tag << 3))));
      store<u32>(tags + (<usize>i << 2), load<u32>(owner + (<usize>tag << 2)));
    }
    batchTime = reaped;
    for (let i: u32 = 0; i < n; i++) {
      const b = load<u32>(tags + (<usize>i << 2));
      const buf = bufs + <usize>b * bytes;
      if (load<i32>(statuses + (<usize>i << 2)) != BLOCK_OK) errors++;
      else sum += sampledChecksum(buf, ph.sectors);
      if (issued < ph.count) {
        const lba = seq.next();
        if (ph.write) stamp(buf, lba, ph.sectors);
        const t = disk.submit(ph.write, lba, ph.sectors, buf);
        if (t < 0) errors++;
        else {
          store<u32>(owner + (<usize>t << 2), b);
          store<u64>(started + (<usize>t << 3), batchTime);
        }
        issued++;
      }
    }
    done += n;
  }
  store<u64>(rec + R_DONE, done);
  store<u64>(rec + R_ERRORS, errors + <u64>(issued - done));
  store<u64>(rec + R_CHECKSUM, sum);
  store<u64>(rec + R_MAX_IN_FLIGHT, maxInFlight);
}

/** Runs one phase between its two POST markers; the host's counters bracket exactly these I/Os. */
export function runPhase(index: u32, ph: Phase, rec: usize, lat: usize, latIndex: u32, bufs: usize, scratch: usize): void {
  store<u64>(rec + R_LAT_INDEX, latIndex);
  const latAt = lat + (<usize>latIndex << 2);
  outl(POST_PORT, POST_PHASE_BEGIN + index);
  store<u64>(rec + R_T0, now());
  if (ph.depth <= 1) runSerial(ph, rec, latAt, bufs, scratch);
  else runQueued(ph, rec, latAt, bufs, scratch);
  store<u64>(rec + R_T1, now());
  outl(POST_PORT, POST_PHASE_END + index);
}
