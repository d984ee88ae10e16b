/**
 * A short pass of every fuzz target, as CI runs it: the regression inputs of fixed findings
 * (fuzz/regressions/<target>/) must pass, the committed corpus (fuzz/corpus/<target>/) replays
 * without a finding, and a fixed-seed burst of mutations finds nothing new. Findings already
 * owned by a fix in progress (fuzz/targets/index.ts, knownFinding) are printed, not failed.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runSupervised } from '../../fuzz/engine/supervisor.ts';
import { TARGETS, targetModuleUrl } from '../../fuzz/targets/index.ts';

const MUTATIONS = Number(process.env.TSVISOR_FUZZ_EXECS ?? 400);
const count = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.') && !f.endsWith('.md')).length : 0);

describe('fuzz targets: corpus, regressions and a short mutation pass', () => {
  for (const t of TARGETS) {
    it(t.name, async () => {
      const corpusDir = join(PROJECT_ROOT, 'fuzz', 'corpus', t.name);
      const regressionsDir = join(PROJECT_ROOT, 'fuzz', 'regressions', t.name);
      const r = await runSupervised({
        targetModule: targetModuleUrl(t),
        exportName: 'createTarget',
        seed: 20261206,
        timeMs: 15_000,
        maxExecs: MUTATIONS,
        slowMs: 3000,
        hangMs: 15_000,
        memoryMb: 512,
        maxInputBytes: 1 << 20,
        corpusDir,
        regressionsDir,
        saveDir: null,
        maxCorpus: 256,
      });
      const fresh = r.findings.filter((f) => {
        const known = t.knownFinding?.(f, Buffer.from(f.minimised).toString('latin1'));
        if (known) console.log(`${t.name}: known finding (${known}): ${f.summary}`);
        return !known;
      });
      expect(fresh.map((f) => `${f.kind}: ${f.summary} [input ${Buffer.from(f.minimised).toString('hex').slice(0, 400)}]\n${f.stack ?? ''}`)).toEqual([]);
      if (count(corpusDir) > 0) expect(r.corpusReplayed).toBe(count(corpusDir));
      else expect(r.corpusReplayed).toBeGreaterThan(0); // the target's seeds
      expect(r.regressionsReplayed).toBe(count(regressionsDir));
      // The pass reached the code under test, not only the target's own lines.
      expect(r.blocks).toBeGreaterThan(20);
    }, 90_000);
  }
});
