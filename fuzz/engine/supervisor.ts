/**
 * Runs one target's fuzz loop in a worker thread and watches it from outside: an input that
 * runs longer than the hang limit (the loop cannot stop itself inside a synchronous parser) or
 * a heap beyond the worker's memory bound (resourceLimits) ends the worker, and the input that
 * was running, read from the shared buffer, becomes the finding.
 */
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Finding, LoopReport } from './fuzz-loop.ts';

export interface WorkerParams {
  root: string;
  targetModule: string;
  exportName: string;
  timeMs: number;
  maxExecs?: number;
  stopOnFinding?: boolean;
  seed: number;
  slowMs: number;
  corpusDir: string | null;
  regressionsDir: string | null;
  saveDir: string | null;
  maxCorpus: number;
  /** Also count coverage in scripts whose URL starts with this (targets outside the project's layers). */
  coverageAlso?: string;
  /** Heap plus ArrayBuffer bytes the worker may hold after an input. */
  memoryBytes: number;
  inputBuffer: SharedArrayBuffer;
}

export interface SupervisedOptions extends Omit<WorkerParams, 'inputBuffer' | 'root' | 'memoryBytes'> {
  /** Largest input the target reads (the shared buffer's size). */
  maxInputBytes: number;
  /** An input still running after this long is a hang. */
  hangMs: number;
  /** The worker's memory bound: its V8 heap limit, and heap plus ArrayBuffers after each input. */
  memoryMb: number;
  /** Start-up (loading the target) may take this long. */
  startupMs?: number;
}

export type SupervisedReport = LoopReport & { saved: number };

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');

export function runSupervised(o: SupervisedOptions): Promise<SupervisedReport> {
  const inputBuffer = new SharedArrayBuffer(8 + o.maxInputBytes);
  const header = new Int32Array(inputBuffer, 0, 2);
  const params: WorkerParams = {
    root: PROJECT_ROOT,
    targetModule: o.targetModule,
    exportName: o.exportName,
    timeMs: o.timeMs,
    maxExecs: o.maxExecs,
    stopOnFinding: o.stopOnFinding,
    seed: o.seed,
    slowMs: o.slowMs,
    corpusDir: o.corpusDir,
    regressionsDir: o.regressionsDir,
    saveDir: o.saveDir,
    maxCorpus: o.maxCorpus,
    coverageAlso: o.coverageAlso,
    memoryBytes: o.memoryMb * 2 ** 20,
    inputBuffer,
  };
  const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
    workerData: params,
    resourceLimits: { maxOldGenerationSizeMb: o.memoryMb, maxYoungGenerationSizeMb: 32 },
    stdout: false,
    stderr: false,
  });
  const currentInput = () => new Uint8Array(inputBuffer, 8, Atomics.load(header, 1)).slice();
  const deathReport = (finding: Finding): SupervisedReport => ({
    target: o.exportName,
    execs: Atomics.load(header, 0),
    execsPerSecond: 0,
    blocks: 0,
    features: 0,
    blocksByFile: {},
    corpusReplayed: 0,
    corpusKept: [],
    corpusSize: 0,
    newInputs: 0,
    regressionsReplayed: 0,
    refusals: 0,
    findings: [finding],
    saved: 0,
  });

  return new Promise<SupervisedReport>((resolveReport, reject) => {
    let settled = false;
    let lastSeq = 0;
    let lastChange = performance.now();
    const startedAt = performance.now();
    const finish = (r: SupervisedReport | Error) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      void worker.terminate().then(() => (r instanceof Error ? reject(r) : resolveReport(r)));
    };
    const watchdog = setInterval(() => {
      const seq = Atomics.load(header, 0);
      const now = performance.now();
      if (seq !== lastSeq) {
        lastSeq = seq;
        lastChange = now;
        return;
      }
      if (seq > 0 && now - lastChange > o.hangMs) {
        const input = currentInput();
        finish(deathReport({ kind: 'hang', summary: `an input ran longer than ${o.hangMs} ms`, input, minimised: input }));
      } else if (seq === 0 && now - startedAt > (o.startupMs ?? 60_000)) {
        finish(new Error(`fuzz target ${o.exportName} did not start within ${o.startupMs ?? 60_000} ms`));
      }
    }, 25);
    worker.on('message', (m: { report: SupervisedReport }) => finish(m.report));
    worker.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        const input = currentInput();
        finish(deathReport({ kind: 'memory', summary: `the worker's heap passed ${o.memoryMb} MB`, input, minimised: input }));
      } else {
        finish(e);
      }
    });
    worker.on('exit', (code) => finish(new Error(`fuzz worker for ${o.exportName} exited (${code}) without a report`)));
  });
}
