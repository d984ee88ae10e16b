/**
 * The limits each storage path is measured against, in the same run: a plain copy of the same
 * bytes on one thread (what one copy into guest memory costs), the backend alone (the same file
 * ranges read or written with fs.readSync / fs.writeSync into a SharedArrayBuffer view, no VM),
 * and the raw exit round trip (bench/exit.ts) with the adaptive and with a blocking wait.
 */
import * as fs from 'node:fs';
import { runExitBench, type ExitBenchRow } from '../exit.ts';
import { phaseLbas, WORKLOADS, type Phase, type Workload } from './plan.ts';

export interface CopyLimit {
  bytes: number;
  gbPerS: number;
  copies: number;
}

export interface BackendLimit {
  workload: string;
  ios: number;
  seconds: number;
  mbPerS: number;
  iops: number;
  usPerIo: number;
  /** Host CPU time per I/O (all threads), µs. */
  cpuUsPerIo: number;
}

export interface ExitLimit {
  rounds: ExitBenchRow[][];
  /** Median over rounds of each round's mean µs per exit (port reads). */
  adaptiveUsPerExit: number;
  blockingUsPerExit: number;
  adaptiveStringUsPerExit: number;
}

/** Single-thread TypedArray.set from a private buffer into a SharedArrayBuffer, for ≈ `ms` per size. */
export function measureCopy(source: Uint8Array, sizes: number[], ms: number): CopyLimit[] {
  const sab = new Uint8Array(new SharedArrayBuffer(Math.max(...sizes) * 2));
  return sizes.map((bytes) => {
    const span = Math.max(1, Math.floor(source.length / bytes));
    let copies = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      for (let i = 0; i < 64; i++, copies++) {
        const off = (copies % span) * bytes;
        sab.set(source.subarray(off, off + bytes), (copies & 1) * bytes);
      }
      t = performance.now();
    }
    return { bytes, copies, gbPerS: (copies * bytes) / ((t - t0) / 1000) / 1e9 };
  });
}

/**
 * The backend alone: every I/O of `phase`'s workload (same LBAs, same count) as one synchronous
 * pread/pwrite into a SharedArrayBuffer view, which is what storvsp does for a GPA-direct request.
 * Writes go to `scratchFile`, a copy, so the VM's disks stay as the VM left them.
 */
export function measureBackend(file: string, scratchFile: string, phase: Phase, capacitySectors: number): BackendLimit {
  const w = phase.workload;
  const lbas = phaseLbas(phase, capacitySectors);
  const buf = new Uint8Array(new SharedArrayBuffer(w.bytes));
  buf.fill(0x5a);
  const fd = fs.openSync(w.write ? scratchFile : file, w.write ? 'r+' : 'r');
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const lba of lbas) {
      if (w.write) fs.writeSync(fd, buf, 0, w.bytes, lba * 512);
      else if (fs.readSync(fd, buf, 0, w.bytes, lba * 512) !== w.bytes) throw new Error(`short read at LBA ${lba}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      workload: w.id,
      ios: lbas.length,
      seconds,
      mbPerS: (lbas.length * w.bytes) / seconds / 1e6,
      iops: lbas.length / seconds,
      usPerIo: (seconds * 1e6) / lbas.length,
      cpuUsPerIo: (cpu.user + cpu.system) / lbas.length,
    };
  } finally {
    fs.closeSync(fd);
  }
}

export interface FirstTouchLimit {
  pages: number;
  /** µs per 4 KiB pread into memory never touched before (the kernel backs each page in the read). */
  coldUsPerPage: number;
  /** µs per 4 KiB pread of the same ranges into the same, now backed, memory. */
  warmUsPerPage: number;
}

/**
 * The cost of a first touch, on its own: 4 KiB preads of the disk into a fresh SharedArrayBuffer
 * (what a fresh VM's guest memory is before it is backed), then the same preads again into the
 * same buffer. The difference is what a cold run would add to each page of its first I/O.
 */
export function measureFirstTouch(file: string, bytes: number): FirstTouchLimit {
  const pages = bytes / 4096;
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = new Uint8Array(new SharedArrayBuffer(bytes));
    const pass = () => {
      const t0 = performance.now();
      for (let i = 0; i < pages; i++) fs.readSync(fd, buf, i * 4096, 4096, (i * 4096) % size);
      return ((performance.now() - t0) * 1000) / pages;
    };
    const coldUsPerPage = pass();
    return { pages, coldUsPerPage, warmUsPerPage: pass() };
  } finally {
    fs.closeSync(fd);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * One backend figure per workload, with the I/O count and LBAs of that workload's storvsc phase:
 * the median of `rounds` passes (by MB/s), as the VM's rows are.
 */
export function measureBackends(file: string, scratchFile: string, phases: readonly Phase[], capacitySectors: number, rounds: number): BackendLimit[] {
  const passes: BackendLimit[][] = [];
  for (let r = 0; r < rounds; r++) {
    const pass: BackendLimit[] = [];
    for (const w of WORKLOADS as readonly Workload[]) {
      const phase = phases.find((p) => p.workload.id === w.id && p.path.kind === 'synthetic' && !p.warmup);
      if (phase) pass.push(measureBackend(file, scratchFile, phase, capacitySectors));
    }
    passes.push(pass);
  }
  return passes[0]!.map((_, i) => {
    const all = passes.map((p) => p[i]!);
    const m = median(all.map((b) => b.mbPerS));
    return all.find((b) => b.mbPerS === m)!;
  });
}

/** The copy limit, median of `rounds` passes per size. */
export function measureCopyRounds(source: Uint8Array, sizes: number[], ms: number, rounds: number): CopyLimit[] {
  const passes = Array.from({ length: rounds }, () => measureCopy(source, sizes, ms));
  return sizes.map((_, i) => {
    const m = median(passes.map((p) => p[i]!.gbPerS));
    return passes.map((p) => p[i]!).find((c) => c.gbPerS === m)!;
  });
}

export async function measureExits(quick: boolean): Promise<ExitLimit> {
  const rounds: ExitBenchRow[][] = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) rounds.push(await runExitBench({ quick }));
  const pick = (policy: (r: ExitBenchRow) => boolean, kind: ExitBenchRow['kind']) =>
    median(rounds.map((rows) => rows.find((r) => policy(r) && r.kind === kind)!.usPerExit));
  return {
    rounds,
    adaptiveUsPerExit: pick((r) => r.spinIterations > 0, 'port read'),
    blockingUsPerExit: pick((r) => r.spinIterations === 0, 'port read'),
    adaptiveStringUsPerExit: pick((r) => r.spinIterations > 0, 'string read 512 B'),
  };
}
