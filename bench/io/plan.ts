/**
 * What the I/O benchmark runs: the storage paths, the workloads, the phase list the guest
 * receives on its command line, and what the protocols say each phase must cost. The LBA
 * sequences and checksums mirror child-sdk/guests/bench-io/workload.ts exactly, so the host can
 * replay any phase to check its data.
 */

export type PathId = 'pio-word' | 'pio-string' | 'pio-multiple' | 'dma' | 'storvsc' | 'storvsc-2q';

export interface StoragePath {
  id: PathId;
  /** The guest's path number (bench-io/main.ts). */
  guestPath: number;
  label: string;
  kind: 'emulated' | 'synthetic';
}

export const PATHS: readonly StoragePath[] = [
  { id: 'pio-word', guestPath: 0, label: 'ATA PIO per word', kind: 'emulated' },
  { id: 'pio-string', guestPath: 1, label: 'ATA PIO string (READ/WRITE SECTORS)', kind: 'emulated' },
  { id: 'pio-multiple', guestPath: 2, label: 'ATA PIO MULTIPLE', kind: 'emulated' },
  { id: 'dma', guestPath: 3, label: 'ATA bus-master DMA', kind: 'emulated' },
  { id: 'storvsc', guestPath: 4, label: 'storvsc (VMBus)', kind: 'synthetic' },
];

/** storvsc on two queues: the primary channel from VP 0, sub-channel 1 from VP 1 (bench-io/queues.ts); measured apart (queues.ts). */
export const TWO_QUEUES_PATH: StoragePath = { id: 'storvsc-2q', guestPath: 5, label: 'storvsc, two queues (VP 0 and VP 1)', kind: 'synthetic' };

export interface Workload {
  id: string;
  label: string;
  write: boolean;
  random: boolean;
  bytes: number;
  depth: number;
}

const KiB = 1024,
  MiB = 1 << 20;
export const WORKLOADS: readonly Workload[] = [
  { id: 'seq-read-4k', label: 'sequential read 4 KiB', write: false, random: false, bytes: 4 * KiB, depth: 1 },
  { id: 'seq-read-64k', label: 'sequential read 64 KiB', write: false, random: false, bytes: 64 * KiB, depth: 1 },
  { id: 'seq-read-1m', label: 'sequential read 1 MiB', write: false, random: false, bytes: MiB, depth: 1 },
  { id: 'rand-read-4k-qd1', label: 'random read 4 KiB QD1', write: false, random: true, bytes: 4 * KiB, depth: 1 },
  { id: 'rand-read-4k-qd32', label: 'random read 4 KiB QD32', write: false, random: true, bytes: 4 * KiB, depth: 32 },
  { id: 'seq-write-4k', label: 'sequential write 4 KiB', write: true, random: false, bytes: 4 * KiB, depth: 1 },
  { id: 'seq-write-64k', label: 'sequential write 64 KiB', write: true, random: false, bytes: 64 * KiB, depth: 1 },
  { id: 'seq-write-1m', label: 'sequential write 1 MiB', write: true, random: false, bytes: MiB, depth: 1 },
  { id: 'rand-write-4k-qd1', label: 'random write 4 KiB QD1', write: true, random: true, bytes: 4 * KiB, depth: 1 },
  { id: 'rand-write-4k-qd32', label: 'random write 4 KiB QD32', write: true, random: true, bytes: 4 * KiB, depth: 32 },
];

export interface Phase {
  index: number;
  path: StoragePath;
  workload: Workload;
  /** Queue depth actually used: ATA cannot queue, so its QD32 workloads run (and are labelled) at QD1. */
  depth: number;
  count: number;
  /** Not reported: runs every path's code once before the measured phases (JIT tiering, page cache, first-touch). */
  warmup?: boolean;
  /** Which pass over the workload list (the report takes each row's median round). */
  round: number;
}

/**
 * I/O counts per phase, sized so each phase lasts roughly 0.1–1 s at the exit costs measured with
 * the adaptive wait (≈ 0.2–0.4 µs per exit on a free core). Per-word PIO costs ≈ 2,000 exits per 4 KiB, so it runs 4 KiB I/Os only, and
 * few of them. ATA at QD32 would repeat its QD1 phase (it cannot queue), so it is not run again.
 */
export function count(path: PathId, w: Workload, quick: boolean): number {
  const scale = quick ? 1 / 16 : 2;
  const base: Record<PathId, Record<number, number>> = {
    'pio-word': { [4 * KiB]: 48 },
    'pio-string': { [4 * KiB]: 1024, [64 * KiB]: 96, [MiB]: 8 },
    'pio-multiple': { [4 * KiB]: 2048, [64 * KiB]: 256, [MiB]: 24 },
    dma: { [4 * KiB]: 4096, [64 * KiB]: 1024, [MiB]: 96 },
    storvsc: { [4 * KiB]: 8192, [64 * KiB]: 2048, [MiB]: 256 },
    'storvsc-2q': { [4 * KiB]: 8192 },
  };
  const n = base[path][w.bytes];
  if (n === undefined) return 0;
  const qdBoost = w.depth > 1 ? 8 : 1;
  return Math.max(4, Math.round(n * qdBoost * scale));
}

/**
 * Every round of reads first (every read sees the disk as filled), then every round of writes.
 * Within a workload the paths run back to back, so a change in the machine's load hits them
 * alike; each list runs `rounds` times, so a burst of load spoils one round of a row, not the row.
 */
export function buildPhases(quick: boolean, rounds = 1): Phase[] {
  const phases: Phase[] = [];
  const warm = WORKLOADS[0]!;
  for (const path of PATHS) {
    phases.push({
      index: phases.length,
      path,
      workload: warm,
      depth: 1,
      count: Math.max(4, Math.round(count(path.id, warm, quick) / 8)),
      warmup: true,
      round: 0,
    });
  }
  for (const write of [false, true]) {
    for (let round = 0; round < rounds; round++) {
      for (const w of WORKLOADS.filter((x) => x.write === write)) {
        for (const path of PATHS) {
          if (path.kind === 'emulated' && w.depth > 1) continue;
          const n = count(path.id, w, quick);
          if (n === 0) continue;
          phases.push({ index: phases.length, path, workload: w, depth: path.kind === 'synthetic' ? w.depth : 1, count: n, round });
        }
      }
    }
  }
  return phases;
}

export function guestCommandLine(phases: readonly Phase[]): string {
  const nums = phases.flatMap((p) => [p.path.guestPath, p.workload.write ? 1 : 0, p.workload.random ? 1 : 0, p.workload.bytes / 512, p.count, p.depth]);
  const line = `plan=${nums.join(',')}`;
  // BOOT_CMDLINE_MAX (docs/guest-abi.md §3): a longer plan would be cut off silently.
  if (line.length > 3840) throw new RangeError(`the phase plan needs ${line.length} bytes of command line (at most 3840): fewer rounds`);
  return line;
}

// ---- replay (mirrors bench-io/workload.ts) ----------------------------------------------------

export const RANDOM_SEED = 12345;
const nextRandom = (x: number) => (Math.imul(x, 1664525) + 1013904223) >>> 0;

/** The LBA of each I/O of the phase, in issue order. */
export function phaseLbas(p: Phase, capacitySectors: number): number[] {
  const sectors = p.workload.bytes / 512;
  const blocks = Math.floor(capacitySectors / sectors);
  const out: number[] = [];
  let x = RANDOM_SEED;
  for (let i = 0; i < p.count; i++) {
    if (p.workload.random) {
      x = nextRandom(x);
      out.push(((x >>> 8) % blocks) * sectors);
    } else out.push((i % blocks) * sectors);
  }
  return out;
}

/** The guest's sampled FNV-1a (two 8-byte samples per sector) of `sectors` sectors at `offset` of `data`. */
export function sampledChecksum(data: Uint8Array, offset: number, sectors: number): number {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let h = 2166136261;
  for (let s = 0; s < sectors; s++) {
    const q = offset + s * 512;
    for (const o of [0, 4, 256, 260]) h = Math.imul((h ^ dv.getUint32(q + o, true)) >>> 0, 16777619) >>> 0;
  }
  return h;
}

/** One written sector as the guest writes it: its LBA (u64 LE), then the fixed template. */
export function writtenSector(lba: number): Uint8Array {
  const b = new Uint8Array(512);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, lba >>> 0, true);
  dv.setUint32(4, Math.floor(lba / 2 ** 32), true);
  for (let o = 8; o < 512; o++) b[o] = (o * 131 + 7) & 0xff;
  return b;
}

// ---- what the protocols imply -----------------------------------------------------------------

/** ATA commands carry at most 256 sectors (28-bit count); the driver splits larger I/Os. */
const ATA_MAX_SECTORS = 256;

/**
 * Exits one ATA I/O must cost, with the 8259 EOIs the guest sends (two OUTs per IRQ 14: slave,
 * then master), on LBA28 commands (docs/storage.md, "What one 4 KiB read costs"):
 *  per command 7 task-file writes; PIO data-out adds 1 Alternate Status read for the first block;
 *  per DRQ block (1 sector, or `multiple` sectors) 1 `rep ins/outs` (256 word exits per sector for
 *  PIO per word), and per interrupt 1 Status read + 2 EOIs; DMA is 11 + 4 + 2 per command whatever
 *  its size. Interrupts: one per DRQ block (PIO), one per command (DMA).
 */
export function ataExpected(path: PathId, write: boolean, sectors: number, multiple: number): { exits: number; interrupts: number } {
  let exits = 0,
    interrupts = 0;
  for (let left = sectors; left > 0; left -= ATA_MAX_SECTORS) {
    const s = Math.min(left, ATA_MAX_SECTORS);
    if (path === 'dma') {
      exits += 17;
      interrupts += 1;
      continue;
    }
    const block = path === 'pio-multiple' ? multiple : 1;
    const blocks = Math.ceil(s / block);
    const dataExitsPerBlock = path === 'pio-word' ? 256 * block : 1;
    exits += 7 + (write ? 1 : 0) + blocks * (dataExitsPerBlock + 1 + 2);
    interrupts += blocks;
  }
  return { exits, interrupts };
}
