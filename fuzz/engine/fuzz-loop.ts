/**
 * The coverage-guided loop, in the thread that runs the target: replay the corpus (and the
 * regression inputs), then for the time given pick a corpus entry, mutate it, run it, and keep
 * it if V8 saw a block (or a block's hit-count bucket) it had not seen. Inputs run in batches
 * with one coverage snapshot per batch; a batch that shows something new is replayed input by
 * input to find which one did, since taking coverage costs about a millisecond.
 */
import { getHeapStatistics } from 'node:v8';
import type { BlockCoverage } from './coverage.ts';
import { inputName } from './corpus.ts';
import { minimise } from './minimise.ts';
import { Mutator } from './mutator.ts';
import { Prng } from './prng.ts';
import type { FuzzTarget } from './target.ts';

export type FindingKind = 'crash' | 'slow' | 'hang' | 'memory';

export interface Finding {
  kind: FindingKind;
  /** Error name and first line of the message, or the time taken. */
  summary: string;
  stack?: string;
  input: Uint8Array;
  /** Same finding, smallest input found. */
  minimised: Uint8Array;
}

export interface LoopOptions {
  timeMs: number;
  /** Mutated inputs to run at most (with a fixed seed, a run of N executions is reproducible). */
  maxExecs?: number;
  /** End the run at the first finding. */
  stopOnFinding?: boolean;
  seed: number;
  /** An input that completes but takes longer than this is a finding ('slow'). */
  slowMs: number;
  /**
   * Heap plus array-buffer memory the thread may hold after an input. The worker's heap limit
   * does not count ArrayBuffers, which is what a parser that trusts a length allocates.
   */
  memoryBytes?: number;
  corpus: Uint8Array[];
  /** Inputs of fixed findings: replayed first, each must now pass. */
  regressions: { name: string; bytes: Uint8Array }[];
  /** Called before each input runs, so a watchdog outside the thread knows what is running. */
  onInput?: (input: Uint8Array) => void;
  /** Called when an input added coverage. */
  onNewInput?: (input: Uint8Array) => void;
}

export interface LoopReport {
  target: string;
  execs: number;
  execsPerSecond: number;
  /** Distinct blocks covered in the code under test, and features (block × bucket). */
  blocks: number;
  features: number;
  blocksByFile: Record<string, number>;
  corpusReplayed: number;
  /** Replayed corpus entries that added coverage, in order: what a minimised corpus keeps. */
  corpusKept: string[];
  corpusSize: number;
  newInputs: number;
  regressionsReplayed: number;
  refusals: number;
  findings: Finding[];
}

type Outcome = { kind: 'ok' } | { kind: 'refused' } | { kind: 'bug'; error: unknown };

const BATCH = 16;
/** Entries up to this long get AFL's deterministic byte walk: every value at every position. */
const WALK_MAX_BYTES = 8;

function* byteWalk(entry: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < entry.length; at++) {
    for (let v = 0; v < 256; v++) {
      if (v === entry[at]) continue;
      const c = entry.slice();
      c[at] = v;
      yield c;
    }
  }
}

function heldBytes(): number {
  const h = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & { external_memory: number };
  return h.used_heap_size + h.external_memory;
}

function describeError(e: unknown): { summary: string; stack?: string; signature: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  const first = (err.message ?? '').split('\n')[0]!.slice(0, 200);
  const frame = (err.stack ?? '').split('\n').find((l) => l.trim().startsWith('at ')) ?? '';
  return { summary: `${err.name}: ${first}`, stack: err.stack, signature: `${err.name}|${frame.trim()}` };
}

/** Scripts that count for coverage: the project's code, not the fuzzer, its targets, test rigs or dependencies. */
export function projectScript(root: string, alsoInclude?: string): (url: string) => boolean {
  const base = `file://${root}/`;
  return (url) =>
    (alsoInclude !== undefined && url.startsWith(alsoInclude)) ||
    (url.startsWith(base) && !url.includes('/node_modules/') && !url.startsWith(`${base}fuzz/`) && !url.startsWith(`${base}test/`));
}

export async function runFuzzLoop(target: FuzzTarget, coverage: BlockCoverage, o: LoopOptions): Promise<LoopReport> {
  const rng = new Prng(o.seed);
  const mutator = new Mutator(rng, target.dictionary ?? [], target.maxInputBytes);
  const findings: Finding[] = [];
  const signatures = new Set<string>();
  let execs = 0;
  let refusals = 0;
  /** Set when the memory bound was passed: the thread's state is no longer trustworthy, stop. */
  let outOfMemory = false;

  const exec = async (input: Uint8Array): Promise<Outcome> => {
    o.onInput?.(input);
    execs++;
    try {
      const r = target.run(input);
      if (r) await r;
      return { kind: 'ok' };
    } catch (e) {
      if (target.isExpectedError(e)) {
        refusals++;
        return { kind: 'refused' };
      }
      return { kind: 'bug', error: e };
    }
  };

  const signatureOf = async (input: Uint8Array): Promise<string | null> => {
    const started = performance.now();
    const r = await exec(input);
    if (r.kind === 'bug') return describeError(r.error).signature;
    return performance.now() - started > o.slowMs ? 'slow' : null;
  };

  /** Runs one input and records a finding; returns false when it was one. */
  const runChecked = async (input: Uint8Array): Promise<boolean> => {
    const started = performance.now();
    const r = await exec(input);
    const ms = performance.now() - started;
    let finding: { kind: FindingKind; summary: string; stack?: string; signature: string } | null = null;
    const held = o.memoryBytes ? heldBytes() : 0;
    if (r.kind === 'bug') finding = { kind: 'crash', ...describeError(r.error) };
    else if (o.memoryBytes && held > o.memoryBytes) {
      if (outOfMemory) return false;
      outOfMemory = true;
      findings.push({
        kind: 'memory',
        summary: `${(held / 2 ** 20).toFixed(0)} MiB held after this input (bound ${(o.memoryBytes / 2 ** 20).toFixed(0)} MiB)`,
        input,
        minimised: input,
      });
      return false;
    } else if (ms > o.slowMs) {
      // A slow run must be slow again: on a loaded machine a pause of the thread is not the input's doing.
      const again = performance.now();
      await exec(input);
      const ms2 = performance.now() - again;
      if (ms2 > o.slowMs) finding = { kind: 'slow', summary: `took ${ms.toFixed(0)} and ${ms2.toFixed(0)} ms (limit ${o.slowMs} ms)`, signature: 'slow' };
    }
    if (!finding) return true;
    if (!signatures.has(finding.signature)) {
      signatures.add(finding.signature);
      const sig = finding.signature;
      const minimised = await minimise(input, async (c) => (await signatureOf(c)) === sig, { attempts: 3000, deadline: performance.now() + 10_000 });
      findings.push({ kind: finding.kind, summary: finding.summary, stack: finding.stack, input, minimised });
    }
    return false;
  };

  for (const r of o.regressions) {
    if (!(await runChecked(r.bytes))) findings.at(-1)!.summary += ` (regression input ${r.name})`;
  }

  // The corpus: every entry runs alone so its coverage is known; empty means start from seeds.
  const corpus: Uint8Array[] = [];
  const initial = o.corpus.length ? o.corpus : target.seeds();
  coverage.take();
  for (const input of initial) {
    const ok = await runChecked(input.subarray(0, target.maxInputBytes));
    const fresh = coverage.merge(coverage.take());
    if (ok && (fresh > 0 || corpus.length === 0)) corpus.push(input);
  }
  const corpusReplayed = initial.length;
  const corpusKept = o.corpus.length ? corpus.map(inputName) : [];
  if (corpus.length === 0) corpus.push(new Uint8Array(0));

  /** Half the time one of the newest entries: what just found new code is the best next step. */
  const pickEntry = () => (rng.chance(0.5) ? corpus[corpus.length - 1 - rng.below(Math.min(4, corpus.length))]! : rng.pick(corpus));
  // Half of each batch walks the bytes of short new entries (magic values one byte at a time).
  const walks = corpus.filter((e) => e.length <= WALK_MAX_BYTES).map(byteWalk);
  const nextWalk = (): Uint8Array | null => {
    // Newest first: the entry that just found new code is where the next step is.
    while (walks.length) {
      const n = walks.at(-1)!.next();
      if (!n.done) return n.value;
      walks.pop();
    }
    return null;
  };
  let newInputs = 0;
  const batchSeen = new Set<string>();
  const started = performance.now();
  const fuzzStart = execs;
  while (!outOfMemory && !(o.stopOnFinding && findings.length > 0) && performance.now() - started < o.timeMs && execs - fuzzStart < (o.maxExecs ?? Infinity)) {
    const batch: Uint8Array[] = [];
    for (let i = 0; i < BATCH; i++) {
      const walked = i % 2 === 0 ? nextWalk() : null;
      batch.push(walked ?? mutator.mutate(pickEntry(), rng.pick(corpus)));
    }
    for (const input of batch) await runChecked(input);
    const keys = coverage.take();
    if (!keys.some((k) => coverage.countNew([k]) > 0 && !batchSeen.has(k))) continue;
    for (const input of batch) {
      if (!(await runChecked(input))) {
        coverage.take();
        continue;
      }
      if (coverage.merge(coverage.take()) > 0) {
        corpus.push(input);
        if (input.length <= WALK_MAX_BYTES) walks.push(byteWalk(input));
        newInputs++;
        o.onNewInput?.(input);
      }
    }
    for (const k of keys) batchSeen.add(k);
  }
  const elapsed = (performance.now() - started) / 1000;
  const byFile = coverage.blocksByScript();
  const blocksByFile: Record<string, number> = {};
  let blocks = 0;
  for (const [url, n] of byFile) {
    if (n === 0) continue;
    blocksByFile[url.replace(/^file:\/\/[^?]*?\/(?=(vmbus|root-partition|hypervisor|abi)\/)/, '').replace(/\?.*$/, '')] = n;
    blocks += n;
  }
  return {
    target: target.name,
    execs,
    execsPerSecond: elapsed > 0 ? Math.round((execs - fuzzStart) / elapsed) : 0,
    blocks,
    features: coverage.features,
    blocksByFile,
    corpusReplayed,
    corpusKept,
    corpusSize: corpus.length,
    newInputs,
    regressionsReplayed: o.regressions.length,
    refusals,
    findings,
  };
}

export { inputName };
