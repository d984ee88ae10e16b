/**
 * Block coverage from V8 itself, without native tools: the inspector's precise coverage
 * (Profiler.startPreciseCoverage with callCount and detailed block ranges; the same data
 * NODE_V8_COVERAGE and c8 use). Each executed block becomes a feature keyed by script, range and
 * a hit-count bucket (AFL's buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+), so an input that
 * runs a loop a different number of times counts as new behaviour too.
 *
 * V8 reports a nested block only where its count differs from the enclosing range's, so a block
 * that ran exactly as often as its function is not listed. The blocks of each function are
 * therefore learned as V8 reports them (every block of a function that ran is reported at least
 * once, with count 0, until it runs) and each learned block gets the count of the innermost
 * reported range around it.
 *
 * Coverage must be started before the target's modules are compiled: V8 instruments functions
 * for block counts when it compiles them, so the fuzz worker starts it first, then imports.
 */
import { Session } from 'node:inspector';

interface CoverageRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface FunctionCoverage {
  ranges: CoverageRange[];
}
interface ScriptCoverage {
  scriptId: string;
  url: string;
  functions: FunctionCoverage[];
}

function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

/** The count of the smallest reported range that contains [start, end). */
function innermostCount(ranges: readonly CoverageRange[], start: number, end: number): number {
  let best = ranges[0]!;
  for (const r of ranges) {
    if (r.startOffset <= start && r.endOffset >= end && r.endOffset - r.startOffset <= best.endOffset - best.startOffset) best = r;
  }
  return best.count;
}

export class BlockCoverage {
  private readonly session = new Session();
  private readonly scriptIds = new Map<string, number>();
  /** Every feature seen so far: script number, block start, block end and bucket, packed. */
  private readonly seen = new Set<string>();

  /** `include` decides which scripts count (by URL): the code under test, not the fuzzer. */
  constructor(private readonly include: (url: string) => boolean) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Blocks ever covered (any bucket). */
  get features(): number {
    return this.seen.size;
  }

  /** Counters since the last call, as feature keys. Resets V8's counters. */
  take(): string[] {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    const keys: string[] = [];
    for (const script of result) {
      if (!this.include(script.url)) continue;
      let id = this.scriptIds.get(script.url);
      if (id === undefined) {
        id = this.scriptIds.size;
        this.scriptIds.set(script.url, id);
      }
      for (const fn of script.functions) {
        if (fn.ranges.length === 0 || fn.ranges[0]!.count === 0) continue;
        const blocks = this.learn(id, fn.ranges);
        for (const b of blocks) {
          const count = innermostCount(fn.ranges, b.startOffset, b.endOffset);
          if (count > 0) keys.push(`${id}:${b.startOffset}:${b.endOffset}:${bucket(count)}`);
        }
      }
    }
    return keys;
  }

  private readonly learned = new Map<string, { startOffset: number; endOffset: number }[]>();

  /** The blocks of the function whose outer range is ranges[0], including any just reported. */
  private learn(script: number, ranges: CoverageRange[]): { startOffset: number; endOffset: number }[] {
    const key = `${script}:${ranges[0]!.startOffset}`;
    let blocks = this.learned.get(key);
    if (!blocks) {
      blocks = [];
      this.learned.set(key, blocks);
    }
    for (const r of ranges) {
      if (!blocks.some((b) => b.startOffset === r.startOffset && b.endOffset === r.endOffset)) {
        blocks.push({ startOffset: r.startOffset, endOffset: r.endOffset });
      }
    }
    return blocks;
  }

  /** Records `keys`; returns how many were new. */
  merge(keys: readonly string[]): number {
    let fresh = 0;
    for (const k of keys)
      if (!this.seen.has(k)) {
        this.seen.add(k);
        fresh++;
      }
    return fresh;
  }

  /** How many of `keys` are not yet recorded, without recording them. */
  countNew(keys: readonly string[]): number {
    let fresh = 0;
    for (const k of keys) if (!this.seen.has(k)) fresh++;
    return fresh;
  }

  /** Distinct blocks (ignoring buckets) ever covered, per script URL. */
  blocksByScript(): Map<string, number> {
    const names = [...this.scriptIds.entries()];
    const blocks = new Map<number, Set<string>>();
    for (const k of this.seen) {
      const [id, start, end] = k.split(':');
      const s = blocks.get(Number(id)) ?? new Set<string>();
      s.add(`${start}:${end}`);
      blocks.set(Number(id), s);
    }
    return new Map(names.map(([url, id]) => [url, blocks.get(id)?.size ?? 0]));
  }

  stop(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.post('Profiler.disable');
    this.session.disconnect();
  }

  /** The in-thread session answers synchronously; the callback has run when post returns. */
  private post(method: string, params?: object): unknown {
    let out: unknown;
    let failure: Error | null = null;
    this.session.post(method, params ?? {}, (err, res) => {
      failure = err;
      out = res;
    });
    if (failure) throw failure;
    return out;
  }
}
