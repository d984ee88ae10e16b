/**
 * The fuzz worker: starts block coverage before anything of the target is compiled, loads the
 * target, runs the loop and posts the report. Before each input it copies the input into the
 * shared buffer, so the supervisor can name the input of a hang or an out-of-memory death.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BlockCoverage } from './coverage.ts';
import { readInputs, saveInput } from './corpus.ts';
import { projectScript, runFuzzLoop } from './fuzz-loop.ts';
import type { FuzzTarget } from './target.ts';
import type { WorkerParams } from './supervisor.ts';

const p = workerData as WorkerParams;
const coverage = new BlockCoverage(projectScript(p.root, p.coverageAlso));
const mod = (await import(p.targetModule)) as Record<string, () => FuzzTarget | Promise<FuzzTarget>>;
const create = mod[p.exportName];
if (typeof create !== 'function') throw new Error(`${p.targetModule} has no ${p.exportName}()`);
const target = await create();

const header = new Int32Array(p.inputBuffer, 0, 2);
const bytes = new Uint8Array(p.inputBuffer, 8);
let saved = 0;
let report: Awaited<ReturnType<typeof runFuzzLoop>>;
try {
  report = await runFuzzLoop(target, coverage, {
    timeMs: p.timeMs,
    maxExecs: p.maxExecs,
    stopOnFinding: p.stopOnFinding,
    seed: p.seed,
    slowMs: p.slowMs,
    memoryBytes: p.memoryBytes,
    corpus: p.corpusDir ? readInputs(p.corpusDir).map((i) => i.bytes) : [],
    regressions: p.regressionsDir ? readInputs(p.regressionsDir) : [],
    onInput: (input) => {
      const n = Math.min(input.length, bytes.length);
      bytes.set(input.subarray(0, n));
      Atomics.store(header, 1, n);
      Atomics.add(header, 0, 1);
    },
    onNewInput: (input) => {
      if (p.saveDir && saveInput(p.saveDir, input, p.maxCorpus)) saved++;
    },
  });
} finally {
  // Before the report: the supervisor ends the worker as soon as the report arrives.
  target.dispose?.();
  coverage.stop();
}
parentPort!.postMessage({ report: { ...report, saved } });
